import type { CostBreakdown, KernelCost } from "../../cost/breakdown.js"
import { combineKernels } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { KernelGeneration } from "../dense/generations.js"
import { planDense, PlanError, type DensePlan, type Rejection } from "../dense/plan.js"
import type { OperationRequest } from "../variant.js"
import { priceCombineGate, priceCompression, priceTrainingHelpers, type BranchOutput } from "./auxiliary.js"
import {
  planCompressed,
  priceCompressedBackward,
  priceCompressedCombine,
  priceCompressedForward,
  planSelectionScores,
  type CompressedPlan,
  type ScorePlan
} from "./compressed-plan.js"
import { blocksExisting, type NsaGeometry } from "./geometry.js"
import { checkNsaOptions, geometryOf, type NsaOptions } from "./options.js"
import { renameKernel } from "./pricing.js"
import { planSelection, priceSelectionBackward, priceSelectionForward, type SelectionPlan } from "./selection-plan.js"

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
  const geometry = geometryOf(options)
  const generations = generationsFor(request.kernel, device)
  const rejected: Rejection[] = []

  const compressed = planCompressed(shape, geometry, phase, generations, device, rejected)
  const selection = planSelection({ shape, geometry, phase, kernels: generations }, device, rejected)
  // NOTE: the dense schedule splits the whole key range across split-KV CTAs, so a
  // decode window at the end of a long cache never gains from splitting. At small
  // batch the window kernel therefore runs one CTA per KV head.
  const window = planDense({ shape: { ...shape, window: options.window }, phase, kernel: request.kernel }, device)
  const scores = compressed && blocksExisting(geometry, shape.seqLenKV - 1) > geometry.selectCount ? planSelectionScores(compressed, device) : undefined

  const windowKernels = window.cost.kernels
  // The window branch's split-KV combine is fused into the final combine-gate kernel.
  const windowForward = windowKernels.filter((k) => k.name === "forward").map((k) => renameKernel(k, "window-forward"))
  const outputs: BranchOutput[] = [
    ...(compressed ? [{ splits: 1 }] : []),
    { splits: selection.tiling.splits },
    { splits: window.tiling.splits }
  ]

  const compression = compressed ? priceCompression(shape, geometry, options, phase, device) : []
  const forward: KernelCost[] = [
    ...compression.filter((k) => k.name === "compress-mlp"),
    ...(compressed ? [priceCompressedForward(compressed.schedule, device)] : []),
    ...(compressed ? optional(priceCompressedCombine(compressed.schedule, device)) : []),
    ...(scores?.kernels ?? []),
    priceSelectionForward(selection.schedule, device),
    ...windowForward,
    priceCombineGate(shape, options, outputs, phase, device)
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

const optional = <T>(value: T | undefined): T[] => (value === undefined ? [] : [value])

function generationsFor(kernel: KernelGeneration | undefined, device: DeviceRates): ReadonlyArray<KernelGeneration> {
  if (kernel === "fa3" && !device.asyncMma) {
    throw new PlanError({ variant: "nsa", device: device.profileId, reason: "kernel fa3 needs warpgroup-level asynchronous MMA (Hopper or later); use --kernel fa2" })
  }
  if (kernel) return [kernel]
  return device.asyncMma ? ["fa2", "fa3"] : ["fa2"]
}
