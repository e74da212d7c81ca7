import { describe, expect, it } from "vitest"
import { runAttentionTile } from "../../src/exec/attention-step.js"
import { combineSplits } from "../../src/variants/dense/combine.js"
import { normalizedOutput, referenceOutput } from "../../src/variants/dense/reference.js"
import { makeTask, maxAbsDifference } from "./helpers.js"

const tolerance = 1e-3

describe("attention tile kernels", () => {
  for (const backend of ["webasm", "cpu"] as const) {
    it(`${backend}: non-causal matches float64`, () => {
      const task = makeTask({ rows: 16, blockN: 32, headDim: 64, headDimV: 64, steps: 3, backend, visible: () => ({ lo: 0, hi: 96 }) })
      const inputs = { ...task }
      const expected = referenceOutput(inputs)

      const result = runAttentionTile(task)
      const output = normalizedOutput(result.kernelState, 16, 64)

      expect(result.backend).toBe(backend)
      expect(maxAbsDifference(output, expected)).toBeLessThan(tolerance)
      expect(maxAbsDifference(output, result.referenceOutput!)).toBeLessThan(tolerance)
    })
  }

  it("causal diagonal matches float64", () => {
    // Row r is query r of a prefill: it sees keys 0..r.
    const task = makeTask({ rows: 32, blockN: 16, headDim: 32, headDimV: 48, steps: 2, visible: (r) => ({ lo: 0, hi: r + 1 }) })
    const expected = referenceOutput({ ...task })

    const result = runAttentionTile(task)

    expect(maxAbsDifference(normalizedOutput(result.kernelState, 32, 48), expected)).toBeLessThan(tolerance)
  })

  it("fully masked rows give zeros", () => {
    // Rows 0-3 see no key (queries before the first key); rows 8-15 are padding.
    const task = makeTask({
      rows: 16,
      realRows: 8,
      blockN: 16,
      headDim: 16,
      headDimV: 16,
      steps: 2,
      visible: (r) => (r < 4 ? { lo: 0, hi: 0 } : { lo: 0, hi: r })
    })

    const result = runAttentionTile(task)
    const output = normalizedOutput(result.kernelState, 16, 16)

    for (let r = 0; r < 4; r++) expect(result.kernelState.rowSum[r]).toBe(0)
    expect(output.slice(0, 4 * 16).every((x) => x === 0)).toBe(true)
    expect(output.slice(8 * 16).every((x) => x === 0)).toBe(true)
    expect(Array.from(result.kernelState.acc).some(Number.isNaN)).toBe(false)
    expect(Array.from(result.kernelState.rowMax).some(Number.isNaN)).toBe(false)
  })

  it("fully masked tile keeps the state", () => {
    // Every row sees only keys of the first tile; the second tile is entirely masked.
    const task = makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 2, visible: () => ({ lo: 0, hi: 8 }) })
    const firstOnly = makeTask({ rows: 8, blockN: 8, headDim: 16, headDimV: 16, steps: 1, visible: () => ({ lo: 0, hi: 8 }) })

    const both = runAttentionTile(task)
    const one = runAttentionTile(firstOnly)

    expect(maxAbsDifference(both.kernelState.acc, one.kernelState.acc)).toBe(0)
    expect(maxAbsDifference(both.kernelState.rowSum, one.kernelState.rowSum)).toBe(0)
  })

  it("short last tile masks padding keys", () => {
    const task = makeTask({ rows: 8, blockN: 16, headDim: 16, headDimV: 16, steps: 2, lastStepKeys: 5, visible: () => ({ lo: 0, hi: 21 }) })
    const expected = referenceOutput({ ...task })

    const result = runAttentionTile(task)

    expect(maxAbsDifference(normalizedOutput(result.kernelState, 8, 16), expected)).toBeLessThan(tolerance)
    expect(result.counted.loadBytes).toBe((16 + 5) * (16 + 16) * 2)
  })

  it("counts the launched work", () => {
    const task = makeTask({ rows: 16, blockN: 32, headDim: 64, headDimV: 32, steps: 3, visible: () => ({ lo: 0, hi: 96 }) })

    const result = runAttentionTile(task)

    expect(result.counted.steps).toBe(3)
    expect(result.counted.tensorFlops).toBe(3 * 2 * 16 * 32 * (64 + 32))
    expect(result.counted.expOps).toBe(3 * 16 * 32)
  })
})

describe("split-KV combine", () => {
  it("equals attention over all keys", () => {
    // Three splits of 16 keys each, combined on the host, against one two-pass softmax.
    const whole = makeTask({ rows: 8, blockN: 16, headDim: 32, headDimV: 32, steps: 3, visible: (r) => ({ lo: 0, hi: 40 + r }) })
    const expected = referenceOutput({ ...whole })
    const states = [0, 1, 2].map((split) => {
      const task = {
        ...whole,
        stepStart: whole.stepStart.slice(split, split + 1),
        stepKeys: whole.stepKeys.slice(split, split + 1),
        k: whole.k.slice(split * 16 * 32, (split + 1) * 16 * 32),
        v: whole.v.slice(split * 16 * 32, (split + 1) * 16 * 32),
        finalize: false
      }
      return runAttentionTile(task).kernelState
    })

    const combined = combineSplits(states, 8, 32)

    expect(maxAbsDifference(combined, expected)).toBeLessThan(tolerance)
  })

  it("rows no split saw stay zero", () => {
    const empty = { rowMax: new Float32Array([-1e30]), rowSum: new Float32Array([0]), acc: new Float32Array(4) }

    const combined = combineSplits([empty, empty], 1, 4)

    expect(Array.from(combined)).toEqual([0, 0, 0, 0])
  })
})
