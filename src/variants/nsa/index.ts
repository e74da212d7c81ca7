import type { DeviceRates } from "../../hardware/device.js"
import { describeTiling } from "../dense/plan.js"
import type { OperationRequest, VariantModule, VariantPlan } from "../variant.js"
import { nsaDetails } from "./details.js"
import { NsaOptions, nsaFlags } from "./options.js"
import { planNsa } from "./plan.js"
import { fullNsaUnits, sampleNsa } from "./sample.js"
import { describeSelectionTiling } from "./selection-schedule.js"

export { NsaOptions } from "./options.js"

/** DeepSeek Native Sparse Attention (arXiv 2502.11089): compressed, selected and sliding-window branches combined by gates. */
export const nsaVariant: VariantModule<NsaOptions> = {
  id: "nsa",
  description: "DeepSeek Native Sparse Attention: compressed tokens, group-shared top-n blocks and a sliding window, gated per head",
  options: NsaOptions,
  flags: nsaFlags,
  plan(request: OperationRequest<NsaOptions>, device: DeviceRates): VariantPlan {
    const plan = planNsa(request, device)
    const compressed = plan.compressed ? describeTiling(plan.compressed.tiling) : "none"
    const backward = [
      plan.compressed?.backwardTiling ? `compressed backward ${describeTiling(plan.compressed.backwardTiling)}` : undefined,
      plan.window.backwardTiling ? `window backward ${describeTiling(plan.window.backwardTiling)}` : undefined
    ].filter((text): text is string => text !== undefined)
    return {
      cost: plan.cost,
      tilingDescription:
        `compressed: ${compressed}; selected: ${describeSelectionTiling(plan.selection.tiling)}; window: ${describeTiling(plan.window.tiling)}` +
        (backward.length > 0 ? `; ${backward.join("; ")}` : ""),
      tiling: {
        compressed: plan.compressed ? { ...plan.compressed.tiling } : null,
        selected: { ...plan.selection.tiling },
        window: { ...plan.window.tiling },
        ...(plan.compressed?.backwardTiling ? { compressedBackward: { ...plan.compressed.backwardTiling } } : {}),
        ...(plan.window.backwardTiling ? { windowBackward: { ...plan.window.backwardTiling } } : {})
      },
      considered: plan.considered,
      rejected: plan.rejected,
      details: nsaDetails(plan, device),
      sample: (options) => sampleNsa(plan, options),
      fullUnits: (options) => fullNsaUnits(plan, options)
    }
  }
}
