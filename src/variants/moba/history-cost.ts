import type { WorkCounts } from "../../cost/counts.js"
import type { KernelCost } from "../../cost/breakdown.js"
import { priceKernel, type CtaClass, type KernelSpec, type WaveModel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import { latencyHidden, l2ResidentFraction } from "../dense/cost.js"
import { generations, type KernelGeneration } from "../dense/generations.js"
import { PlanError, tieTolerance, type Rejection } from "../dense/plan.js"
import { bytesPerElement } from "../dense/schedule.js"
import { candidateShapes, makeTiling, residency, type DenseTiling } from "../dense/tiling.js"
import { HistorySchedule, type HistoryClass, type HistoryScheduleInput } from "./history-schedule.js"

/**
 * HBM bytes of the history forward kernel. Gathered query rows, partial
 * outputs and their log-sum-exp go to HBM once. The items that read one K/V
 * block of one KV head run next to each other in index order, so they share
 * its tiles in L2 as the dense forward's readers of a head do. A block is read
 * once, unless it is too large to stay resident while later waves of its
 * readers run: then each wave reads it again. Decode reads, per (sequence, KV
 * head), the `decodeUnionBlocks` distinct blocks its heads selected.
 */
export function historyForwardHbmBytes(schedule: HistorySchedule, device: DeviceRates, decodeUnionBlocks: number): number {
  const { shape, tiling } = schedule
  const s = bytesPerElement(shape)
  const blockBytes = schedule.blockSize * (shape.headDim + shape.headDimV) * s
  const forward = schedule.classes.filter((c) => c.kernel === "history-forward")
  const l2 = forward.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const kvL2 = forward.reduce((sum, c) => sum + c.count * (c.representative.keyEnd - c.representative.keyStart) * (shape.headDim + shape.headDimV) * s, 0)

  if (schedule.phase === "decode") return l2 - kvL2 + shape.batch * shape.kvHeads * decodeUnionBlocks * blockBytes

  const slots = device.sms * tiling.ctasPerSm
  const ownersPerKvHead = schedule.owners / shape.kvHeads
  let kvHbm = 0
  for (const [tiles, { count }] of schedule.tiles(tiling.blockM).byTiles) {
    const readers = ownersPerKvHead * tiles * tiling.splits
    const blocksInFlight = Math.max(1, slots / readers)
    const resident = blocksInFlight * blockBytes <= l2ResidentFraction * device.l2Capacity
    const passes = resident ? 1 : Math.min(readers, Math.max(1, Math.ceil(readers / slots)))
    kvHbm += count * passes * blockBytes
  }
  return l2 - kvL2 + shape.batch * shape.kvHeads * kvHbm
}

/**
 * HBM bytes of the history backward kernel, per owner and segment as the dense
 * backward counts them per head. K and V are read and per-head dK and dV
 * written once. The gathered Q, dO, log-sum-exp, D and index rows and the FP32
 * dQ atomics move once per pass over the block's key tiles, and there is one
 * pass while they fit in L2.
 */
export function historyBackwardHbmBytes(schedule: HistorySchedule, device: DeviceRates): number {
  const { shape } = schedule
  const tiling = schedule.backwardTiling!
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const slots = device.sms * tiling.ctasPerSm
  const keyTiles = schedule.keyTilesBackward
  let bytes = 0
  for (const { rows, count } of schedule.histogram) {
    const queryBytes = rows * ((dk + dv) * s + 12)
    const dqBytes = rows * dk * 4
    const inFlight = Math.max(1, slots / keyTiles)
    const resident = inFlight * (queryBytes + dqBytes) <= l2ResidentFraction * device.l2Capacity
    const passes = resident ? 1 : Math.max(1, Math.ceil(keyTiles / slots))
    bytes += count * (2 * schedule.blockSize * (dk + dv) * s + passes * (queryBytes + 2 * dqBytes))
  }
  return shape.batch * schedule.owners * bytes
}

/** Price the history kernels of a schedule: forward, and backward when training. */
export function priceHistory(schedule: HistorySchedule, device: DeviceRates, decodeUnionBlocks: number, waves: WaveModel = "exact"): KernelCost[] {
  const kernels = [priceKernel(historySpec(schedule, "history-forward", schedule.tiling, historyForwardHbmBytes(schedule, device, decodeUnionBlocks)), device, waves)]
  if (schedule.backwardTiling) {
    kernels.push(priceKernel(historySpec(schedule, "history-backward", schedule.backwardTiling, historyBackwardHbmBytes(schedule, device)), device, waves))
  }
  return kernels
}

function historySpec(schedule: HistorySchedule, kernel: HistoryClass["kernel"], tiling: DenseTiling, hbmBytes: number): KernelSpec {
  const { shape } = schedule
  const s = bytesPerElement(shape)
  const classes = schedule.classes.filter((c) => c.kernel === kernel)
  const totalL2 = classes.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const hbmPerL2Byte = totalL2 > 0 ? hbmBytes / totalL2 : 0

  const ctaClasses: CtaClass[] = classes.map((c) => {
    const rows = c.representative.realRows
    const keys = c.representative.keyEnd - c.representative.keyStart
    // A forward CTA fills with its query rows and first key tile and drains its
    // partial output. A backward CTA fills with its key tile and drains dK and dV.
    const fill = kernel === "history-forward" ? rows * shape.headDim * s + tiling.blockN * (shape.headDim + shape.headDimV) * s : keys * (shape.headDim + shape.headDimV) * s
    const drain = kernel === "history-forward" ? rows * (shape.headDimV * s + 4) : keys * (shape.headDim + shape.headDimV) * s
    return { count: c.count, counts: withHbm(c.counts, c.counts.bytes.l2 * hbmPerL2Byte), prologueBytes: fill, epilogueBytes: drain }
  })
  return {
    name: kernel,
    classes: ctaClasses,
    ctasPerSm: tiling.ctasPerSm,
    mma: generations[tiling.kernel].mma,
    softmaxOverlap: tiling.softmaxOverlap,
    latencyHidden: latencyHidden(tiling),
    mmaEfficiency: kernel === "history-backward" ? tiling.backwardMmaEfficiency : 1
  }
}

const withHbm = (counts: WorkCounts, hbm: number): WorkCounts => ({ ...counts, bytes: { ...counts.bytes, hbm } })

export interface HistorySearch {
  readonly schedule: HistorySchedule
  readonly considered: number
}

interface Priced {
  readonly tiling: DenseTiling
  readonly seconds: number
  readonly memorySeconds: number
}

/**
 * Chooses the history kernel's tiling. Every legal tile shape of every allowed
 * generation is priced exactly, together with `mergeSeconds(splits)`: the
 * log-sum-exp merge that reads the history's partial outputs, whose work grows
 * with the split count. Decode uses the MMA-height row tiles and adds
 * split-KV inside the block when the CTAs would not fill two waves. The
 * fastest wins, and within the dense planner's tie tolerance the one with the
 * least memory time. Training then chooses the backward tiling the same way.
 */
export function searchHistory(
  input: Omit<HistoryScheduleInput, "tiling" | "backwardTiling">,
  device: DeviceRates,
  kernels: ReadonlyArray<KernelGeneration>,
  decodeUnionBlocks: number,
  mergeSeconds: (splits: number) => number,
  rejected: Rejection[],
  softmaxOverlap?: number | undefined
): HistorySearch {
  const { shape } = input
  const forward: Priced[] = []
  for (const kernel of kernels) {
    for (const candidate of forwardShapes(kernel, input.phase === "decode")) {
      const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes }, device)
      const base = tilingOf(kernel, candidate, typeof fit === "string" ? 0 : fit.ctasPerSm, 1, softmaxOverlap)
      if (typeof fit === "string") {
        rejected.push({ tiling: `history ${describe(base)}`, reason: fit })
        continue
      }
      for (const splits of splitCounts(input, device, base)) {
        const tiling = { ...base, splits }
        const schedule = new HistorySchedule({ ...input, phase: input.phase === "train" ? "prefill" : input.phase, tiling })
        const [cost] = priceHistory(schedule, device, decodeUnionBlocks)
        forward.push({ tiling, seconds: cost!.seconds + mergeSeconds(splits), memorySeconds: memorySeconds(cost!) })
      }
    }
  }
  const best = pickBest(forward)
  if (!best) {
    const reasons = [...new Set(rejected.map((r) => r.reason))].slice(0, 3).join("; ")
    throw new PlanError({ variant: "moba", device: device.profileId, reason: `no history tiling fits (${reasons})` })
  }

  let backwardTiling: DenseTiling | undefined
  let considered = forward.length
  if (input.phase === "train") {
    const backward: Priced[] = []
    for (const candidate of candidateShapes(best.tiling.kernel, true)) {
      const fit = residency({ ...candidate, headDim: shape.headDim, headDimV: shape.headDimV, elementBytes: device.elementBytes }, device)
      const tiling = tilingOf(best.tiling.kernel, candidate, typeof fit === "string" ? 0 : fit.ctasPerSm, 1, softmaxOverlap)
      if (typeof fit === "string") {
        rejected.push({ tiling: `history backward ${describe(tiling)}`, reason: fit })
        continue
      }
      const schedule = new HistorySchedule({ ...input, tiling: best.tiling, backwardTiling: tiling })
      const cost = priceHistory(schedule, device, decodeUnionBlocks)[1]!
      backward.push({ tiling, seconds: cost.seconds, memorySeconds: memorySeconds(cost) })
    }
    backwardTiling = pickBest(backward)?.tiling
    considered += backward.length
  }
  return { schedule: new HistorySchedule({ ...input, tiling: best.tiling, backwardTiling }), considered }
}

type Shape = ReturnType<typeof candidateShapes>[number]

/**
 * Lists the forward tile shapes. A decode segment has one query row (G with a
 * shared selection), so decode uses the smallest row tile of each generation.
 * That is one warpgroup's 64 rows for fa3. For fa2 it is its 64-row tiles and
 * 16-row tiles (one MMA height) on 4 warps.
 */
function forwardShapes(kernel: KernelGeneration, decode: boolean): ReadonlyArray<Shape> {
  const shapes = candidateShapes(kernel, false)
  if (!decode) return shapes
  const smallest = Math.min(...shapes.map((s) => s.blockM))
  const small = shapes.filter((s) => s.blockM === smallest)
  if (kernel !== "fa2") return small
  const mmaRows = generations.fa2.mmaRows
  const single = small.filter((s) => s.warps === 4).map((s) => ({ ...s, blockM: mmaRows }))
  return [...small, ...single]
}

function tilingOf(kernel: KernelGeneration, candidate: Shape, ctasPerSm: number, splits: number, softmaxOverlap: number | undefined): DenseTiling {
  return makeTiling(kernel, candidate, { ctasPerSm, splits, packGqa: false }, { softmaxOverlap })
}

/** Split counts worth pricing: 1, and in decode powers of two up to 128 while one split leaves the GPU under two waves. */
function splitCounts(input: Omit<HistoryScheduleInput, "tiling" | "backwardTiling">, device: DeviceRates, tiling: DenseTiling): ReadonlyArray<number> {
  if (input.phase !== "decode") return [1]
  const single = new HistorySchedule({ ...input, tiling })
  const slots = device.sms * tiling.ctasPerSm
  if (single.forwardItems >= 2 * slots) return [1]
  const keyTiles = Math.ceil(input.config.blockSize / tiling.blockN)
  const counts = [1]
  for (let splits = 2; splits <= Math.min(128, keyTiles); splits *= 2) counts.push(splits)
  return counts
}

const memorySeconds = (cost: KernelCost): number => cost.resourceSeconds.hbm + cost.resourceSeconds.l2 + cost.resourceSeconds.smem

function pickBest(candidates: ReadonlyArray<Priced>): Priced | undefined {
  const fastest = candidates.reduce((min, c) => Math.min(min, c.seconds), Number.POSITIVE_INFINITY)
  const ties = candidates.filter((c) => c.seconds <= fastest * (1 + tieTolerance))
  return ties.reduce<Priced | undefined>((best, c) => (best === undefined || c.memorySeconds < best.memorySeconds ? c : best), undefined)
}

export const describe = (t: DenseTiling): string => `${t.kernel} ${t.blockM}×${t.blockN} stages=${t.stages} warps=${t.warps}` + (t.splits > 1 ? ` splits=${t.splits}` : "")
