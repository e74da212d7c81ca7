import type { CostBreakdown } from "../../cost/breakdown.js"
import type { WorkCounts } from "../../cost/counts.js"
import { combineKernels, priceKernel, type CtaClass, type KernelSpec, type WaveModel } from "../../cost/kernel-time.js"
import { streamingKernel } from "../../cost/streaming.js"
import type { DeviceRates } from "../../hardware/device.js"
import { visibleKeys } from "../../workload/mask.js"
import { keyRowElements } from "../../workload/shape.js"
import { generations } from "./generations.js"
import { bytesPerElement, itemQueryRows, type DenseKernelName, type DenseSchedule, type DenseWorkItem } from "./schedule.js"
import type { DenseTiling } from "./tiling.js"

/**
 * Fraction of L2 that K/V of the heads being processed may occupy and still be
 * found there by a later wave of CTAs; the rest holds the streaming Q, O and
 * partial tiles. An assumption, not a measured figure.
 */
export const l2ResidentFraction = 0.5

/**
 * Whole-kernel HBM traffic of a forward or decode kernel: query and output once,
 * keys and values once per "pass". With split-KV the output is every split's
 * FP32 partial output and log-sum-exp, which the combine kernel reads back.
 * CTAs that read the same KV head at the same time share its tiles in L2 (they
 * start together and stream keys in the same order; the model assumes their
 * current tiles fit in L2). A pass is one wave of such CTAs: when the readers of
 * one KV head span more than one wave of slots, each later wave reads K/V again,
 * unless the K/V of every head in flight fits in the resident part of L2.
 */
export function forwardHbmBytes(schedule: DenseSchedule, device: DeviceRates): number {
  const { shape, tiling } = schedule
  const s = bytesPerElement(shape)
  const first = visibleKeys(shape, 0)
  const last = visibleKeys(shape, shape.seqLenQ - 1)
  const keysRead = Math.max(0, Math.max(first.hi, last.hi) - Math.min(first.lo, last.lo))
  const kvBytesPerHead = keysRead * keyRowElements(shape) * s
  const uniqueKv = shape.batch * shape.kvHeads * kvBytesPerHead

  const slots = device.sms * tiling.ctasPerSm
  const itemsPerKvHead = schedule.queryTiles * tiling.splits * (schedule.group / schedule.headsPerItem)
  const readers = schedule.queryTiles * (schedule.group / schedule.headsPerItem)
  const kvHeadsInFlight = Math.max(1, slots / itemsPerKvHead)
  const residentInL2 = kvHeadsInFlight * kvBytesPerHead <= l2ResidentFraction * device.l2Capacity
  const passes = residentInL2 ? 1 : Math.min(readers, Math.max(1, Math.ceil(itemsPerKvHead / slots)))

  const rows = shape.batch * shape.heads * shape.seqLenQ
  const queryBytes = rows * shape.headDim * s
  const outputBytes = tiling.splits > 1 ? tiling.splits * rows * (shape.headDimV + 1) * 4 : rows * shape.headDimV * s + (schedule.phase === "train" ? rows * 4 : 0)
  return queryBytes + outputBytes + uniqueKv * passes
}

/**
 * Whole-kernel HBM traffic of the backward kernel: K and V read and dK, dV
 * written once; Q, dO, log-sum-exp and D read once per pass over the key tiles
 * of a head (as for the forward kernel's K/V); the FP32 dQ accumulator read and
 * written once per pass, its atomics otherwise served by L2.
 */
export function backwardHbmBytes(schedule: DenseSchedule, device: DeviceRates): number {
  const { shape } = schedule
  const tiling = schedule.backwardTiling!
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const keyBytes = shape.batch * shape.heads * shape.seqLenKV * (dk + dv) * s
  const queryBytesPerHead = shape.seqLenQ * ((dk + dv) * s + 8)
  const dqBytesPerHead = shape.seqLenQ * dk * 4

  const slots = device.sms * tiling.ctasPerSm
  const itemsPerHead = schedule.keyTilesBackward
  const headsInFlight = Math.max(1, slots / itemsPerHead)
  const residentInL2 = headsInFlight * (queryBytesPerHead + dqBytesPerHead) <= l2ResidentFraction * device.l2Capacity
  const passes = residentInL2 ? 1 : Math.max(1, Math.ceil(itemsPerHead / slots))
  const heads = shape.batch * shape.heads
  return 2 * keyBytes + heads * passes * (queryBytesPerHead + 2 * dqBytesPerHead)
}

/** Price a dense-attention schedule on a device. */
export function priceDense(schedule: DenseSchedule, device: DeviceRates, waves: WaveModel = "exact"): CostBreakdown {
  const { shape, tiling } = schedule
  const kernels: KernelSpec[] = [kernelSpec(schedule, "forward", tiling, forwardHbmBytes(schedule, device))]

  if (schedule.combineItems > 0) {
    const combine = schedule.classes.filter((c) => c.kernel === "combine")
    const l2 = combine.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
    kernels.push(kernelSpec(schedule, "combine", { ...tiling, ctasPerSm: Math.min(8, device.maxCtasPerSm) }, l2))
  }

  if (schedule.phase === "train" && schedule.backwardTiling) {
    const s = bytesPerElement(shape)
    const rows = shape.batch * shape.heads * shape.seqLenQ
    // D = rowsum(dO ⊙ O) reads O and dO and writes D; it also zeroes the FP32 dQ accumulator.
    kernels.push(streamingKernel("backward-preprocess", rows * (2 * shape.headDimV * s + 4 + shape.headDim * 4), rows * shape.headDimV * 2, device))
    kernels.push(kernelSpec(schedule, "backward", schedule.backwardTiling, backwardHbmBytes(schedule, device)))
    // dQ from FP32 to the storage dtype; with GQA, per-head dK and dV summed over each group.
    const group = schedule.group
    const kvRows = shape.batch * shape.seqLenKV
    const reduceBytes = group > 1 ? kvRows * (shape.heads + shape.kvHeads) * (shape.headDim + shape.headDimV) * s : 0
    kernels.push(streamingKernel("backward-convert", rows * shape.headDim * (4 + s) + reduceBytes, rows * shape.headDim, device))
  }

  return combineKernels(kernels.map((spec) => priceKernel(spec, device, waves)))
}

function kernelSpec(schedule: DenseSchedule, kernel: DenseKernelName, tiling: DenseTiling, hbmBytes: number): KernelSpec {
  const classes = schedule.classes.filter((c) => c.kernel === kernel)
  const totalL2 = classes.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const hbmPerL2Byte = totalL2 > 0 ? hbmBytes / totalL2 : 0
  const parameters = generations[tiling.kernel]

  const ctaClasses: CtaClass[] = classes.map((c) => ({
    count: c.count,
    counts: withHbm(c.counts, c.counts.bytes.l2 * hbmPerL2Byte),
    ...fillDrainBytes(schedule, c.representative, tiling)
  }))

  return {
    name: kernel,
    classes: ctaClasses,
    ctasPerSm: tiling.ctasPerSm,
    mma: parameters.mma,
    softmaxOverlap: kernel === "combine" ? 0 : tiling.softmaxOverlap,
    latencyHidden: latencyHidden(tiling),
    mmaEfficiency: kernel === "backward" ? tiling.backwardMmaEfficiency : 1
  }
}

/**
 * Share of a CTA's fill and drain that other work hides. Other CTAs resident on
 * the SM compute while one waits, so 1 − 1/ctasPerSm of it is hidden; FA3's
 * producer warp also prefetches the next tile, hiding half of what remains.
 * An assumption checked by the short-sequence published points, not fitted.
 */
export function latencyHidden(tiling: DenseTiling): number {
  const byResidents = 1 - 1 / tiling.ctasPerSm
  return tiling.kernel === "fa3" ? byResidents + (1 - byResidents) * 0.5 : byResidents
}

function fillDrainBytes(schedule: DenseSchedule, item: DenseWorkItem, tiling: DenseTiling): { prologueBytes: number; epilogueBytes: number } {
  const { shape } = schedule
  const s = bytesPerElement(shape)
  if (item.kernel === "combine") return { prologueBytes: 0, epilogueBytes: 0 }
  if (item.kernel === "backward") {
    const keys = item.keyEnd - item.keyStart
    return { prologueBytes: keys * (shape.headDim + shape.headDimV) * s, epilogueBytes: keys * (shape.headDim + shape.headDimV) * s }
  }
  const rows = itemQueryRows(item)
  return {
    prologueBytes: rows * shape.headDim * s + tiling.blockN * keyRowElements(shape) * s,
    epilogueBytes: rows * shape.headDimV * (tiling.splits > 1 ? 4 : s)
  }
}

function withHbm(counts: WorkCounts, hbm: number): WorkCounts {
  return { ...counts, bytes: { ...counts.bytes, hbm } }
}

