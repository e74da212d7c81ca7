import type { CostBreakdown, KernelCost } from "../../cost/breakdown.js"
import { combineKernels } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { KernelGeneration } from "../dense/generations.js"
import { priceDense } from "../dense/cost.js"
import { planDense, PlanError, type DensePlan, type Rejection } from "../dense/plan.js"
import { DenseSchedule } from "../dense/schedule.js"
import type { AttentionShape } from "../../workload/shape.js"
import type { OperationRequest } from "../variant.js"
import { priceCombineGate, priceCompression, priceTrainingHelpers, type BranchOutput } from "./auxiliary.js"
import {
  planCompressed,
  priceCompressedBackward,
  priceCompressedCombine,
  priceCompressedForward,
  type CompressedPlan,
  type ScorePlan
} from "./compressed-plan.js"
import { blocksExisting, type NsaGeometry } from "./geometry.js"
import { checkNsaOptions, geometryOf, type NsaOptions } from "./options.js"
import { renameKernel } from "./pricing.js"
import { pickSelection, priceSelectionBackward, priceSelectionCandidates, priceSelectionForward, type SelectionPlan } from "./selection-plan.js"

export interface NsaPlan {
  readonly request: OperationRequest<NsaOptions>
  readonly geometry: NsaGeometry
  /** Kernel generations the softmax kernels were allowed to use. */
  readonly generations: ReadonlyArray<KernelGeneration>
  /** Undefined when the sequence is shorter than one compression block. */
  readonly compressed: CompressedPlan | undefined
  readonly selection: SelectionPlan
  readonly window: DensePlan
  /** The selection-scoring kernels; undefined when no compressed token exists or every block is selected anyway. */
  readonly scores: ScorePlan | undefined
  readonly cost: CostBreakdown
  readonly considered: number
  readonly rejected: ReadonlyArray<Rejection>
}

/**
 * Plans and prices NSA: the compression kernels, the compressed-token attention,
 * the selection scores and top-n, the group-centric selected-block attention,
 * the sliding-window attention (the dense planner with a window) and the
 * final gated combine. Training adds every branch's backward. Each kernel is
 * its own launch, so the breakdown adds up over the list.
 */
export function planNsa(request: OperationRequest<NsaOptions>, device: DeviceRates): NsaPlan {
  const { shape, phase, options } = request
  checkNsaOptions(options, shape)
  const geometry = geometryOf(options, shape.seqLenKV)
  const generations = generationsFor(request.kernel, device)
  const rejected: Rejection[] = []

  const scored = blocksExisting(geometry, shape.seqLenKV - 1) > geometry.selectCount
  const compressed = planCompressed({ shape, geometry, phase, kernels: generations, scored }, device, rejected)
  // The compressed output reaches the combine-gate kernel merged, so its split count never changes that kernel.
  const gateInputs = (selectionSplits: number, windowSplits: number): BranchOutput[] => [
    ...(compressed ? [{ splits: 1 }] : []),
    { splits: selectionSplits },
    { splits: windowSplits }
  ]
  const { window, selection } = planSelectionAndWindow(request, geometry, generations, device, rejected, gateInputs)
  const scores = compressed?.scores

  const windowKernels = window.cost.kernels
  // The window branch's split-KV combine is fused into the final combine-gate kernel.
  const windowForward = windowKernels.filter((k) => k.name === "forward").map((k) => renameKernel(k, "window-forward"))

  const compression = compressed ? priceCompression(shape, geometry, options, phase, device) : []
  const forward: KernelCost[] = [
    ...compression.filter((k) => k.name === "compress-mlp"),
    ...(compressed ? [priceCompressedForward(compressed.schedule, device)] : []),
    ...(compressed ? optional(priceCompressedCombine(compressed.schedule, device)) : []),
    ...(scores?.kernels ?? []),
    priceSelectionForward(selection.schedule, device),
    ...windowForward,
    priceCombineGate(shape, options, gateInputs(selection.tiling.splits, window.tiling.splits), phase, device)
  ]

  const backward: KernelCost[] = []
  if (phase === "train") {
    const [gate, compressedPreprocess, compressedConvert, dqSum] = priceTrainingHelpers(shape, geometry, options, device)
    backward.push(
      gate!,
      ...windowKernels.filter((k) => k.name.startsWith("backward")).map((k) => renameKernel(k, `window-${k.name}`)),
      ...(compressed ? [compressedPreprocess!, priceCompressedBackward(compressed.schedule, device), compressedConvert!] : []),
      ...compression.filter((k) => k.name === "compress-mlp-backward"),
      ...priceSelectionBackward(selection.schedule, device),
      dqSum!
    )
  }

  return {
    request,
    geometry,
    generations,
    compressed,
    selection,
    window,
    scores,
    cost: combineKernels([...forward, ...backward]),
    considered: (compressed?.considered ?? 0) + selection.considered + window.considered,
    rejected: [...rejected, ...window.rejected.map((r) => ({ tiling: `window ${r.tiling}`, reason: r.reason }))]
  }
}

/**
 * Plans the sliding-window and selection branches together, because the
 * combine-gate kernel merges the split-KV partials of both, so its cost
 * depends on both split counts. The dense planner returns the fastest window
 * forward tiling of each split count (its own combine kernel is replaced by
 * the combine-gate). For each count, the selection search includes the
 * combine-gate in what it compares. The pair with the least total wins.
 *
 * NOTE: the dense schedule splits the whole key range across split-KV CTAs, so a
 * decode window at the end of a long cache never gains from splitting. At small
 * batch the window kernel therefore runs one CTA per KV head.
 */
function planSelectionAndWindow(
  request: OperationRequest<NsaOptions>,
  geometry: NsaGeometry,
  generations: ReadonlyArray<KernelGeneration>,
  device: DeviceRates,
  rejected: Rejection[],
  gateInputs: (selectionSplits: number, windowSplits: number) => BranchOutput[]
): { window: DensePlan; selection: SelectionPlan } {
  const { shape, phase, options } = request
  const windowShape: AttentionShape = { ...shape, window: options.window }
  const search = planDense({ shape: windowShape, phase, kernel: request.kernel, fusedCombine: true }, device)

  const selectionSearch = { shape, geometry, phase, kernels: generations }
  const candidates = priceSelectionCandidates(selectionSearch, device, rejected)

  let best: { window: DensePlan; selection: SelectionPlan; seconds: number } | undefined
  for (const tiling of search.forwardBySplits?.values() ?? [search.tiling]) {
    const schedule = new DenseSchedule({ shape: windowShape, phase, tiling, backwardTiling: search.backwardTiling })
    const window: DensePlan = { ...search, tiling, schedule, cost: priceDense(schedule, device) }
    const consumerSeconds = (splits: number): number => priceCombineGate(shape, options, gateInputs(splits, tiling.splits), phase, device).seconds
    const selection = pickSelection({ ...selectionSearch, consumerSeconds }, candidates)
    const windowForward = window.cost.kernels.find((k) => k.name === "forward")!.seconds
    const seconds = windowForward + selection.seconds
    if (!best || seconds < best.seconds * (1 - 1e-9)) best = { window, selection, seconds }
  }
  return { window: best!.window, selection: best!.selection }
}

const optional = <T>(value: T | undefined): T[] => (value === undefined ? [] : [value])

function generationsFor(kernel: KernelGeneration | undefined, device: DeviceRates): ReadonlyArray<KernelGeneration> {
  if (kernel === "fa3" && !device.asyncMma) {
    throw new PlanError({ variant: "nsa", device: device.profileId, reason: "kernel fa3 needs warpgroup-level asynchronous MMA (Hopper or later); use --kernel fa2" })
  }
  if (kernel) return [kernel]
  return device.asyncMma ? ["fa2", "fa3"] : ["fa2"]
}
