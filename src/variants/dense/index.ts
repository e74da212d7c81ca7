import { Schema } from "effect"
import { InputError } from "../../errors.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { OperationRequest, VariantModule, VariantPlan } from "../variant.js"
import { describeTiling, planDense, type DensePlan } from "./plan.js"
import { fullDenseUnits, sampleDense } from "./sample.js"

export const DenseOptions = Schema.Struct({
  /** Sliding window in keys, counting the query itself (needs a causal mask). */
  window: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
})
export type DenseOptions = typeof DenseOptions.Type

/** Wrap a dense plan as a variant plan. */
export function denseVariantPlan(plan: DensePlan, details: Readonly<Record<string, unknown>> = {}): VariantPlan {
  return {
    cost: plan.cost,
    tilingDescription: describeTiling(plan.tiling) + (plan.backwardTiling ? `; backward ${describeTiling(plan.backwardTiling)}` : ""),
    tiling: { forward: { ...plan.tiling }, ...(plan.backwardTiling ? { backward: { ...plan.backwardTiling } } : {}) },
    considered: plan.considered,
    rejected: plan.rejected,
    details,
    sample: (options) => sampleDense(plan.schedule, options),
    fullUnits: (options) => fullDenseUnits(plan.schedule, options)
  }
}

export const denseVariant: VariantModule<DenseOptions> = {
  id: "dense",
  description: "softmax attention with FlashAttention-2/3 tiling (MHA, GQA, MQA; optional sliding window)",
  options: DenseOptions,
  flags: [{ flag: "window", key: "window", type: "integer", describe: "sliding window in keys, counting the query itself (needs --causal)" }],
  plan(request: OperationRequest<DenseOptions>, device: DeviceRates): VariantPlan {
    const { window } = request.options
    if (window !== undefined && !request.shape.causal) {
      throw new InputError({ origin: "dense options", issues: [{ path: "window", value: window, expected: "a causal mask as well: a sliding window looks back from each query" }] })
    }
    const shape = { ...request.shape, window }
    const plan = planDense({ shape, phase: request.phase, kernel: request.kernel }, device)
    const keysPerQuery = window === undefined ? shape.seqLenKV : Math.min(window, shape.seqLenKV)
    return denseVariantPlan(plan, { keysPerQuery, ...(window !== undefined ? { window } : {}) })
  }
}
