import { describe, expect, it } from "vitest"
import { LightningOptions, resolveSettings } from "../../../src/variants/lightning/options.js"
import { LightningSchedule, type LightningKernelName } from "../../../src/variants/lightning/schedule.js"
import type { DecodeTiling, FusedTiling, LightningTiling, SplitTiling } from "../../../src/variants/lightning/tiling.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

const fused: FusedTiling = { scheme: "fused", mma: "async", blockSize: 64, valueSplits: 2, consumerGroups: 1, streamKeys: false, ctasPerSm: 1, backwardCtasPerSm: 1 }
const split: SplitTiling = {
  scheme: "split",
  mma: "async",
  blockSize: 64,
  consumerGroups: 1,
  streamKeys: false,
  stateSplits: 4,
  intraCtasPerSm: 1,
  interCtasPerSm: 2,
  scanCtasPerSm: 8,
  backwardCtasPerSm: 1
}
const decode: DecodeTiling = { scheme: "decode", valueSplits: 4, ctasPerSm: 8 }

function shape(seqLenQ: number, seqLenKV = seqLenQ): AttentionShape {
  return { batch: 2, heads: 4, kvHeads: 2, headDim: 32, headDimV: 32, seqLenQ, seqLenKV, causal: true, dtype: "bf16" }
}

function schedule(tiling: LightningTiling, phase: Phase, attention = shape(300)): LightningSchedule {
  const settings = resolveSettings(LightningOptions.make({ blockSize: 64 }), attention)
  return new LightningSchedule({ shape: attention, phase, settings, tiling })
}

/** Lists a kernel's items as "batch/head/slice/block" strings, one per block each covers. */
function coverage(s: LightningSchedule, kernel: LightningKernelName): string[] {
  const keys: string[] = []
  for (let index = 0; index < s.size; index++) {
    const item = s.item(index)
    if (item.kernel !== kernel) continue
    for (const step of s.steps(item)) keys.push(`${item.batch}/${item.head}/${item.slice}/${step.block}${item.role ? `/${item.role}` : ""}`)
  }
  return keys.sort()
}

/** Lists every (batch, head, slice, block) exactly once: the brute-force oracle. */
function expected(batches: number, heads: number, slices: number, blocks: number, role?: string): string[] {
  const keys: string[] = []
  for (let b = 0; b < batches; b++) {
    for (let h = 0; h < heads; h++) {
      for (let s = 0; s < slices; s++) for (let block = 0; block < blocks; block++) keys.push(`${b}/${h}/${s}/${block}${role ? `/${role}` : ""}`)
    }
  }
  return keys.sort()
}

describe("lightning schedule", () => {
  it("fused walks cover every block once", () => {
    const s = schedule(fused, "prefill")

    expect(s.blocks).toBe(5)
    expect(s.lastBlockRows).toBe(300 - 4 * 64)
    expect(coverage(s, "forward")).toEqual(expected(2, 4, 2, 5))
  })

  it("split kernels cover every block once", () => {
    const s = schedule(split, "prefill")

    expect(coverage(s, "intra")).toEqual(expected(2, 4, 1, 5))
    expect(coverage(s, "inter")).toEqual(expected(2, 4, 1, 5))
    expect(coverage(s, "state-scan")).toEqual(expected(2, 4, 4, 5))
  })

  it("backward walks both directions", () => {
    const s = schedule(fused, "train")
    const dkdv = s.item(s.firstIndex("backward") + 2 * 4)

    expect(coverage(s, "backward")).toEqual([...expected(2, 4, 1, 5, "dq"), ...expected(2, 4, 1, 5, "dkdv")].sort())
    expect(dkdv.role).toBe("dkdv")
    expect(s.steps(dkdv).map((step) => step.block)).toEqual([4, 3, 2, 1, 0])
  })

  it("GQA heads share KV heads", () => {
    const s = schedule(split, "prefill")

    for (let index = 0; index < s.size; index++) {
      const item = s.item(index)
      expect(item.kvHead).toBe(Math.floor(item.head / 2))
    }
  })

  it("classes add up to the items", () => {
    for (const [tiling, phase] of [
      [fused, "train"],
      [split, "train"],
      [decode, "decode"]
    ] as const) {
      const attention = tiling === decode ? shape(1, 5000) : shape(300)
      const s = schedule(tiling, phase, attention)
      const byClasses = s.classes.reduce((sum, c) => sum + c.count * c.counts.tensorFlops, 0)
      let byItems = 0
      for (let index = 0; index < s.size; index++) byItems += s.counts(s.item(index)).tensorFlops

      expect(s.classes.reduce((sum, c) => sum + c.count, 0)).toBe(s.size)
      expect(byClasses).toBe(byItems)
    }
  })

  it("task counts match a whole lane", () => {
    const s = schedule(fused, "prefill", shape(300, 900))
    const lane = s.item(0)
    const work = s.work(lane)

    const task = s.taskCounts(0, s.blocks, true)

    expect(task.tensorFlops).toBe(work.tensor)
    expect(task.expOps).toBe(work.exp)
    expect(task.loadBytes).toBe(work.loads)
  })

  it("rejects out-of-range items", () => {
    const s = schedule(split, "prefill")

    expect(() => s.item(s.size)).toThrow(RangeError)
    expect(() => s.item(-1)).toThrow(RangeError)
  })
})
