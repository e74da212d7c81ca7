import { Schema } from "effect"
import { gemmKernel } from "../../cost/gemm.js"
import { combineKernels, priceKernel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape } from "../../workload/shape.js"
import { denseVariantPlan } from "../dense/index.js"
import { planDense } from "../dense/plan.js"
import type { OperationRequest, VariantModule, VariantPlan } from "../variant.js"

const Dim = Schema.Number.pipe(Schema.int(), Schema.positive())

/**
 * Multi-head latent attention. Defaults are DeepSeek-V3's: a 512-element latent
 * (kv_lora_rank) plus a 64-element rotary key cached per token and layer, per-head
 * no-rope query/key dim 128 and value dim 128 (DeepSeek-V2 paper, arXiv
 * 2405.04434; DeepSeek-V3 model configuration).
 */
export const MlaOptions = Schema.Struct({
  kvLoraRank: Schema.optionalWith(Dim, { default: () => 512 }),
  ropeDim: Schema.optionalWith(Dim, { default: () => 64 }),
  qkNopeDim: Schema.optionalWith(Dim, { default: () => 128 }),
  vHeadDim: Schema.optionalWith(Dim, { default: () => 128 }),
  /**
   * "auto": absorbed weights in decode (multi-query attention over the latent),
   * expanded per-head K and V in prefill and train; "always" or "never" force one form.
   */
  absorb: Schema.optionalWith(Schema.Literal("auto", "always", "never"), { default: () => "auto" as const })
})
export type MlaOptions = typeof MlaOptions.Type

/** The attention the kernel really runs, and whether the weights are absorbed. */
export function mlaAttentionShape(shape: AttentionShape, options: MlaOptions, absorbed: boolean): AttentionShape {
  if (absorbed) {
    // Every query head attends to the one latent row per token: MQA with dk = latent + rope, dv = latent.
    return { ...shape, kvHeads: 1, headDim: options.kvLoraRank + options.ropeDim, headDimV: options.kvLoraRank, sharedKV: true }
  }
  return { ...shape, kvHeads: shape.heads, headDim: options.qkNopeDim + options.ropeDim, headDimV: options.vHeadDim, sharedKV: false }
}

const isAbsorbed = (request: OperationRequest<MlaOptions>): boolean =>
  request.options.absorb === "always" || (request.options.absorb === "auto" && request.phase === "decode")

export const mlaVariant: VariantModule<MlaOptions> = {
  id: "mla",
  description: "multi-head latent attention (DeepSeek-V2/V3): absorbed MQA over the latent cache in decode, expanded heads in prefill",
  options: MlaOptions,
  flags: [
    { flag: "mla-kv-rank", key: "kvLoraRank", type: "integer", describe: "latent (kv_lora_rank) elements cached per token" },
    { flag: "mla-rope-dim", key: "ropeDim", type: "integer", describe: "decoupled rotary key elements cached per token" },
    { flag: "mla-nope-dim", key: "qkNopeDim", type: "integer", describe: "per-head query/key elements without rotary embedding" },
    { flag: "mla-v-dim", key: "vHeadDim", type: "integer", describe: "per-head value elements" },
    { flag: "mla-absorb", key: "absorb", type: "string", describe: "auto (absorbed in decode only), always or never" }
  ],
  plan(request: OperationRequest<MlaOptions>, device: DeviceRates): VariantPlan {
    const { shape, options } = request
    const absorbed = isAbsorbed(request)
    const attention = mlaAttentionShape(shape, options, absorbed)
    const plan = planDense({ shape: attention, phase: request.phase, kernel: request.kernel }, device)
    const projection = priceKernel(projectionKernel(request, absorbed, device), device)
    const cost = combineKernels([...plan.cost.kernels, projection])

    const s = device.elementBytes
    const latentBytes = (options.kvLoraRank + options.ropeDim) * s
    const wrapped = denseVariantPlan({ ...plan, cost }, {
      keysPerQuery: shape.seqLenKV,
      absorbed,
      attentionShape: attention,
      kvCacheBytesPerTokenPerLayer: latentBytes,
      notes: [
        absorbed
          ? `absorbed: ${shape.heads} query heads share one ${options.kvLoraRank + options.ropeDim}-element latent row per token (MQA, dk = ${attention.headDim}, dv = ${attention.headDimV}), so decode reads ${latentBytes} bytes per token and layer`
          : `expanded: the latent is up-projected to ${shape.heads} heads of K (${attention.headDim}) and V (${attention.headDimV}) per token before FlashAttention; the up-projection is priced as its own kernel`,
        "the projection kernel covers the matrix products MLA adds around attention; the Q and output projections every attention layer has are not included"
      ]
    })
    return wrapped
  }
}

/**
 * The matrix products MLA adds around the attention kernel. Absorbed: each
 * query head's no-rope query is mapped into latent space (qkNope × rank) and
 * its latent output back to values (rank × vHeadDim). Expanded: every key's
 * latent is up-projected to per-head no-rope keys and values.
 */
function projectionKernel(request: OperationRequest<MlaOptions>, absorbed: boolean, device: DeviceRates) {
  const { shape, options } = request
  const s = device.elementBytes
  const heads = shape.heads
  if (absorbed) {
    const rows = shape.batch * shape.seqLenQ * heads
    const flops = 2 * rows * options.kvLoraRank * (options.qkNopeDim + options.vHeadDim)
    const weights = heads * options.kvLoraRank * (options.qkNopeDim + options.vHeadDim) * s
    const activations = rows * (options.qkNopeDim + options.kvLoraRank + options.kvLoraRank + options.vHeadDim) * s
    return gemmKernel("mla-absorb", flops, weights + activations, device)
  }
  const keys = shape.batch * shape.seqLenKV
  const flops = 2 * keys * options.kvLoraRank * heads * (options.qkNopeDim + options.vHeadDim)
  const bytes = keys * (options.kvLoraRank + heads * (options.qkNopeDim + options.vHeadDim)) * s + heads * options.kvLoraRank * (options.qkNopeDim + options.vHeadDim) * s
  return gemmKernel("mla-up-projection", request.phase === "train" ? 3 * flops : flops, request.phase === "train" ? 3 * bytes : bytes, device)
}
