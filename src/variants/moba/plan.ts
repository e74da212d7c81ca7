import type { CostBreakdown, KernelCost } from "../../cost/breakdown.js"
import { combineKernels, priceKernel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { KernelGeneration } from "../dense/generations.js"
import { planDense, type DensePlan, type Rejection } from "../dense/plan.js"
import {
  blockMeanUpdateKernel,
  gateKernel,
  historyGqaReduceKernel,
  meanPoolKernel,
  mergeDemand,
  mergeKernel,
  topKKernel,
  varlenIndexKernel
} from "./aux-cost.js"
import { blockOf, currentBlockGroups, historyDemand, historySlots, historyUnion, queryPosition, type CurrentBlockGroup, type HistoryDemand } from "./blocks.js"
import { priceHistory, searchHistory } from "./history-cost.js"
import type { HistorySchedule, Selection } from "./history-schedule.js"
import type { MobaConfig } from "./options.js"

export interface MobaRequest {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly kernel?: KernelGeneration | undefined
}

/** Current-block attention of one group of equal chunks, planned as causal dense attention. */
export interface CurrentBlockPart {
  readonly group: CurrentBlockGroup
  /** Dense plan over batch × chunks sequences of the chunk's length. */
  readonly plan: DensePlan
}

/** Part of MoBA a priced kernel belongs to. */
export type KernelRole = "gating" | "attention"

export interface MobaPlan {
  readonly request: MobaRequest
  readonly config: MobaConfig
  readonly selection: Selection
  readonly demand: HistoryDemand
  readonly currentBlock: ReadonlyArray<CurrentBlockPart>
  readonly history: HistorySchedule | undefined
  /** Distinct history blocks per (sequence, KV head) that decode reads, summed over the decode queries. */
  readonly decodeUnionBlocks: number
  /** Whether any query has a real choice, so the gate is computed at all. */
  readonly gated: boolean
  readonly cost: CostBreakdown
  readonly roles: ReadonlyMap<string, KernelRole>
  readonly considered: number
  readonly rejected: ReadonlyArray<Rejection>
}

/**
 * Plans and prices MoBA as varlen FlashAttention runs it. Mean pooling,
 * gate scores and top-k come first, and are skipped when no query has a choice
 * (with top-1, or a sequence so short that every query takes all it may).
 * Varlen FlashAttention then runs on the current block (causal, planned by the
 * dense planner over one sequence per block) and on the selected history
 * blocks (non-causal, queries gathered per (head, block)), and a log-sum-exp
 * merge combines them. Each chunk size of the current-block part is its own
 * dense launch: a partial first block, the full blocks, a partial last block.
 */
export function planMoba(request: MobaRequest, config: MobaConfig, device: DeviceRates, selection: Selection = "per-head"): MobaPlan {
  const { shape, phase } = request
  const group = shape.heads / shape.kvHeads
  const demand = historyDemand(shape, config)
  const gated = demand.hasChoice
  const rejected: Rejection[] = []
  const roles = new Map<string, KernelRole>()
  const kernels: KernelCost[] = []
  const add = (cost: KernelCost, role: KernelRole): void => {
    kernels.push(cost)
    roles.set(cost.name, role)
  }

  if (gated && phase === "decode") {
    add(priceKernel(blockMeanUpdateKernel(shape, device), device), "gating")
    add(priceKernel(gateKernel(shape, phase, config, device), device), "gating")
  } else if (gated) {
    add(priceKernel(meanPoolKernel(shape, config, device), device), "gating")
    add(priceKernel(gateKernel(shape, phase, config, device), device), "gating")
    add(priceKernel(topKKernel(shape, config, device), device), "gating")
    const owners = selection === "per-head" ? shape.heads : shape.kvHeads
    add(priceKernel(varlenIndexKernel(shape, config, demand.total, owners, device), device), "gating")
  }

  // NOTE: the dense prefill forward does not count the FP32 log-sum-exp store
  // (4 bytes per row against 2·dv) that the merge needs from the current block.
  const currentBlock = currentBlockGroups(shape, config.blockSize).map((chunks): CurrentBlockPart => {
    const chunkShape: AttentionShape = { ...shape, batch: shape.batch * chunks.blocks.length, seqLenQ: chunks.seqLenQ, seqLenKV: chunks.seqLenKV, causal: true, window: undefined }
    return { group: chunks, plan: planDense({ shape: chunkShape, phase, kernel: request.kernel }, device) }
  })
  const several = currentBlock.length > 1
  currentBlock.forEach((part, index) => {
    for (const kernel of part.plan.cost.kernels) {
      add({ ...kernel, name: `current-block ${kernel.name}${several ? ` (chunks ${index + 1})` : ""}` }, "attention")
    }
    rejected.push(...part.plan.rejected.map((r) => ({ ...r, tiling: `current block ${r.tiling}` })))
  })
  let considered = currentBlock.reduce((sum, part) => sum + part.plan.considered, 0)

  const decodeUnionBlocks = phase === "decode" ? decodeUnion(shape, config, selection, group) : 0
  let history: HistorySchedule | undefined
  if (demand.total > 0) {
    let generationsAllowed: ReadonlyArray<KernelGeneration> = device.asyncMma ? ["fa2", "fa3"] : ["fa2"]
    if (request.kernel) generationsAllowed = [request.kernel]
    const merge = (splits: number): KernelCost => priceKernel(mergeKernel(shape, phase, mergeDemand(shape, config, splits), device), device)
    const search = searchHistory({ shape, phase, config, demand, selection }, device, generationsAllowed, decodeUnionBlocks, (splits) => merge(splits).seconds, rejected)
    history = search.schedule
    considered += search.considered
    for (const kernel of priceHistory(history, device, decodeUnionBlocks)) add(kernel, "attention")
    add(merge(history.tiling.splits), "attention")
    if (phase === "train" && selection === "per-head") {
      add(priceKernel(historyGqaReduceKernel(shape, config, history.segments.length, device), device), "attention")
    }
  }

  return { request, config, selection, demand, currentBlock, history, decodeUnionBlocks, gated, cost: combineKernels(kernels), roles, considered, rejected }
}

/**
 * Distinct history blocks one (sequence, KV head) reads in a decode step: the
 * union of the selections of its G heads at each of the step's queries. The
 * G·seqLenQ selections are united under the overlap model, with the last
 * query's past blocks (a step of a few queries rarely crosses a block edge).
 * A group-shared selection unites only the step's queries.
 */
function decodeUnion(shape: AttentionShape, config: MobaConfig, selection: Selection, group: number): number {
  const current = blockOf(queryPosition(shape, shape.seqLenQ - 1), config.blockSize)
  const slots = historySlots(current, config.topK)
  const selections = (selection === "per-head" ? group : 1) * shape.seqLenQ
  if (selections === 1) return slots
  return historyUnion(current, slots, selections, config.overlap)
}

/** Sum the seconds of the kernels of one role. */
export function roleSeconds(plan: MobaPlan, role: KernelRole): number {
  return plan.cost.kernels.filter((k) => plan.roles.get(k.name) === role).reduce((sum, k) => sum + k.seconds, 0)
}
