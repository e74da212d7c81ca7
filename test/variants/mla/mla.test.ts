import { describe, expect, it } from "vitest"
import { planOperation } from "../../../src/estimate.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { mlaAttentionShape, MlaOptions } from "../../../src/variants/mla/index.js"
import { Schema } from "effect"
import type { AttentionShape } from "../../../src/workload/shape.js"

const h800 = loadProfile("h800-sxm")
const defaults = Schema.decodeUnknownSync(MlaOptions)({})

function shape(seqLenQ: number, seqLenKV: number, batch: number): AttentionShape {
  return { batch, heads: 128, kvHeads: 128, headDim: 192, headDimV: 128, seqLenQ, seqLenKV, causal: true, dtype: "bf16" }
}

describe("mla variant", () => {
  it("absorbed decode is MQA over the latent", () => {
    const attention = mlaAttentionShape(shape(1, 4096, 1), defaults, true)

    expect(attention.kvHeads).toBe(1)
    expect(attention.headDim).toBe(576)
    expect(attention.headDimV).toBe(512)
    expect(attention.sharedKV).toBe(true)
  })

  it("decode reads one latent per token", () => {
    const seqLen = 32768
    const batch = 16

    const planned = planOperation({ variant: "mla", shape: shape(1, seqLen, batch), phase: "decode" }, h800)

    // The latent (512 + 64 elements, bf16) of every cached token, once. On top come
    // the split-KV partial outputs (written and read back) and the absorption
    // weights (128 heads × 512 × 256 bf16 = 32 MiB): about 13 % here.
    const latentBytes = batch * seqLen * 576 * 2
    expect(planned.estimate.bytes.hbm).toBeGreaterThanOrEqual(latentBytes)
    expect(planned.estimate.bytes.hbm).toBeLessThan(latentBytes * 1.15)
    expect(planned.estimate.kvCacheBytesPerTokenPerLayer).toBe(1152)
    expect(planned.estimate.absorbed).toBe(true)
  })

  it("prefill expands the heads", () => {
    const planned = planOperation({ variant: "mla", shape: shape(4096, 4096, 1), phase: "prefill" }, h800)

    expect(planned.estimate.absorbed).toBe(false)
    expect(planned.estimate.kernels.map((k) => k.name)).toContain("mla-up-projection")
    // Useful attention FLOPs: exact causal pairs × 2 × (dk + dv) × heads with dk = 192, dv = 128.
    const pairs = (4096 * 4097) / 2
    expect(planned.estimate.kernels.find((k) => k.name === "forward")).toBeDefined()
    expect(planned.estimate.flops).toBe(2 * pairs * (192 + 128) * 128 + 2 * 4096 * 512 * 128 * (128 + 128))
  })

  it("projection work is not free", () => {
    const planned = planOperation({ variant: "mla", shape: shape(1, 8192, 8), phase: "decode" }, h800)
    const absorb = planned.estimate.kernels.find((k) => k.name === "mla-absorb")

    expect(absorb).toBeDefined()
    expect(absorb!.seconds).toBeGreaterThan(0)
  })

  it("executed latent tiles match float64", async () => {
    const planned = planOperation({ variant: "mla", shape: shape(1, 2048, 2), phase: "decode" }, h800)
    const units = planned.plan.sample({ seed: 2, budgetSteps: 8, wholeItemMaxSteps: 4, backend: "cpu" })
    const { runAttentionTile } = await import("../../../src/exec/attention-step.js")

    for (const unit of units) {
      const results = unit.tasks.map((task) => runAttentionTile(task as never))
      const check = unit.check(results)
      expect(check.maxAbsError).toBeLessThan(1e-3)
      results.forEach((result, index) => {
        expect(result.counted.loadBytes).toBe(unit.expected[index]!.loadBytes)
        expect(result.counted.tensorFlops).toBe(unit.expected[index]!.tensorFlops)
      })
    }
  })

  it("rejects an unknown absorb mode", () => {
    expect(() => planOperation({ variant: "mla", shape: shape(1, 1024, 1), phase: "decode", options: { absorb: "sometimes" } }, h800)).toThrow(/absorb/)
  })
})
