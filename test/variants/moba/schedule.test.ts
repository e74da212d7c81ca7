import { describe, expect, it } from "vitest"
import type { DenseTiling } from "../../../src/variants/dense/tiling.js"
import { historyDemand, historySlots } from "../../../src/variants/moba/blocks.js"
import { HistorySchedule, type Selection } from "../../../src/variants/moba/history-schedule.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

const shape: AttentionShape = { batch: 2, heads: 4, kvHeads: 2, headDim: 32, headDimV: 32, seqLenQ: 512, seqLenKV: 512, causal: true, dtype: "bf16" }
const config = { blockSize: 32, topK: 4, blocks: 16 }

function tiling(blockM: number, blockN: number, splits = 1): DenseTiling {
  return { kernel: "fa2", blockM, blockN, stages: 1, warps: 4, ctasPerSm: 2, splits, packGqa: false, softmaxOverlap: 0.5, backwardMmaEfficiency: 0.8 }
}

function schedule(phase: Phase, selection: Selection = "per-head", forward = tiling(16, 8), backward?: DenseTiling, over = shape): HistorySchedule {
  return new HistorySchedule({ shape: over, phase, config, demand: historyDemand(over, config), selection, tiling: forward, backwardTiling: backward })
}

describe("MoBA history schedule", () => {
  it("every forward tile exactly once", () => {
    const s = schedule("prefill", "per-head", tiling(16, 8, 2))

    // Oracle: every (batch, owner, segment, query tile, split) the segments imply.
    const expected = new Set<string>()
    for (let batch = 0; batch < shape.batch; batch++)
      for (let owner = 0; owner < s.owners; owner++)
        s.segments.forEach((segment, index) => {
          for (let tile = 0; tile < Math.ceil(segment.rows / 16); tile++) for (let split = 0; split < 2; split++) expected.add(`${batch}|${owner}|${index}|${tile}|${split}`)
        })
    const seen = new Set<string>()
    for (let i = 0; i < s.forwardItems; i++) {
      const item = s.item(i)
      const key = `${item.batch}|${item.owner}|${item.segment}|${item.tile}|${item.split}`
      expect(seen.has(key)).toBe(false)
      seen.add(key)
      expect(s.forwardIndex(item.batch, item.owner, item.segment, item.tile, item.split)).toBe(i)
    }
    expect(seen).toEqual(expected)
  })

  it("splits partition each block", () => {
    const s = schedule("decode", "per-head", tiling(16, 8, 4), undefined, { ...shape, seqLenQ: 1 })

    const keys = [0, 1, 2, 3].flatMap((split) => s.steps(s.item(split)).flatMap((step) => Array.from({ length: step.end - step.start }, (_, j) => step.start + j)))

    expect(keys).toEqual(Array.from({ length: 32 }, (_, j) => j))
  })

  it("decode has one segment per slot", () => {
    const decode = { ...shape, seqLenQ: 1 }

    const s = schedule("decode", "per-head", tiling(16, 8), undefined, decode)

    expect(s.segments).toHaveLength(historySlots(15, 4))
    expect(s.segments.every((segment) => segment.rows === 1)).toBe(true)
    expect(schedule("decode", "group-shared", tiling(16, 8), undefined, decode).segments.every((segment) => segment.rows === 2)).toBe(true)
  })

  it("classes add up to items", () => {
    const s = schedule("train", "per-head", tiling(16, 8), tiling(16, 16))

    const forward = s.classes.filter((c) => c.kernel === "history-forward")
    const backward = s.classes.filter((c) => c.kernel === "history-backward")

    expect(forward.reduce((sum, c) => sum + c.count, 0)).toBe(s.forwardItems)
    expect(backward.reduce((sum, c) => sum + c.count, 0)).toBe(s.backwardItems)
  })

  it("class totals equal item totals", () => {
    const s = schedule("train", "group-shared", tiling(16, 8), tiling(16, 16))

    const byItems = { tensor: 0, useful: 0, l2: 0, smem: 0 }
    for (let i = 0; i < s.size; i++) {
      const counts = s.counts(s.item(i))
      byItems.tensor += counts.tensorFlops
      byItems.useful += counts.usefulFlops
      byItems.l2 += counts.bytes.l2
      byItems.smem += counts.bytes.smem
    }
    const byClasses = { tensor: 0, useful: 0, l2: 0, smem: 0 }
    for (const c of s.classes) {
      byClasses.tensor += c.count * c.counts.tensorFlops
      byClasses.useful += c.count * c.counts.usefulFlops
      byClasses.l2 += c.count * c.counts.bytes.l2
      byClasses.smem += c.count * c.counts.bytes.smem
    }

    for (const key of ["tensor", "useful", "l2", "smem"] as const) expect(byClasses[key]).toBeCloseTo(byItems[key], 3)
  })

  it("useful pairs match the demand", () => {
    const s = schedule("prefill")

    const useful = s.classes.reduce((sum, c) => sum + c.count * c.counts.usefulFlops, 0)

    // Each selection attends one whole block: 2·(dk + dv) FLOPs per key.
    const demand = historyDemand(shape, config)
    expect(useful).toBe(shape.batch * shape.heads * demand.total * config.blockSize * 2 * (32 + 32))
  })

  it("step counts match the worker", () => {
    const s = schedule("prefill", "per-head", tiling(16, 8))

    const counts = s.stepCounts({ start: 8, end: 13 })

    // The worker counts 2·rows·blockN·(dk + dv) FLOPs, rows·blockN exps, loaded keys·(dk + dv)·2 bytes.
    expect(counts).toEqual({ tensorFlops: 2 * 16 * 8 * 64, expOps: 16 * 8, loadBytes: 5 * 64 * 2 })
  })
})
