import type { DeviceRates } from "../../hardware/device.js"
import { formatSeconds } from "../../units/index.js"
import { visiblePairs } from "../../workload/mask.js"
import { alignmentContrasts, attendedPairs, type Alignment } from "./alignment.js"
import { blockOf, historySlots, historyUnion, keysAttended, overlapOfUnion, queryPosition } from "./blocks.js"
import { denseBaseline } from "./dense-baseline.js"
import { describe } from "./history-cost.js"
import type { OverlapModel } from "./options.js"
import { roleSeconds, type MobaPlan } from "./plan.js"

/** The head-overlap figure reported with an estimate. */
export interface HeadOverlapDetail {
  /** Overlap fraction o in [0, 1] at the last query (the independent model's equivalent value). */
  readonly value: number
  readonly origin: "measured" | "assumed" | "given"
  readonly model: string
}

/**
 * Everything a MoBA estimate adds to the JSON: the contract fields
 * (keysPerQuery, sparsity, blocksLoadedPerKvHead, headOverlap,
 * modeledSpeedupVsDense), the dense baseline, the alignment contrasts and notes
 * that explain the numbers. `reuse` passes contrasts already priced for the same
 * plan when only the head overlap changed and it does not enter them.
 */
export function mobaDetails(plan: MobaPlan, device: DeviceRates, measuredPositions?: number, reuse?: Alignment): Record<string, unknown> {
  const { request, config } = plan
  const { shape, phase } = request
  const group = shape.heads / shape.kvHeads
  const last = queryPosition(shape, shape.seqLenQ - 1)
  const current = blockOf(last, config.blockSize)
  const slots = historySlots(current, config.topK)
  // Decode prices the union over the step's queries too; other phases report the last query's.
  const union = phase === "decode" ? plan.decodeUnionBlocks : historyUnion(current, slots, group, config.overlap)
  const keysPerQuery = keysAttended(last, config)
  const sparsity = 1 - keysPerQuery / shape.seqLenKV

  const dense = denseBaseline(shape, phase, request.kernel, device)
  const speedup = dense.cost.seconds / plan.cost.seconds
  const pairFraction = attendedPairs(shape, config) / visiblePairs(shape)
  const alignment = reuse ?? alignmentContrasts(plan, device)
  const gatingSeconds = roleSeconds(plan, "gating")

  return {
    blockSize: config.blockSize,
    topK: config.topK,
    sparsityMode: config.mode,
    blocks: config.blocks,
    keysPerQuery,
    sparsity,
    blocksLoadedPerKvHead: union + 1,
    keysLoadedPerKvHead: Math.min(shape.seqLenKV, (union + 1) * config.blockSize),
    headOverlap: headOverlapDetail(config.overlap, current, slots, phase === "decode" ? group * shape.seqLenQ : group, union, measuredPositions),
    attendedPairsFraction: pairFraction,
    speedupVsDense: phase === "decode" ? shape.seqLenKV / Math.min(shape.seqLenKV, (union + 1) * config.blockSize) : 1 / pairFraction,
    speedupVsDenseModel:
      phase === "decode"
        ? "K/V tokens loaded per KV head in one step: dense over MoBA (the union of the group's blocks)"
        : "attended (query, key) pairs: dense causal over MoBA",
    modeledSpeedupVsDense: speedup,
    dense: { seconds: dense.cost.seconds, bound: dense.cost.bound, tiling: dense.tiling, method: dense.method },
    gatingSeconds,
    history: plan.history
      ? { tiling: describe(plan.history.tiling), segmentsPerOwner: plan.history.segments.length, selectionsPerOwner: plan.demand.total }
      : undefined,
    alignment,
    notes: notes(plan),
    explanation: explanation(plan, { keysPerQuery, sparsity, speedup, pairFraction, gatingSeconds, union, slots, current, dense, alignment })
  }
}

function headOverlapDetail(overlap: OverlapModel, current: number, slots: number, group: number, union: number, measuredPositions: number | undefined): HeadOverlapDetail {
  const value = overlap.kind === "fraction" ? overlap.value : overlapOfUnion(current, slots, group, union)
  const formula = "union of history blocks per KV head U = h + (1 − o)·(min(c, G·h) − h) for c past blocks and h = min(k − 1, c) per head"
  if (overlap.kind === "independent") {
    return {
      value,
      origin: "assumed",
      model: `heads choose independently: U = c·(1 − (1 − h/c)^G), the expected distinct blocks when each of G heads takes h of c uniformly at random; o is the equivalent overlap at the last query (${formula})`
    }
  }
  const source =
    overlap.origin === "measured"
      ? `measured from executed gating over ${measuredPositions ?? "the sampled"} query positions of the seeded synthetic tensors, whose heads are independent, so it sits near the independent model; real models' heads may agree more`
      : "given as an option"
  return { value, origin: overlap.origin, model: `${source}; ${formula}` }
}

interface NoteInputs {
  readonly keysPerQuery: number
  readonly sparsity: number
  readonly speedup: number
  readonly pairFraction: number
  readonly gatingSeconds: number
  readonly union: number
  readonly slots: number
  readonly current: number
  readonly dense: ReturnType<typeof denseBaseline>
  readonly alignment: Alignment
}

const percent = (value: number): string => `${(value * 100).toFixed(1)} %`

/**
 * Mechanisms behind the numbers, worded without this row's figures so a
 * report can list each once per variant.
 */
function notes(plan: MobaPlan): string[] {
  const { request, config } = plan
  const { phase } = request
  const lines = [
    "Each query head scores every past block by q · mean(K_block) and attends its top-k blocks in full. The current block is always one of them (causal inside), future blocks are never candidates, and a query with at most k − 1 past blocks takes them all, so a query sees at most k·b keys (sparsity 1 − k·b/N). When no query has a choice the gate is skipped.",
    "The schedule runs varlen FlashAttention over the current block (causal, one sequence per block) and over each selected (head, block) with the queries that chose it gathered (non-causal), then a log-sum-exp merge of the partial outputs."
  ]
  if (config.mode === "fixed-blocks") {
    lines.push(
      `Fixed sparsity keeps ${config.blocks} blocks and top-${config.topK}, so the block grows with the sequence and attention work still grows as N². ` +
        `In prefill a dense query attends N/2 keys on average and a MoBA query (k − 1/2)·b, so the speedup approaches blocks/(2k − 1) = ${(config.blocks / (2 * config.topK - 1)).toFixed(1)}× as the fixed costs fade.`
    )
  }
  if (phase === "decode") {
    lines.push(
      "Decode reads the cache, so its time follows K/V bytes: a KV head reads the union of its G query heads' blocks, which with per-head selection is up to G times what a group-shared selection (one choice per KV head, as NSA makes) reads.",
      "With k at least the number of blocks, MoBA decode costs more than dense: every head reads every block through L2 in its own CTAs, where a dense decode kernel packs the group and reads each K/V tile once.",
      "Decode gating reads the KV head's cached block means and fuses gate scores with top-k, which is small next to the K/V reads. Each stage (block-mean update, gate and top-k, current block, history, merge) is its own kernel launch, so launch overhead is a visible share of a short decode step."
    )
  } else {
    lines.push(
      "Prefill time falls about as the attended (query, key) pairs do: each (head, block) segment gathers enough queries to fill whole row tiles, so the history kernel runs at a dense forward's tensor efficiency.",
      `Per-head selection costs little in ${phase}: nearly every block is selected by some query of every head, so each KV head reads each block about once; the union matters in decode.`
    )
  }
  if (phase !== "decode") {
    lines.push(
      "Gating pools every key once, scores Nq·(N/b) blocks per head on the tensor cores and writes the scores in FP32 for a separate top-k kernel (an unfused gate, assumed). It grows as N²/b, so small blocks make it dominant."
    )
  }
  lines.push(
    "History (query, block) selections are spread over blocks as if every past block were equally likely; the total per query is exact, only the spread is assumed.",
    "Above 128k keys the dense baseline uses the dense planner's 128k tiling priced over the full shape (a full search takes seconds at 1M tokens and minutes at 10M)."
  )
  if (phase === "train") {
    lines.push("The merge needs no backward kernel: each branch's backward recomputes P with the merged log-sum-exp and D = rowsum(dO ⊙ O) of the merged output; the gate has no gradient.")
  }
  return lines
}

/** This row's figures behind the notes. */
function explanation(plan: MobaPlan, n: NoteInputs): string[] {
  const { request, config } = plan
  const { shape, phase } = request
  const lines = [
    `Block ${config.blockSize}, top-${config.topK}: the last query attends ${n.keysPerQuery} of ${shape.seqLenKV} keys, sparsity ${percent(n.sparsity)}.`,
    `Modeled speedup over dense ${n.speedup.toFixed(2)}×: dense ${formatSeconds(n.dense.cost.seconds)} (${n.dense.method === "searched" ? "searched by the dense planner" : "dense planner's 128k tiling priced over the full shape"}), MoBA ${formatSeconds(plan.cost.seconds)}.`
  ]
  if (phase === "decode") {
    lines.push(
      `Per KV head decode reads ${(n.union + 1).toFixed(1)} blocks (${n.slots} history blocks per head among ${n.current} past blocks, united over ${shape.heads / shape.kvHeads} heads, plus the current block); ` +
        `a group-shared selection would read ${n.slots + 1} and take ${formatSeconds(n.alignment.groupShared.seconds)}.`
    )
  } else {
    lines.push(`Attention covers ${percent(n.pairFraction)} of the causal dense (query, key) pairs.`)
  }
  lines.push(
    plan.gated ? `Gating takes ${formatSeconds(n.gatingSeconds)}, ${percent(n.gatingSeconds / plan.cost.seconds)} of the total.` : "No query has a choice of blocks, so no gate is computed."
  )
  return lines
}
