import { describe, expect, it } from "vitest"
import { componentKeys, sumComponents } from "../../../src/cost/breakdown.js"
import { InputError } from "../../../src/errors.js"
import { planOperation } from "../../../src/estimate.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { priceLightning } from "../../../src/variants/lightning/cost.js"
import { LightningOptions, resolveSettings, type LightningSettings } from "../../../src/variants/lightning/options.js"
import { planLightning } from "../../../src/variants/lightning/plan.js"
import { LightningSchedule } from "../../../src/variants/lightning/schedule.js"
import { keysLoaded, type FusedTiling, type SplitTiling } from "../../../src/variants/lightning/tiling.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"
import { device, minimaxShape } from "./helpers.js"

const defaults = LightningOptions.make({})

function settings(shape: AttentionShape, overrides: Partial<typeof defaults> = {}): LightningSettings {
  return resolveSettings({ ...defaults, ...overrides }, shape)
}

function plan(shape: AttentionShape, phase: Phase, hardware = "h100-sxm", overrides: Partial<typeof defaults> = {}) {
  return planLightning({ shape, phase, settings: settings(shape, overrides) }, device(hardware))
}

const fused: FusedTiling = { scheme: "fused", mma: "async", blockSize: 256, valueSplits: 1, consumerGroups: 2, streamKeys: false, ctasPerSm: 1, backwardCtasPerSm: 1 }
const split: SplitTiling = {
  scheme: "split",
  mma: "async",
  blockSize: 256,
  consumerGroups: 2,
  streamKeys: false,
  stateSplits: 4,
  intraCtasPerSm: 1,
  interCtasPerSm: 2,
  scanCtasPerSm: 8,
  backwardCtasPerSm: 1
}

describe("lightning cost model", () => {
  for (const hardware of ["h100-sxm", "a100-sxm-80g"]) {
    it(`${hardware}: prefill per token flat`, () => {
      const perToken = [65536, 131072, 262144, 524288, 1048576].map((n) => plan(minimaxShape(n), "prefill", hardware).cost.seconds / n)

      const spread = Math.max(...perToken) / Math.min(...perToken)

      expect(spread).toBeLessThanOrEqual(1.1)
    })

    it(`${hardware}: decode flat in context`, () => {
      const seconds = [1024, 65536, 1048576, 4194304].map((n) => plan(minimaxShape(1, n, 8), "decode", hardware).cost.seconds)

      for (const value of seconds) expect(value).toBe(seconds[0])
    })
  }

  it("forward FLOPs follow the formula", () => {
    // Per head: N·(2·B·(dk + dv) + 4·dk·dv) over whole (padded) blocks.
    const shape = minimaxShape(5000)
    for (const tiling of [fused, split]) {
      const schedule = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling })

      const cost = priceLightning(schedule, device("h100-sxm"))

      const paddedRows = Math.ceil(5000 / 256) * 256
      expect(cost.counts.tensorFlops).toBe(64 * paddedRows * (2 * 256 * 256 + 4 * 128 * 128))
    }
  })

  it("value splits recompute Q·Kᵀ", () => {
    const shape = minimaxShape(4096)
    const one = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: fused })
    const two = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: { ...fused, valueSplits: 2 } })

    const extra = priceLightning(two, device("h100-sxm")).counts.tensorFlops - priceLightning(one, device("h100-sxm")).counts.tensorFlops

    expect(extra).toBe(64 * 16 * 2 * 256 * 256 * 128)
  })

  it("streamed keys re-read from L2", () => {
    const shape = minimaxShape(4096)
    const resident = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: fused })
    const streamed = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: { ...fused, streamKeys: true } })
    const h100 = device("h100-sxm")

    const extraL2 = priceLightning(streamed, h100).counts.bytes.l2 - priceLightning(resident, h100).counts.bytes.l2

    // Row chunks of 128: the second chunk loads the first 128 keys again, 256 bytes per key (K and V in bf16).
    expect(keysLoaded(256, 64, true)).toBe(64 + 128 + 192 + 256)
    expect(keysLoaded(256, 128, false)).toBe(256)
    expect(extraL2).toBe(64 * 16 * 128 * 256 * 2)
    expect(priceLightning(streamed, h100).counts.bytes.hbm).toBeCloseTo(priceLightning(resident, h100).counts.bytes.hbm, 0)
  })

  it("a100 fits by streaming keys", () => {
    const chosen = plan(minimaxShape(65536), "prefill", "a100-sxm-80g").tiling

    expect(chosen.scheme).toBe("fused")
    expect((chosen as FusedTiling).streamKeys).toBe(true)
  })

  it("breakdown adds up", () => {
    for (const [shape, phase] of [
      [minimaxShape(65536), "prefill"],
      [minimaxShape(1, 65536, 8), "decode"],
      [minimaxShape(8192), "train"]
    ] as const) {
      const cost = plan(shape, phase).cost

      expect(sumComponents(cost.components)).toBeCloseTo(cost.seconds, 15)
      expect(cost.kernels.reduce((sum, k) => sum + k.seconds, 0)).toBeCloseTo(cost.seconds, 15)
      for (const key of componentKeys) expect(cost.components[key]).toBeGreaterThanOrEqual(0)
    }
  })

  it("decode moves the state twice", () => {
    const shape = minimaxShape(1, 1048576, 8)

    const cost = plan(shape, "decode").cost

    const stateBytes = 8 * 64 * 128 * 128 * 4
    const tokenBytes = 8 * 64 * (2 * 128 + 2 * 128) * 2
    expect(cost.counts.bytes.hbm).toBeCloseTo(2 * stateBytes + tokenBytes, 0)
  })

  it("bf16 state halves decode traffic", () => {
    const shape = minimaxShape(1, 65536, 8)
    const fp32 = plan(shape, "decode").cost.counts.bytes.hbm
    const bf16 = plan(shape, "decode", "h100-sxm", { stateDtype: "bf16" }).cost.counts.bytes.hbm

    expect(bf16).toBeLessThan(0.51 * fp32)
    expect(bf16).toBeGreaterThan(0.49 * fp32)
  })

  it("more bandwidth never slows decode", () => {
    const shape = minimaxShape(1, 65536, 8)
    const base = device("h100-sxm")
    const faster = { ...base, hbmBytesPerSecond: 2 * base.hbmBytesPerSecond }

    const slow = planLightning({ shape, phase: "decode", settings: settings(shape) }, base).cost.seconds
    const fast = planLightning({ shape, phase: "decode", settings: settings(shape) }, faster).cost.seconds

    expect(fast).toBeLessThan(slow)
  })

  it("train adds a backward pass", () => {
    const shape = minimaxShape(16384)
    const schedule = (phase: Phase) => new LightningSchedule({ shape, phase, settings: settings(shape), tiling: fused })
    const prefill = priceLightning(schedule("prefill"), device("h100-sxm"))
    const train = priceLightning(schedule("train"), device("h100-sxm"))

    // Per block: the backward runs 2·B²·(3dk + 3dv) intra-block and 10·B·dk·dv inter-block FLOPs.
    const forward = 2 * 256 * 256 * 256 + 4 * 256 * 128 * 128
    const backward = 2 * 256 * 256 * 768 + 10 * 256 * 128 * 128
    expect(train.kernels.map((k) => k.name)).toEqual(["forward", "backward"])
    expect(train.counts.tensorFlops / prefill.counts.tensorFlops).toBeCloseTo((forward + backward) / forward, 12)
    expect(train.seconds).toBeGreaterThan(3 * prefill.seconds)
  })

  it("scheme option restricts the layout", () => {
    const shape = minimaxShape(65536)

    expect(plan(shape, "prefill", "h100-sxm", { scheme: "fused" }).tiling.scheme).toBe("fused")
    expect(plan(shape, "prefill", "h100-sxm", { scheme: "split" }).tiling.scheme).toBe("split")
  })

  it("few heads favour the split layout", () => {
    // Eight heads give the fused walk at most 8 × 8 CTAs on 132 SMs. The split
    // layout runs every block in parallel, and only its scan is serial.
    const shape = { ...minimaxShape(262144), heads: 8, kvHeads: 8 }

    expect(plan(shape, "prefill").tiling.scheme).toBe("split")
  })

  it("split scan serializes its blocks", () => {
    // Eight heads give one scan CTA each: eight serial walks cannot draw the
    // GPU's bandwidth through eight SMs; sixteen slices per head spread the scan.
    const shape = { ...minimaxShape(262144), heads: 8, kvHeads: 8 }
    const one = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: { ...split, stateSplits: 1 } })
    const many = new LightningSchedule({ shape, phase: "prefill", settings: settings(shape), tiling: { ...split, stateSplits: 16 } })

    const scan = (schedule: LightningSchedule) => priceLightning(schedule, device("h100-sxm")).kernels.find((k) => k.name === "state-scan")!

    expect(scan(one).ctas).toBe(8)
    expect(scan(many).ctas).toBe(8 * 16)
    expect(scan(one).seconds).toBeGreaterThan(4 * scan(many).seconds)
  })
})

describe("lightning estimate details", () => {
  const h100 = loadProfile("h100-sxm")

  it("reports state and dense comparison", () => {
    const estimate = planOperation({ variant: "lightning", shape: minimaxShape(1, 65536), phase: "decode" }, h100).estimate

    expect(estimate.stateBytesPerSequence).toBe(64 * 128 * 128 * 4)
    expect(estimate.stateTokensEquivalent).toBe(128)
    expect(estimate.keysPerQuery).toBe(1)
    expect(estimate.modeledSpeedupVsDense as number).toBeGreaterThan(1)
    expect(estimate.accuracyRisk).toBeUndefined()
    expect(Array.isArray(estimate.notes)).toBe(true)
  })

  it("crossover lies where times cross", () => {
    const estimate = planOperation({ variant: "lightning", shape: minimaxShape(65536), phase: "prefill" }, h100).estimate
    const crossover = estimate.crossoverSeqLen as number
    const speedupAt = (n: number) => planOperation({ variant: "lightning", shape: minimaxShape(n), phase: "prefill" }, h100).estimate.modeledSpeedupVsDense as number

    expect(crossover).toBeGreaterThan(16)
    expect(speedupAt(crossover)).toBeGreaterThan(1)
    expect(speedupAt(crossover - 1)).toBeLessThanOrEqual(1)
  })

  it("low-precision state is flagged", () => {
    const estimate = planOperation({ variant: "lightning", shape: minimaxShape(1, 4096), phase: "decode", options: { stateDtype: "bf16" } }, h100).estimate

    expect(estimate.accuracyRisk).toMatch(/bf16/)
    expect(estimate.stateBytesPerSequence).toBe(64 * 128 * 128 * 2)
  })
})

describe("lightning options", () => {
  const shape = minimaxShape(4096)

  function issuePaths(run: () => unknown): string[] {
    try {
      run()
    } catch (error) {
      if (error instanceof InputError) return error.issues.map((issue) => issue.path)
      throw error
    }
    return []
  }

  it("rejects invalid block sizes", () => {
    for (const blockSize of [8, 100, 2048]) expect(issuePaths(() => settings(shape, { blockSize }))).toEqual(["blockSize"])
  })

  it("rejects a non-causal shape", () => {
    expect(issuePaths(() => settings({ ...shape, causal: false }))).toEqual(["causal"])
  })

  it("rejects invalid decay rates", () => {
    expect(issuePaths(() => settings(shape, { decay: "0.9,0.8" }))).toEqual(["decay"])
    expect(issuePaths(() => settings(shape, { decay: [1.2] }))).toEqual(["decay"])
    expect(issuePaths(() => settings(shape, { decay: "fast" }))).toEqual(["decay"])
    expect(issuePaths(() => settings(shape, { layer: 80 }))).toEqual(["layer"])
  })

  it("explicit rates apply per head", () => {
    const one = settings(shape, { decay: "0.5" })
    const each = settings({ ...shape, heads: 2, kvHeads: 2 }, { decay: [0.5, 0.25] })

    expect(Array.from(one.logDecay).every((value) => value === Math.log(0.5))).toBe(true)
    expect(Array.from(each.logDecay)).toEqual([Math.log(0.5), Math.log(0.25)])
  })
})
