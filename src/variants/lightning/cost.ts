import type { CostBreakdown } from "../../cost/breakdown.js"
import type { WorkCounts } from "../../cost/counts.js"
import { combineKernels, priceKernel, type CtaClass, type KernelSpec, type WaveModel } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import { generations } from "../dense/generations.js"
import { bytesPerElement } from "../dense/schedule.js"
import type { LightningKernelName, LightningSchedule, LightningWorkItem } from "./schedule.js"
import { chunkRows, keySubTile, type MmaPath } from "./tiling.js"

/**
 * Fraction of L2 that the split layout's intermediates (FP32 partial outputs,
 * per-block states, prefixes) may occupy and still be read back from L2 by the
 * next kernel. It is the dense model's assumption, not a measured figure.
 */
const l2ResidentFraction = 0.5

/** Bytes of the tensors a kernel reads and writes once each, for the HBM model. */
interface TensorBytes {
  readonly query: number
  readonly keyValue: number
  readonly output: number
  readonly state: number
  readonly partialOutput: number
  readonly blockStates: number
}

function tensorBytes(schedule: LightningSchedule): TensorBytes {
  const { shape, settings } = schedule
  const s = bytesPerElement(shape)
  const rows = shape.batch * shape.heads * shape.seqLenQ
  const stateEntries = shape.batch * shape.heads * shape.headDim * shape.headDimV
  return {
    query: rows * shape.headDim * s,
    keyValue: shape.batch * shape.kvHeads * shape.seqLenQ * (shape.headDim + shape.headDimV) * s,
    output: rows * shape.headDimV * s,
    state: stateEntries * settings.stateBytes,
    partialOutput: rows * shape.headDimV * 4,
    blockStates: stateEntries * schedule.blocks * settings.stateBytes
  }
}

/**
 * Whole-kernel HBM traffic. Every tensor is read or written once, except:
 * - CTAs that share data are adjacent in index order, start together and walk
 *   the blocks in the same order, so L2 serves their repeated reads. The value
 *   slices of one head share Q and K, and the heads of a GQA group share K and V;
 * - the backward walks re-read 64-row chunks of a block from L2, not HBM;
 * - the split layout's intermediates are read back from L2 when all of them fit
 *   in its resident part, from HBM otherwise.
 * A decode step reads and writes every head's state: H·dk·dv entries per sequence.
 */
export function kernelHbmBytes(schedule: LightningSchedule, kernel: LightningKernelName, device: DeviceRates): number {
  const t = tensorBytes(schedule)
  const { shape, loadsState } = schedule
  const s = bytesPerElement(shape)
  const incoming = loadsState ? t.state : 0
  const intermediates = t.partialOutput + 2 * t.blockStates
  const resident = intermediates <= l2ResidentFraction * device.l2Capacity
  const readBack = (bytes: number): number => (resident ? 0 : bytes)

  switch (kernel) {
    case "forward":
      return t.query + t.keyValue + t.output + t.state + incoming
    case "decode":
      return t.query + t.keyValue + t.output + 2 * t.state
    case "intra":
      return t.query + t.keyValue + t.partialOutput + t.blockStates
    case "state-scan":
      return readBack(t.blockStates) + t.blockStates + t.state + incoming
    case "inter":
      return t.query + readBack(t.blockStates + t.partialOutput) + t.output
    case "backward": {
      // dQ walk: dO, K, V in, dQ out. dK/dV walk: Q, dO, K, V in, dK and dV out per query head.
      // dO has the output's size and dQ the query's.
      const keyValueGradients = shape.batch * shape.heads * shape.seqLenQ * (shape.headDim + shape.headDimV) * s
      const dqWalk = t.output + t.keyValue + t.query
      const dkdvWalk = t.query + t.output + t.keyValue + keyValueGradients
      return dqWalk + dkdvWalk
    }
    case "backward-intra":
      return t.query + t.output + t.keyValue + (t.partialOutput * (2 * shape.headDim + shape.headDimV)) / shape.headDimV + 2 * t.blockStates
    case "backward-state-scan":
      return readBack(2 * t.blockStates) + 2 * t.blockStates
    case "backward-inter": {
      const partials = (t.partialOutput * (2 * shape.headDim + shape.headDimV)) / shape.headDimV
      const gradients = (t.output * (2 * shape.headDim + shape.headDimV)) / shape.headDimV
      return t.output + t.keyValue + readBack(2 * t.blockStates + partials) + gradients
    }
  }
}

/** Price a lightning schedule on a device. */
export function priceLightning(schedule: LightningSchedule, device: DeviceRates, waves: WaveModel = "exact"): CostBreakdown {
  const { tiling } = schedule
  const kernels: KernelSpec[] = []
  switch (tiling.scheme) {
    case "decode":
      kernels.push(kernelSpec(schedule, "decode", tiling.ctasPerSm, "sync", device))
      break
    case "fused":
      kernels.push(kernelSpec(schedule, "forward", tiling.ctasPerSm, tiling.mma, device))
      if (schedule.phase === "train") kernels.push(kernelSpec(schedule, "backward", tiling.backwardCtasPerSm, tiling.mma, device))
      break
    case "split":
      kernels.push(kernelSpec(schedule, "intra", tiling.intraCtasPerSm, tiling.mma, device))
      kernels.push(kernelSpec(schedule, "state-scan", tiling.scanCtasPerSm, tiling.mma, device))
      kernels.push(kernelSpec(schedule, "inter", tiling.interCtasPerSm, tiling.mma, device))
      if (schedule.phase === "train") {
        kernels.push(kernelSpec(schedule, "backward-intra", tiling.backwardCtasPerSm, tiling.mma, device))
        kernels.push(kernelSpec(schedule, "backward-state-scan", tiling.scanCtasPerSm, tiling.mma, device))
        kernels.push(kernelSpec(schedule, "backward-inter", tiling.backwardCtasPerSm, tiling.mma, device))
      }
      break
  }
  return combineKernels(kernels.map((spec) => priceKernel(spec, device, waves)))
}

const streamingKernels: ReadonlyArray<LightningKernelName> = ["state-scan", "backward-state-scan", "decode"]
const backwardKernels: ReadonlyArray<LightningKernelName> = ["backward", "backward-intra", "backward-inter"]

function kernelSpec(schedule: LightningSchedule, kernel: LightningKernelName, ctasPerSm: number, mma: MmaPath, device: DeviceRates): KernelSpec {
  const classes = schedule.classes.filter((c) => c.kernel === kernel)
  const totalL2 = classes.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const hbmPerL2Byte = totalL2 > 0 ? kernelHbmBytes(schedule, kernel, device) / totalL2 : 0
  const generation = generations[mma === "async" ? "fa3" : "fa2"]
  const streaming = streamingKernels.includes(kernel)

  const ctaClasses: CtaClass[] = classes.map((c) => ({
    count: c.count,
    counts: withHbm(c.counts, c.counts.bytes.l2 * hbmPerL2Byte),
    ...fillDrainBytes(schedule, c.representative)
  }))
  const byResidents = 1 - 1 / ctasPerSm
  return {
    name: kernel,
    classes: ctaClasses,
    ctasPerSm,
    mma,
    // The decay and masking work overlaps the matrix products as the softmax of
    // the same MMA generation does. Streaming kernels have no products to hide behind.
    softmaxOverlap: streaming ? 0 : generation.softmaxOverlap,
    // Resident CTAs hide each other's fill and drain; with asynchronous MMA a
    // producer warp also prefetches, hiding half of the rest (the dense rule).
    latencyHidden: streaming || mma === "sync" ? byResidents : byResidents + (1 - byResidents) * 0.5,
    mmaEfficiency: backwardKernels.includes(kernel) ? generation.backwardMmaEfficiency : 1
  }
}

/** Bytes a CTA must load before its first product, and store after its last. */
function fillDrainBytes(schedule: LightningSchedule, item: LightningWorkItem): { prologueBytes: number; epilogueBytes: number } {
  const { shape, settings, tiling } = schedule
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const dv = shape.headDimV
  const e = schedule.valueWidth
  const rows = tiling.scheme === "decode" ? 1 : chunkRows(tiling.consumerGroups, schedule.blockSize)
  const stateSlice = dk * e * settings.stateBytes
  const firstRows = Math.min(schedule.blockSize, shape.seqLenQ)
  switch (item.kernel) {
    case "forward":
      return {
        prologueBytes: rows * dk * s + firstRows * (dk + e) * s + (schedule.loadsState ? stateSlice : 0),
        epilogueBytes: rows * e * s + stateSlice
      }
    case "intra":
      return { prologueBytes: rows * dk * s + keySubTile * (dk + dv) * s, epilogueBytes: rows * dv * 4 + dk * dv * settings.stateBytes }
    case "inter":
      return { prologueBytes: rows * dk * s + dk * dv * settings.stateBytes, epilogueBytes: rows * dv * s }
    case "state-scan":
    case "backward-state-scan":
      return { prologueBytes: schedule.scanElements * settings.stateBytes, epilogueBytes: schedule.scanElements * settings.stateBytes }
    case "decode":
      return { prologueBytes: stateSlice + (2 * dk + e) * s, epilogueBytes: stateSlice + e * s }
    case "backward":
    case "backward-intra":
      return { prologueBytes: 64 * 2 * (dk + dv) * s, epilogueBytes: 64 * (dk + dv) * s }
    case "backward-inter":
      return { prologueBytes: 64 * (dk + 2 * dv) * s + 2 * dk * dv * settings.stateBytes, epilogueBytes: 64 * (2 * dk + dv) * s }
  }
}

function withHbm(counts: WorkCounts, hbm: number): WorkCounts {
  return { ...counts, bytes: { ...counts.bytes, hbm } }
}
