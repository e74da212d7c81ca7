import type { DeviceRates } from "../../hardware/device.js"
import { visiblePairs } from "../../workload/mask.js"
import { describeTiling, planDense } from "../dense/plan.js"
import { alignmentAnalysis } from "./alignment.js"
import { compressionMlp } from "./auxiliary.js"
import { compressedTokens, keysAt, keysOverPositions } from "./geometry.js"
import type { NsaPlan } from "./plan.js"
import { describeSelectionTiling } from "./selection-schedule.js"

/** Kernels that are not attention over a branch: the work NSA adds around its three attentions. */
const auxiliaryKernels = new Set(["compress-mlp", "compressed-combine", "select-score", "select-topk", "combine-gate"])

/**
 * Builds the estimate's NSA fields. They give keys per query by branch,
 * sparsity and the memory-access speedup of Native Sparse Attention (arXiv
 * 2502.11089, Table 4). They add the modeled speedup against the dense variant
 * on the same device and shape, the hardware-alignment contrasts, and notes on
 * the mechanisms behind the numbers.
 */
export function nsaDetails(plan: NsaPlan, device: DeviceRates): Record<string, unknown> {
  const { shape, phase, options } = plan.request
  const g = plan.geometry
  const s = shape.seqLenKV
  const keys = keysAt(g, s - 1)
  const offset = s - shape.seqLenQ
  const overQueries = keysOverPositions(g, offset, offset + shape.seqLenQ)
  const densePairs = visiblePairs(shape)

  const dense = planDense({ shape, phase, kernel: plan.request.kernel }, device)
  const speedupVsDense = phase === "decode" ? s / keys.total : densePairs / overQueries.total
  const tableTokens = s / g.compressStride + g.selectCount * g.selectBlock + g.window
  const formulaTokens = Math.floor((s - g.compressBlock) / g.compressStride) + 1 + g.selectCount * g.selectBlock + g.window

  const mlp = compressionMlp(shape, g, options)
  const launches = plan.cost.kernels.length
  // Time without launch overhead, so that the three shares add up to 1.
  const withoutLaunch = (names: (name: string) => boolean): number =>
    plan.cost.kernels.filter((k) => names(k.name)).reduce((sum, k) => sum + k.seconds - k.components.launch, 0)
  const auxiliarySeconds = withoutLaunch((name) => auxiliaryKernels.has(name))
  const attentionSeconds = withoutLaunch((name) => !auxiliaryKernels.has(name))

  return {
    keysPerQuery: keys.total,
    branches: { compressed: keys.compressed, selected: keys.selected, window: keys.window },
    denseKeysPerQuery: s,
    sparsity: 1 - keys.total / s,
    ...(keys.total > s
      ? { sparsityNote: "negative: each branch has its own K/V and they cover the same positions, so at this length NSA attends more keys than dense attention" }
      : {}),
    ...(phase === "decode"
      ? {}
      : { averageKeysPerQuery: overQueries.total / shape.seqLenQ, averageSparsity: 1 - overQueries.total / densePairs }),
    speedupVsDense,
    speedupVsDenseModel:
      phase === "decode"
        ? "memory access per decode step (the paper's Table 4 model): dense K/V tokens loaded / NSA K/V tokens loaded over its three branches"
        : "attended (query, key) pairs: dense causal / NSA summed over its three branches",
    modeledSpeedupVsDense: dense.cost.seconds / plan.cost.seconds,
    denseSeconds: dense.cost.seconds,
    denseTiling: describeTiling(dense.tiling),
    timeShares: {
      attention: attentionSeconds / plan.cost.seconds,
      auxiliary: auxiliarySeconds / plan.cost.seconds,
      launch: plan.cost.components.launch / plan.cost.seconds
    },
    timeSharesNote:
      "shares of NSA's modeled time: the attention kernels of the three branches (backward included in training), the work around them (compression MLP, block scoring and top-n, gates and final combine), and kernel launch overhead",
    kernelLaunches: { nsa: launches, dense: dense.cost.kernels.length },
    keysPerQueryFormula:
      `floor((s − l)/d) + 1 + n·l' + w = floor((${s} − ${g.compressBlock})/${g.compressStride}) + 1 + ${g.selectCount}·${g.selectBlock} + ${g.window} = ${formulaTokens}` +
      (formulaTokens === keys.total ? "" : `; the exact count is ${keys.total} because fewer than n blocks or w tokens exist, or the current block is partly filled`),
    paperTableTokens: tableTokens,
    tokensVsPaperTable: keys.total - tableTokens,
    keysPerQueryNote:
      `The paper's Table 4 counts s/d + n·l' + w = ${tableTokens} tokens, and its text formula floor((s − l)/d) + n·l' + w gives ${formulaTokens - 1} (${tableTokens - formulaTokens + 1} fewer). ` +
      `This model counts ${keys.total}: the text formula plus 1 for compressed token 0, which the formula misses. That is ${keys.total - tableTokens} tokens from the table, within the ±2 tokens by which the paper's two counts differ.`,
    compression: {
      mlp: `φ per KV head: l·dk → ${mlp.keyHidden} → dk for keys, l·dv → ${mlp.valueHidden} → dv for values, one activation; weights shared by the layer's KV heads`,
      flopsPerCompressedToken: mlp.flopsPerToken,
      weightBytes: mlp.weights * device.elementBytes,
      compressedTokens: compressedTokens(g, s),
      ...(phase === "decode" ? { decodeAmortizedOver: g.compressStride } : {})
    },
    gates: {
      mlp: `per query head: dk → ${options.gateHidden} → 3, sigmoid; o = g_cmp·o_cmp + g_slc·o_slc + g_win·o_win`,
      flopsPerRow: 2 * (shape.headDim * options.gateHidden + options.gateHidden * 3)
    },
    selection: {
      blocksPerQuery: Math.min(g.selectCount, Math.floor((s - 1) / g.selectBlock) + 1),
      alwaysKept: { initial: g.initialBlocks, local: g.localBlocks },
      scoring: plan.scores ? "computed" : "skipped: no compressed token exists or every block is selected anyway",
      tieRule: "equal block scores go to the earlier block"
    },
    branchTilings: {
      compressed: plan.compressed ? describeTiling(plan.compressed.tiling) : "none (shorter than one compression block)",
      scores: plan.scores ? describeTiling(plan.scores.tiling) : "none",
      selected: describeSelectionTiling(plan.selection.tiling),
      window: describeTiling(plan.window.tiling)
    },
    alignment: alignmentAnalysis({ shape, geometry: g, phase, kernels: plan.generations, selection: plan.selection }, device),
    notes: nsaNotes
  }
}

const nsaNotes: ReadonlyArray<string> = [
  "NSA keys per query per KV-head group: floor((s − l)/d) + 1 compressed tokens, n selected blocks of l' keys (the query's own block only up to the query) and a window of w keys; each branch has its own K and V, so the three counts add.",
  "speedupVsDense in decode is the paper's memory-access model (Native Sparse Attention, arXiv 2502.11089, Table 4): K/V tokens loaded per step, dense over NSA. In prefill and training it is the ratio of attended (query, key) pairs.",
  "modeledSpeedupVsDense prices NSA and the dense variant on the same device and shape. It falls short of the memory-access ratio because NSA launches several kernels per pass where dense launches one or two (kernelLaunches; each pays the profile's launch overhead), re-reads the compressed keys to score the selection blocks, runs the compression MLP (in decode amortized over d steps) and the gate MLP, and at small decode batch its per-position selection CTAs leave SMs idle unless split.",
  "Selection block scores: each compressed token adds its compressed-attention probability, summed over the group's query heads, to every selection block its key range overlaps; the initial and local blocks are always kept, and equal scores go to the earlier block.",
  "The selection kernel is group-centric: one CTA per (position, KV-head group) holds the G query heads as MMA rows (padded to 16 rows for mma.sync, 64 for warpgroup MMA) and loads each selected block once, in key tiles that divide l'.",
  "L2 reuse of selected blocks among CTAs of neighboring positions is modeled with the non-kept blocks as independent uniform picks from the blocks before the wave: a pessimistic bound, since real selections cluster.",
  "Assumed MLP widths: the compression MLP maps a flattened block of l keys through a hidden layer of the head dim (--nsa-compress-hidden) to one key; the gate MLP maps each head's query through --nsa-gate-hidden units to 3 sigmoid gates.",
  "Training prices every branch's backward: the window branch by the dense backward kernel, the compressed branch as a FlashAttention-2 backward over compressed tokens plus the compression MLP's backward, and the selection branch as a group-centric dQ pass plus a key-centric dK/dV pass that visits, through a reverse index, the positions that selected each block."
]
