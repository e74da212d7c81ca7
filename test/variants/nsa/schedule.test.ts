import { describe, expect, it } from "vitest"
import type { DenseTiling } from "../../../src/variants/dense/tiling.js"
import { CompressedSchedule, compressedQueryRows } from "../../../src/variants/nsa/compressed-schedule.js"
import { blocksExisting, visibleCompressed, type NsaGeometry } from "../../../src/variants/nsa/geometry.js"
import { selectBlocks } from "../../../src/variants/nsa/selection.js"
import { SelectionSchedule, type SelectionTiling } from "../../../src/variants/nsa/selection-schedule.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"
import { SeededRandom } from "../../support/random.js"

const geometry: NsaGeometry = { compressBlock: 8, compressStride: 4, selectBlock: 8, selectCount: 4, initialBlocks: 1, localBlocks: 2, window: 10 }

function shape(fields: Partial<AttentionShape> & Pick<AttentionShape, "seqLenQ" | "seqLenKV">): AttentionShape {
  return { batch: 2, heads: 4, kvHeads: 2, headDim: 16, headDimV: 8, causal: true, dtype: "bf16", ...fields }
}

function denseTiling(fields: Partial<DenseTiling> & Pick<DenseTiling, "blockM" | "blockN">): DenseTiling {
  return { kernel: "fa2", stages: 1, warps: 4, ctasPerSm: 1, splits: 1, packGqa: false, softmaxOverlap: 0.5, backwardMmaEfficiency: 1, ...fields }
}

function selectionTiling(fields: Partial<SelectionTiling> & Pick<SelectionTiling, "blockN">): SelectionTiling {
  return { kernel: "fa2", rows: 16, stages: 1, warps: 4, ctasPerSm: 1, splits: 1, softmaxOverlap: 0.5, backwardMmaEfficiency: 1, ...fields }
}

const compressedCases: ReadonlyArray<{ name: string; shape: AttentionShape; phase: Phase; tiling: DenseTiling; backward?: DenseTiling }> = [
  { name: "prefill", shape: shape({ seqLenQ: 70, seqLenKV: 70 }), phase: "prefill", tiling: denseTiling({ blockM: 8, blockN: 4 }) },
  { name: "packed prefill", shape: shape({ seqLenQ: 45, seqLenKV: 45 }), phase: "prefill", tiling: denseTiling({ blockM: 16, blockN: 8, packGqa: true }) },
  { name: "split decode", shape: shape({ seqLenQ: 1, seqLenKV: 90 }), phase: "decode", tiling: denseTiling({ blockM: 16, blockN: 4, splits: 3, packGqa: true }) },
  { name: "chunked prefill", shape: shape({ seqLenQ: 9, seqLenKV: 50 }), phase: "prefill", tiling: denseTiling({ blockM: 4, blockN: 4 }) },
  {
    name: "train",
    shape: shape({ seqLenQ: 40, seqLenKV: 40 }),
    phase: "train",
    tiling: denseTiling({ blockM: 8, blockN: 4 }),
    backward: denseTiling({ blockM: 4, blockN: 4 })
  }
]

describe("compressed schedule", () => {
  for (const c of compressedCases) {
    it(`${c.name} tiles cover visible tokens once`, () => {
      const schedule = new CompressedSchedule({ shape: c.shape, geometry, phase: c.phase, tiling: c.tiling, backwardTiling: c.backward })
      const offset = c.shape.seqLenKV - c.shape.seqLenQ
      const seen = new Map<string, number>()
      let pairs = 0
      for (let index = 0; index < schedule.forwardItems; index++) {
        const item = schedule.item(index)
        const steps = schedule.steps(item)
        const summary = schedule.forwardStepSummary(item)
        expect(summary.steps).toBe(steps.length)
        expect(summary.keys).toBe(steps.reduce((sum, s) => sum + s.end - s.start, 0))
        expect(summary.partialSteps).toBe(steps.filter((s) => s.partial).length)

        const queries = item.queryEnd - item.queryStart
        for (let r = 0; r < compressedQueryRows(item); r++) {
          const head = item.heads[Math.floor(r / queries)]!
          const query = item.queryStart + (r % queries)
          const visible = visibleCompressed(geometry, query + offset)
          for (let token = item.keyStart; token < Math.min(item.keyEnd, visible); token++) {
            const covered = steps.some((s) => s.start <= token && token < s.end)
            expect(covered, `item ${index} row ${r} token ${token}`).toBe(true)
            const key = `${item.batch}:${head}:${query}:${token}`
            seen.set(key, (seen.get(key) ?? 0) + 1)
            pairs++
          }
        }
      }
      // Every visible (batch, head, query, token) exactly once over all items.
      let expected = 0
      for (let q = 0; q < c.shape.seqLenQ; q++) expected += visibleCompressed(geometry, q + offset)
      expect(seen.size).toBe(expected * c.shape.batch * c.shape.heads)
      expect([...seen.values()].every((n) => n === 1)).toBe(true)

      const classes = schedule.classes.filter((k) => k.kernel === "forward")
      expect(classes.reduce((sum, k) => sum + k.count, 0)).toBe(schedule.forwardItems)
      const useful = classes.reduce((sum, k) => sum + k.count * k.counts.usefulFlops, 0)
      expect(useful).toBeCloseTo(pairs * 2 * (c.shape.headDim + c.shape.headDimV), 6)
    })
  }

  it("backward items see their queries", () => {
    const c = compressedCases.find((k) => k.name === "train")!
    const schedule = new CompressedSchedule({ shape: c.shape, geometry, phase: c.phase, tiling: c.tiling, backwardTiling: c.backward })
    const backward = schedule.classes.filter((k) => k.kernel === "backward")
    expect(backward.reduce((sum, k) => sum + k.count, 0)).toBe(schedule.backwardItems)
    for (const k of backward) {
      const { lo } = schedule.backwardQueryRange(k.representative)
      // The first query of the range sees the tile's first token; the one before does not.
      expect(visibleCompressed(geometry, lo)).toBeGreaterThan(k.representative.keyStart)
      if (lo > 0) expect(visibleCompressed(geometry, lo - 1)).toBeLessThanOrEqual(k.representative.keyStart)
    }
  })
})

const selectionCases: ReadonlyArray<{ name: string; shape: AttentionShape; phase: Phase; tiling: SelectionTiling; geometry: NsaGeometry }> = [
  { name: "prefill", shape: shape({ seqLenQ: 75, seqLenKV: 75 }), phase: "prefill", tiling: selectionTiling({ blockN: 4 }), geometry },
  { name: "split decode", shape: shape({ seqLenQ: 1, seqLenKV: 61 }), phase: "decode", tiling: selectionTiling({ blockN: 8, splits: 3 }), geometry },
  { name: "chunked prefill", shape: shape({ seqLenQ: 20, seqLenKV: 93 }), phase: "prefill", tiling: selectionTiling({ blockN: 2 }), geometry },
  {
    name: "tile wider than block",
    shape: shape({ seqLenQ: 50, seqLenKV: 50 }),
    phase: "prefill",
    tiling: selectionTiling({ blockN: 16 }),
    geometry: { ...geometry, selectBlock: 4, selectCount: 8 }
  },
  { name: "train", shape: shape({ seqLenQ: 60, seqLenKV: 60 }), phase: "train", tiling: selectionTiling({ blockN: 4 }), geometry }
]

describe("selection schedule", () => {
  for (const c of selectionCases) {
    it(`${c.name} tiles cover selected keys once`, () => {
      const schedule = new SelectionSchedule({ shape: c.shape, geometry: c.geometry, phase: c.phase, tiling: c.tiling })
      const random = new SeededRandom(17)
      const offset = c.shape.seqLenKV - c.shape.seqLenQ
      for (let query = 0; query < c.shape.seqLenQ; query++) {
        const position = query + offset
        const blocks = selectBlocks(c.geometry, position, Array.from({ length: blocksExisting(c.geometry, position) }, () => random.next()))
        const covered = new Map<number, number>()
        for (let split = 0; split < c.tiling.splits; split++) {
          const item = schedule.item(schedule.forwardIndex(0, 1, query, split))
          expect(item.position).toBe(position)
          const steps = schedule.steps(item, blocks)
          const summary = schedule.summary(position, split, c.tiling.splits)
          expect(summary.steps).toBe(steps.length)
          expect(summary.keys).toBe(steps.reduce((sum, s) => sum + s.end - s.start, 0))
          expect(summary.partialSteps).toBe(steps.filter((s) => s.partial).length)
          for (const s of steps) {
            expect(s.end - s.start).toBeLessThanOrEqual(c.tiling.blockN)
            for (let key = s.start; key < Math.min(s.end, position + 1); key++) covered.set(key, (covered.get(key) ?? 0) + 1)
          }
        }
        // Oracle: the keys of the selected blocks at or before the position.
        const expected = blocks.flatMap((b) => Array.from({ length: c.geometry.selectBlock }, (_, j) => b * c.geometry.selectBlock + j)).filter((k) => k <= position)
        expect([...covered.keys()].sort((a, b) => a - b)).toEqual(expected)
        expect([...covered.values()].every((n) => n === 1)).toBe(true)
      }
    })

    it(`${c.name} classes count every item`, () => {
      const schedule = new SelectionSchedule({ shape: c.shape, geometry: c.geometry, phase: c.phase, tiling: c.tiling })
      const items = { forward: schedule.forwardItems, combine: schedule.combineItems, backward: schedule.backwardItems }
      for (const kernel of ["forward", "combine", "backward"] as const) {
        const classes = schedule.classes.filter((k) => k.kernel === kernel)
        expect(classes.reduce((sum, k) => sum + k.count, 0)).toBe(items[kernel])
      }
      // Each class's counts equal those of any item it stands for.
      const totals = schedule.classes.filter((k) => k.kernel === "forward").reduce((sum, k) => sum + k.count * k.counts.tensorFlops, 0)
      let brute = 0
      for (let index = 0; index < schedule.forwardItems; index++) brute += schedule.counts(schedule.item(index)).tensorFlops
      expect(totals).toBe(brute)
    })
  }
})
