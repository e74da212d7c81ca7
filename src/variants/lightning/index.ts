import type { DeviceRates } from "../../hardware/device.js"
import type { OperationRequest, VariantModule, VariantPlan } from "../variant.js"
import { bytesPerElement } from "../dense/schedule.js"
import { compareWithDense, crossoverSeqLen, type Crossover } from "./compare.js"
import { fastestDecayHead } from "./decay.js"
import { LightningOptions, lightningFlags, resolveSettings } from "./options.js"
import { planLightning, type LightningPlan } from "./plan.js"
import { sampleLightning } from "./sample.js"
import { describeTiling } from "./tiling.js"

export const lightningVariant: VariantModule<LightningOptions> = {
  id: "lightning",
  description: "MiniMax lightning attention: causal linear attention with per-head exponential decay, tiled in blocks with a running dk × dv state",
  options: LightningOptions,
  flags: lightningFlags,
  plan(request: OperationRequest<LightningOptions>, device: DeviceRates): VariantPlan {
    const settings = resolveSettings(request.options, request.shape)
    const plan = planLightning({ shape: request.shape, phase: request.phase, kernel: request.kernel, settings }, device)
    return {
      cost: plan.cost,
      tilingDescription: describeTiling(plan.tiling),
      tiling: { ...plan.tiling },
      considered: plan.considered,
      rejected: plan.rejected,
      details: lightningDetails(plan, device),
      sample: (options) => sampleLightning(plan.schedule, options)
    }
  }
}

/** Estimate details: state sizes, the serial chain, the decay rates, the dense comparison and notes. */
function lightningDetails(plan: LightningPlan, device: DeviceRates): Record<string, unknown> {
  const { schedule, tiling, request } = plan
  const { shape, phase, settings } = request
  const stateBytesPerHead = shape.headDim * shape.headDimV * settings.stateBytes
  const kvBytesPerToken = (shape.headDim + shape.headDimV) * bytesPerElement(shape)
  const decode = tiling.scheme === "decode"
  const dense = compareWithDense(shape, phase, request.kernel, device, plan.cost.seconds)
  const crossover = crossoverSeqLen(shape, phase, request.kernel, settings, device)
  const fastest = fastestDecayHead(settings.logDecay)
  const slowest = settings.logDecay.reduce((best, value, head) => (value > settings.logDecay[best]! ? head : best), 0)
  const chains = serialChain(plan, device)

  return {
    keysPerQuery: decode ? 1 : Math.min(settings.blockSize, shape.seqLenQ),
    keysPerQueryMeaning:
      "K/V rows a query reads directly: its own block (prefill, train) or its own token (decode). Every older token reaches it only through the state, " +
      "whose size is stateBytesPerHead, equal to stateTokensEquivalent tokens of a K/V cache",
    stateBytesPerHead,
    stateBytesPerSequence: shape.heads * stateBytesPerHead,
    stateTokensEquivalent: stateBytesPerHead / kvBytesPerToken,
    stateDtype: settings.stateDtype,
    blockSize: settings.blockSize,
    blocks: schedule.blocks,
    scheme: tiling.scheme,
    serialChain: chains,
    decay: {
      rule: settings.decaySource,
      fastest: { head: fastest, rate: Math.exp(settings.logDecay[fastest]!) },
      slowest: { head: slowest, rate: Math.exp(settings.logDecay[slowest]!) }
    },
    dense: { seconds: dense.denseSeconds, tiling: dense.denseTiling },
    modeledSpeedupVsDense: dense.modeledSpeedupVsDense,
    crossoverSeqLen: crossover.seqLen ?? null,
    crossoverMeaning: crossover.meaning,
    ...(settings.stateDtype !== "fp32"
      ? {
          accuracyRisk:
            `the state is stored as ${settings.stateDtype} (${settings.stateDtype === "bf16" ? 8 : 11} significant bits): every stored copy (decode cache, ` +
            "the split layout's per-block prefixes, the final state) is rounded, and the rounding error of a slowly decaying head accumulates over the whole context"
        }
      : {}),
    notes: notes(plan, device, crossover)
  }
}

/** Describes the serial part of the operation: blocks per serial walk, the walks, and the SM slots they could fill. */
function serialChain(plan: LightningPlan, device: DeviceRates): Record<string, unknown> {
  const { schedule, tiling } = plan
  const lanes = schedule.shape.batch * schedule.shape.heads
  switch (tiling.scheme) {
    case "decode":
      return { kernel: "decode", blocksPerChain: 0, chains: schedule.lanes, slots: device.sms * tiling.ctasPerSm }
    case "fused":
      return { kernel: "forward", blocksPerChain: schedule.blocks, chains: schedule.lanes, slots: device.sms * tiling.ctasPerSm }
    case "split":
      return { kernel: "state-scan", blocksPerChain: schedule.blocks, chains: lanes * tiling.stateSplits, slots: device.sms * tiling.scanCtasPerSm }
  }
}

function notes(plan: LightningPlan, device: DeviceRates, crossover: Crossover): string[] {
  const { schedule, tiling, request } = plan
  const { shape, phase, settings } = request
  const b = settings.blockSize
  const lines: string[] = []
  if (tiling.scheme === "decode") {
    lines.push(
      `Decode reads and writes each head's ${shape.headDim}×${shape.headDimV} state (${settings.stateDtype}) once per token, whatever the context length: ` +
        "its time does not grow with seqLenKV, unlike a softmax KV cache.",
      "The state update and q·S are matrix-vector work on the FP32 pipes (no tensor cores), so at this size the kernel is memory- and launch-bound."
    )
  } else {
    lines.push(
      `Per head and block of B = ${b} rows the tiles execute 2·B²·(dk+dv) FLOPs for the masked intra-block product (the full B×B block, masked half included) ` +
        "and 4·B·dk·dv for the inter-block product and the state update: linear in the sequence length, so prefill time per token stays flat.",
      "Decay exponents are evaluated only for distances ≥ 0 (masked before exp), so λ^distance underflows to 0 for fast heads instead of overflowing.",
      tiling.scheme === "fused"
        ? `Fused layout on ${device.profileId}: ${schedule.lanes} CTAs (batch × heads × ${tiling.valueSplits} value slices) each walk every block of their head in order ` +
            `with the FP32 state on chip. The blocks of a head are serial, so at most ${schedule.lanes} of ${device.sms * tiling.ctasPerSm} SM slots are busy.` +
            (tiling.valueSplits > 1 ? " Each value slice recomputes Q·Kᵀ." : "")
        : `Split layout on ${device.profileId}: intra and inter kernels run one CTA per block in parallel, and the state scan walks the blocks serially in ` +
            `${shape.batch * shape.heads * tiling.stateSplits} CTAs (${tiling.stateSplits} state slices per head). Partial outputs and per-block states go through memory.`
    )
    if (tiling.streamKeys) {
      lines.push("K and V stream through shared memory in 64-key sub-tiles, so each row chunk of a block re-reads the block's earlier keys from L2 (not HBM).")
    }
    if (schedule.loadsState) lines.push(`The ${schedule.prefixTokens} cached tokens before the chunk enter only through the stored state, read once per lane.`)
  }
  if (phase === "train") {
    lines.push(
      tiling.scheme === "fused"
        ? "Backward (priced, not executed): dQ comes from a forward walk that rebuilds KV, dK and dV from a reverse walk carrying dKV ← λ^B·dKV + (Q ⊙ decays)ᵀ·dO, " +
            "both walks in one launch. Per block that is 2·B²·(3dk+3dv) intra-block FLOPs (both walks recompute their B×B products) and 10·B·dk·dv inter-block FLOPs."
        : "Backward (priced, not executed): a per-block intra kernel (S, dP and the intra parts of dQ, dK, dV, plus local KV and dKV), a forward KV scan and a reverse dKV scan, " +
            "and a per-block inter kernel. Per block that is 2·B²·(3dk+2dv) intra-block FLOPs and 10·B·dk·dv inter-block FLOPs.",
      "Backward matrix products run at the FlashAttention backward's fitted MMA efficiency. Gradients of the fixed decay rates are not computed."
    )
  }
  if (shape.kvHeads < shape.heads) {
    lines.push("With GQA, K and V are shared by a group but every query head keeps its own state, because the decay differs per head.")
  }
  if (tiling.scheme !== "decode") {
    lines.push("Executed blocks compute in FP32, including the state operand of Q·KV. A kernel that feeds the state to the tensor cores as a 16-bit operand rounds it each block.")
  }
  lines.push(
    "modeledSpeedupVsDense prices causal softmax attention of the same shape and phase through the dense variant on the same device.",
    `Crossover with dense on ${device.profileId} (crossoverSeqLen): ${crossover.meaning}.`
  )
  return lines
}
