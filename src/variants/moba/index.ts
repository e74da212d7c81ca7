import type { DeviceRates } from "../../hardware/device.js"
import { describeTiling } from "../dense/plan.js"
import type { OperationRequest, VariantModule, VariantPlan } from "../variant.js"
import type { Alignment } from "./alignment.js"
import { mobaDetails } from "./details.js"
import { describe } from "./history-cost.js"
import { MobaOptions, mobaFlags, resolveMoba } from "./options.js"
import { planMoba, type MobaPlan } from "./plan.js"
import { measuredKeys, sampleMoba } from "./sample.js"

export { MobaOptions } from "./options.js"

/** Computes the overlap fraction executed gating measured, or undefined when no sampled position had a choice to spread. */
export function measuredOverlap(measured: Readonly<Record<string, number>>): { value: number; positions: number } | undefined {
  const maxExcess = measured[measuredKeys.maxExcess] ?? 0
  if (maxExcess <= 0) return undefined
  return { value: 1 - (measured[measuredKeys.excess] ?? 0) / maxExcess, positions: measured[measuredKeys.positions] ?? 0 }
}

function variantPlan(request: OperationRequest<MobaOptions>, device: DeviceRates, measured?: { value: number; positions: number }, reuse?: Alignment): VariantPlan {
  const config = resolveMoba(request.options, request.shape, measured?.value)
  const plan = planMoba({ shape: request.shape, phase: request.phase, kernel: request.kernel }, config, device)
  const details = mobaDetails(plan, device, measured?.positions, reuse)
  const priced: VariantPlan = {
    cost: plan.cost,
    tilingDescription: tilingDescription(plan),
    tiling: tilingRecord(plan),
    considered: plan.considered,
    rejected: plan.rejected,
    details,
    sample: (options) => sampleMoba(plan, options),
    withMeasurements: (values) => {
      const overlap = measuredOverlap(values)
      if (request.options.headOverlap !== "measured" || overlap === undefined) return priced
      // The overlap only prices decode (the K/V union it reads); other phases keep their contrasts.
      return variantPlan(request, device, overlap, request.phase === "decode" ? undefined : (details.alignment as Alignment))
    }
  }
  return priced
}

function tilingDescription(plan: MobaPlan): string {
  const current = plan.currentBlock.map((part) => describeTiling(part.plan.tiling)).join(", ")
  const history = plan.history ? `; history ${describe(plan.history.tiling)}` : ""
  const backward = plan.history?.backwardTiling ? `; history backward ${describe(plan.history.backwardTiling)}` : ""
  return `block ${plan.config.blockSize} top-${plan.config.topK}: current block ${current}${history}${backward}`
}

function tilingRecord(plan: MobaPlan): Record<string, unknown> {
  return {
    blockSize: plan.config.blockSize,
    topK: plan.config.topK,
    currentBlock: plan.currentBlock.map((part) => ({
      seqLenQ: part.group.seqLenQ,
      seqLenKV: part.group.seqLenKV,
      chunks: part.group.blocks.length,
      forward: { ...part.plan.tiling },
      ...(part.plan.backwardTiling ? { backward: { ...part.plan.backwardTiling } } : {})
    })),
    ...(plan.history ? { history: { ...plan.history.tiling }, ...(plan.history.backwardTiling ? { historyBackward: { ...plan.history.backwardTiling } } : {}) } : {})
  }
}

export const mobaVariant: VariantModule<MobaOptions> = {
  id: "moba",
  description: "Kimi Mixture of Block Attention: per-head top-k of mean-pooled key blocks plus the causal current block, varlen FlashAttention merged by log-sum-exp",
  options: MobaOptions,
  flags: mobaFlags,
  plan: (request, device) => variantPlan(request, device)
}
