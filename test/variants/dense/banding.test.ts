import { describe, expect, it } from "vitest"
import { maxQueryTileClasses, DenseSchedule } from "../../../src/variants/dense/schedule.js"
import type { DenseTiling } from "../../../src/variants/dense/tiling.js"
import type { AttentionShape } from "../../../src/workload/shape.js"

const tiling: DenseTiling = { kernel: "fa2", blockM: 64, blockN: 64, stages: 1, warps: 4, ctasPerSm: 2, splits: 1, packGqa: false, softmaxOverlap: 0.5, backwardMmaEfficiency: 1 }

function totals(schedule: DenseSchedule, kernel: string) {
  const classes = schedule.classes.filter((c) => c.kernel === kernel)
  return {
    items: classes.reduce((n, c) => n + c.count, 0),
    tensorFlops: classes.reduce((n, c) => n + c.count * c.counts.tensorFlops, 0),
    usefulFlops: classes.reduce((n, c) => n + c.count * c.counts.usefulFlops, 0),
    l2: classes.reduce((n, c) => n + c.count * c.counts.bytes.l2, 0)
  }
}

function exactTotals(schedule: DenseSchedule) {
  let tensorFlops = 0
  let usefulFlops = 0
  let l2 = 0
  for (let index = 0; index < schedule.forwardItems; index++) {
    const counts = schedule.counts(schedule.item(index))
    tensorFlops += counts.tensorFlops
    usefulFlops += counts.usefulFlops
    l2 += counts.bytes.l2
  }
  return { items: schedule.forwardItems, tensorFlops, usefulFlops, l2 }
}

describe("query tile banding", () => {
  const cases: ReadonlyArray<{ name: string; shape: AttentionShape }> = [
    { name: "causal prefill", shape: { batch: 1, heads: 2, kvHeads: 2, headDim: 64, headDimV: 64, seqLenQ: 131072, seqLenKV: 131072, causal: true, dtype: "bf16" } },
    { name: "windowed prefill", shape: { batch: 1, heads: 1, kvHeads: 1, headDim: 64, headDimV: 64, seqLenQ: 65536, seqLenKV: 65536, causal: true, window: 4096, dtype: "bf16" } },
    { name: "chunk after prefix", shape: { batch: 1, heads: 1, kvHeads: 1, headDim: 64, headDimV: 64, seqLenQ: 40000, seqLenKV: 100000, causal: true, dtype: "bf16" } }
  ]

  for (const { name, shape } of cases) {
    it(`${name} keeps totals`, () => {
      const schedule = new DenseSchedule({ shape, phase: "prefill", tiling })
      expect(schedule.queryTiles).toBeGreaterThan(maxQueryTileClasses)

      const banded = totals(schedule, "forward")
      const exact = exactTotals(schedule)

      expect(banded.items).toBe(exact.items)
      // Useful FLOPs come from each band's exact visible pairs.
      expect(banded.usefulFlops / exact.usefulFlops).toBeCloseTo(1, 9)
      expect(Math.abs(banded.tensorFlops / exact.tensorFlops - 1)).toBeLessThan(0.01)
      expect(Math.abs(banded.l2 / exact.l2 - 1)).toBeLessThan(0.01)
    })
  }

  it("small schedules stay exact", () => {
    const shape: AttentionShape = { batch: 1, heads: 1, kvHeads: 1, headDim: 64, headDimV: 64, seqLenQ: 8192, seqLenKV: 8192, causal: true, dtype: "bf16" }
    const schedule = new DenseSchedule({ shape, phase: "prefill", tiling })

    expect(schedule.classes.filter((c) => c.kernel === "forward")).toHaveLength(schedule.queryTiles)
    expect(totals(schedule, "forward")).toEqual(exactTotals(schedule))
  })
})
