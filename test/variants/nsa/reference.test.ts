import { describe, expect, it } from "vitest"
import { NsaData, nsaBranches } from "../../../src/variants/nsa/data.js"
import { visibleCompressed, type NsaGeometry } from "../../../src/variants/nsa/geometry.js"
import { referencePosition } from "../../../src/variants/nsa/reference.js"

const geometry: NsaGeometry = { compressBlock: 8, compressStride: 4, selectBlock: 8, selectCount: 3, initialBlocks: 1, localBlocks: 1, window: 6 }
const dims = { headDim: 16, headDimV: 8 }
const group = 2

function data(perturbation?: { after: number; seed: number }): NsaData {
  return new NsaData({ seed: 21, dtype: "bf16", ...dims, geometry, perturbation })
}

describe("float64 NSA pipeline", () => {
  it("later tokens never change earlier outputs", () => {
    const cutoff = 37
    const base = data()
    const perturbed = data({ after: cutoff, seed: 0x5eed })
    for (let position = 0; position < 60; position++) {
      for (const kvHead of [0, 1]) {
        const a = referencePosition(base, geometry, { batch: 0, kvHead, position, group })
        const b = referencePosition(perturbed, geometry, { batch: 0, kvHead, position, group })
        if (position <= cutoff) {
          expect(Array.from(b.output), `position ${position}`).toEqual(Array.from(a.output))
          expect(b.selectedBlocks).toEqual(a.selectedBlocks)
        } else {
          // The probe can fail: the perturbation reaches every later output.
          expect(Array.from(b.output), `position ${position}`).not.toEqual(Array.from(a.output))
        }
      }
    }
  })

  it("a compressed token appears once its block ends", () => {
    // Token 1 covers keys 4..11. Perturbing key 11 changes it; positions before 11 must not see it.
    const cutoff = 10
    const base = data()
    const perturbed = data({ after: cutoff, seed: 7 })
    expect(Array.from(perturbed.compressedKey(0, 0, 0))).toEqual(Array.from(base.compressedKey(0, 0, 0)))
    expect(Array.from(perturbed.compressedKey(0, 0, 1))).not.toEqual(Array.from(base.compressedKey(0, 0, 1)))
    expect(visibleCompressed(geometry, cutoff)).toBe(1)
  })

  it("gates the branches per head", () => {
    const d = data()
    const position = 29
    const result = referencePosition(d, geometry, { batch: 0, kvHead: 1, position, group })
    result.heads.forEach((head, row) => {
      for (let c = 0; c < dims.headDimV; c++) {
        const gated = nsaBranches.reduce((sum, branch) => sum + d.gate(0, head, position, branch) * result.branches[branch][row * dims.headDimV + c]!, 0)
        expect(result.output[row * dims.headDimV + c]).toBeCloseTo(gated, 12)
      }
    })
  })

  it("no visible compressed token gives zero", () => {
    const d = data()
    const position = geometry.compressBlock - 2
    expect(visibleCompressed(geometry, position)).toBe(0)

    const result = referencePosition(d, geometry, { batch: 0, kvHead: 0, position, group })

    expect(result.branches.compressed.every((x) => x === 0)).toBe(true)
    expect(result.output.every(Number.isFinite)).toBe(true)
    expect(result.branches.window.some((x) => x !== 0)).toBe(true)
    expect(result.branches.selected.some((x) => x !== 0)).toBe(true)
  })

  it("selects every block while n covers them", () => {
    const d = data()
    const result = referencePosition(d, geometry, { batch: 0, kvHead: 0, position: 20, group })
    expect(result.selectedBlocks).toEqual([0, 1, 2])
  })
})
