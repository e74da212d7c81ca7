import { describe, expect, it } from "vitest"
import { sumComponents } from "../../../src/cost/breakdown.js"
import { planOperation, withMeasurements } from "../../../src/estimate.js"
import { deviceRates } from "../../../src/hardware/device.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { planDense } from "../../../src/variants/dense/plan.js"
import { historyUnion, overlapOfUnion } from "../../../src/variants/moba/blocks.js"
import { resolveMoba } from "../../../src/variants/moba/options.js"
import { planMoba } from "../../../src/variants/moba/plan.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"
import type { ScenarioCase } from "../../../src/workload/scenario-schema.js"

const profile = loadProfile("h100-sxm")
const device = deviceRates(profile, "bf16")

function shape(seqLen: number, phase: Phase, batch = 1): AttentionShape {
  return { batch, heads: 32, kvHeads: 8, headDim: 128, headDimV: 128, seqLenQ: phase === "decode" ? 1 : seqLen, seqLenKV: seqLen, causal: true, dtype: "bf16" }
}

const estimate = (seqLen: number, phase: Phase, options: Record<string, unknown> = {}, batch = 1) =>
  planOperation({ variant: "moba", shape: shape(seqLen, phase, batch), phase, options }, profile)

const kernelNames = (plan: ReturnType<typeof planMoba>) => plan.cost.kernels.map((k) => k.name)

describe("MoBA plan and cost", () => {
  it("1M decode acceptance numbers", () => {
    const { estimate: e } = estimate(1048576, "decode", { blockSize: 4096, topK: 12 })

    expect(e.keysPerQuery).toBe(49152)
    expect(e.sparsity).toBeCloseTo(0.953125, 12)
    expect((e.headOverlap as { origin: string }).origin).toBe("assumed")
    expect(e.modeledSpeedupVsDense).toBeGreaterThan(1)
  })

  it("speedup uses the dense planner", () => {
    const { estimate: e } = estimate(65536, "decode")
    const dense = planDense({ shape: shape(65536, "decode"), phase: "decode" }, device)

    expect(e.modeledSpeedupVsDense).toBeCloseTo(dense.cost.seconds / e.seconds, 12)
  })

  it("parts add up to the total", () => {
    for (const phase of ["prefill", "decode", "train"] as const) {
      const plan = planMoba({ shape: shape(65536, phase), phase }, resolveMoba({ headOverlap: "measured", fixedSparsity: false, blockSize: 2048, topK: 4 }, shape(65536, phase)), device)

      expect(sumComponents(plan.cost.components)).toBeCloseTo(plan.cost.seconds, 15)
      expect(plan.cost.kernels.reduce((sum, k) => sum + k.seconds, 0)).toBeCloseTo(plan.cost.seconds, 15)
    }
  })

  it("prefill prices every stage", () => {
    const plan = planMoba({ shape: shape(65536, "prefill"), phase: "prefill" }, resolveMoba({ headOverlap: "measured", fixedSparsity: false, blockSize: 2048, topK: 4 }, shape(65536, "prefill")), device)

    expect(kernelNames(plan)).toEqual(["mean-pool", "gate", "top-k", "varlen-index", "current-block forward", "history-forward", "merge"])
  })

  it("training adds the backward kernels", () => {
    const plan = planMoba({ shape: shape(32768, "train"), phase: "train" }, resolveMoba({ headOverlap: "measured", fixedSparsity: false, blockSize: 2048, topK: 4 }, shape(32768, "train")), device)

    expect(kernelNames(plan)).toEqual(expect.arrayContaining(["current-block backward", "history-backward", "history-gqa-reduce"]))
    const forward = plan.cost.kernels.find((k) => k.name === "history-forward")!
    const backward = plan.cost.kernels.find((k) => k.name === "history-backward")!
    // Five products against two, plus the recomputation of P: more than twice the forward.
    expect(backward.counts.tensorFlops).toBeGreaterThan(2 * forward.counts.tensorFlops)
  })

  it("top-1 is the current block only", () => {
    const config = resolveMoba({ headOverlap: "measured", fixedSparsity: false, blockSize: 4096, topK: 1 }, shape(65536, "prefill"))

    const plan = planMoba({ shape: shape(65536, "prefill"), phase: "prefill" }, config, device)

    expect(kernelNames(plan)).toEqual(["current-block forward"])
    expect(plan.history).toBeUndefined()
  })

  it("no choice skips the gate", () => {
    // 8 blocks and top-12: every query takes all its blocks.
    const plan = planMoba({ shape: shape(32768, "prefill"), phase: "prefill" }, resolveMoba({ headOverlap: "measured", fixedSparsity: false }, shape(32768, "prefill")), device)

    expect(plan.gated).toBe(false)
    expect(kernelNames(plan)).not.toContain("gate")
    expect(kernelNames(plan)).toContain("history-forward")
  })

  it("decode reads the group's union", () => {
    const config = resolveMoba({ headOverlap: "independent", fixedSparsity: false }, shape(1048576, "decode"))

    const perHead = planMoba({ shape: shape(1048576, "decode", 8), phase: "decode" }, config, device)
    const shared = planMoba({ shape: shape(1048576, "decode", 8), phase: "decode" }, config, device, "group-shared")

    expect(perHead.decodeUnionBlocks).toBeCloseTo(historyUnion(255, 11, 4, config.overlap), 12)
    expect(shared.decodeUnionBlocks).toBe(11)
    const kvBytes = (plan: typeof perHead) => plan.cost.kernels.find((k) => k.name === "history-forward")!.counts.bytes.hbm
    expect(kvBytes(perHead)).toBeGreaterThan(3 * kvBytes(shared))
    expect(perHead.cost.seconds).toBeGreaterThan(shared.cost.seconds)
  })

  it("multi-query decode unites every selection", () => {
    const decode: AttentionShape = { ...shape(262144, "decode", 2), seqLenQ: 4 }
    const config = resolveMoba({ headOverlap: "independent", fixedSparsity: false }, decode)

    const plan = planMoba({ shape: decode, phase: "decode" }, config, device)

    // 4 queries × 4 heads of a group, each taking 11 of the 63 past blocks.
    expect(plan.decodeUnionBlocks).toBeCloseTo(historyUnion(63, 11, 16, config.overlap), 12)
  })

  it("scenario rows decode and plan", async () => {
    const { loadScenario } = await import("../../../src/workload/scenario.js")
    const { caseShape } = await import("../../../src/runner/scenario-run.js")

    const { scenario } = await loadScenario("scenarios/moba-vs-dense.ts")
    const fixed = scenario.cases.find((c): c is ScenarioCase => "variant" in c && c.variant === "moba" && c.options?.fixedSparsity === true)!
    const row = planOperation({ variant: "moba", shape: caseShape(scenario, fixed, 8192), phase: fixed.phase, options: fixed.options }, profile)

    expect(scenario.hardware).toEqual(["h100-sxm", "a100-sxm-80g"])
    expect(Math.max(...fixed.seqLens)).toBe(10485760)
    expect(row.estimate).toMatchObject({ blockSize: 128, topK: 3, keysPerQuery: 384 })
  })

  it("more bandwidth never slows decode", () => {
    const config = resolveMoba({ headOverlap: "independent", fixedSparsity: false }, shape(262144, "decode"))
    const request = { shape: shape(262144, "decode", 8), phase: "decode" as const }

    const base = planMoba(request, config, device)
    const faster = planMoba(request, config, { ...device, hbmBytesPerSecond: 2 * device.hbmBytesPerSecond })

    expect(faster.cost.seconds).toBeLessThanOrEqual(base.cost.seconds)
  })

  it("alignment contrasts carry time, bytes, bound", () => {
    const { estimate: e } = estimate(262144, "decode", {}, 8)
    const alignment = e.alignment as Record<string, { seconds: number; bytes: { hbm: number }; bound: string; keysPerQuery: number }>

    for (const key of ["perHeadUnion", "groupShared", "smallBlock", "tokenLevel"]) {
      expect(alignment[key]!.seconds).toBeGreaterThan(0)
      expect(alignment[key]!.bytes.hbm).toBeGreaterThan(0)
      expect(typeof alignment[key]!.bound).toBe("string")
      expect(alignment[key]!.keysPerQuery).toBe(e.keysPerQuery)
    }
    expect(alignment.groupShared!.bytes.hbm).toBeLessThan(alignment.perHeadUnion!.bytes.hbm)
    expect(alignment.smallBlock!.seconds).toBeGreaterThan(alignment.perHeadUnion!.seconds)
    expect(alignment.tokenLevel!.seconds).toBeGreaterThan(alignment.perHeadUnion!.seconds)
  })

  it("measured overlap reprices decode", () => {
    const planned = estimate(1048576, "decode", {}, 8)

    const agreed = withMeasurements(planned, { "moba.unionExcess": 0, "moba.unionExcessMax": 33, "moba.gatedPositions": 1 })

    const overlap = agreed.estimate.headOverlap as { value: number; origin: string }
    expect(overlap).toMatchObject({ value: 1, origin: "measured" })
    // Full agreement: 11 history blocks plus the current one.
    expect(agreed.estimate.blocksLoadedPerKvHead).toBe(12)
    expect(agreed.estimate.seconds).toBeLessThan(planned.estimate.seconds)
  })

  it("given overlap ignores measurements", () => {
    const planned = estimate(1048576, "decode", { headOverlap: 0.5 })

    const after = withMeasurements(planned, { "moba.unionExcess": 0, "moba.unionExcessMax": 33 })

    expect(after.estimate.headOverlap).toMatchObject({ value: 0.5, origin: "given" })
    expect(after.estimate.seconds).toBe(planned.estimate.seconds)
  })

  it("independent overlap is reported as a fraction", () => {
    const { estimate: e } = estimate(1048576, "decode")
    const union = historyUnion(255, 11, 4, { kind: "independent", origin: "assumed" })

    expect((e.headOverlap as { value: number }).value).toBeCloseTo(overlapOfUnion(255, 11, 4, union), 12)
    expect(e.blocksLoadedPerKvHead).toBeCloseTo(union + 1, 12)
  })

  it("fixed sparsity keeps 64 blocks", () => {
    const { estimate: e } = estimate(65536, "prefill", { fixedSparsity: true })

    expect(e).toMatchObject({ blockSize: 1024, topK: 3, blocks: 64, sparsityMode: "fixed-blocks" })
    expect(e.keysPerQuery).toBe(3 * 1024)
  })
})
