import type { DeviceRates } from "../../hardware/device.js"
import { formatBytes } from "../../units/index.js"
import { generations, type KernelGeneration } from "./generations.js"

/**
 * One kernel configuration. Forward/decode: a CTA owns blockM query rows (for
 * decode with GQA packing: the G query heads × seqLenQ rows of one KV head) and
 * streams key/value tiles of blockN rows. Backward: a CTA owns blockN key rows
 * and streams query tiles of blockM rows.
 */
export interface DenseTiling {
  readonly kernel: KernelGeneration
  readonly blockM: number
  readonly blockN: number
  readonly stages: number
  readonly warps: number
  readonly ctasPerSm: number
  /** Split-KV: key range split across this many CTAs, combined by a second kernel. */
  readonly splits: number
  /** Pack the query heads of one GQA group into one CTA (decode). */
  readonly packGqa: boolean
  /** Fraction of min(matrix products, softmax) hidden behind the longer; the generation's fitted value unless overridden. */
  readonly softmaxOverlap: number
  /** Fraction of the achievable tensor rate the backward kernel reaches; the generation's fitted value unless overridden. */
  readonly backwardMmaEfficiency: number
}

export interface TilingRequest {
  readonly kernel: KernelGeneration
  readonly blockM: number
  readonly blockN: number
  readonly stages: number
  readonly warps: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  readonly backward: boolean
  /** V inside K (MLA latent): a staged key tile holds headDim elements per row. */
  readonly sharedKV?: boolean | undefined
}

export interface Residency {
  readonly smemBytes: number
  readonly registersPerThread: number
  readonly ctasPerSm: number
}

/** Register-file overhead per thread beyond the accumulators: addresses, loop state, softmax statistics. */
const baseRegistersPerThread = 32

/** Registers an FA3 producer warp keeps after handing the rest to the consumers (setmaxnreg). */
const producerRegistersPerThread = 40

/**
 * Shared memory, registers and CTAs per SM of a tiling, or the reason it cannot run.
 * Forward keeps the query tile and `stages` key/value tiles in shared memory and
 * holds the output accumulator (blockM × dv) and score tile (blockM × blockN) in
 * FP32 registers of the consumer threads. Backward keeps the CTA's key/value tile
 * and `stages` query/dO tiles and holds dK and dV (blockN × (dk + dv)) in FP32.
 */
export function residency(request: TilingRequest, device: DeviceRates): Residency | string {
  const { blockM, blockN, stages, warps, headDim, headDimV, elementBytes } = request
  const smemBytes = request.backward
    ? (blockN * (headDim + headDimV) + stages * blockM * (headDim + headDimV) + blockM * blockN) * elementBytes
    : (blockM * headDim + stages * blockN * (request.sharedKV ? headDim : headDim + headDimV)) * elementBytes

  const threads = warps * 32
  const consumerThreads = request.kernel === "fa3" ? threads - 128 : threads
  const accumulatorFloats = request.backward ? blockN * (headDim + headDimV) + blockM * blockN : blockM * (headDimV + blockN)
  const registersPerThread = Math.ceil(accumulatorFloats / consumerThreads) + baseRegistersPerThread

  if (smemBytes > device.smemPerBlock) {
    return `needs ${formatBytes(smemBytes)} of shared memory; ${device.profileId} offers ${formatBytes(device.smemPerBlock)} per CTA`
  }
  if (registersPerThread > device.maxRegistersPerThread) {
    return `needs ${registersPerThread} registers per thread for its FP32 accumulators; the limit is ${device.maxRegistersPerThread}`
  }
  const bySmem = Math.floor(device.smemPerSm / smemBytes)
  const producerThreads = threads - consumerThreads
  const registersPerCta = registersPerThread * consumerThreads + producerRegistersPerThread * producerThreads
  const byRegisters = Math.floor(device.registersPerSm / 4 / registersPerCta)
  const byThreads = Math.floor(device.maxThreadsPerSm / threads)
  const ctasPerSm = Math.min(bySmem, byRegisters, byThreads, device.maxCtasPerSm)
  if (ctasPerSm < 1) {
    return `${registersPerCta} registers per CTA exceed the register file of one SM (${device.registersPerSm / 4})`
  }
  return { smemBytes, registersPerThread, ctasPerSm }
}

/** Candidate tile shapes for a kernel generation; the planner filters them by residency. */
export function candidateShapes(kernel: KernelGeneration, backward: boolean): ReadonlyArray<Omit<TilingRequest, "headDim" | "headDimV" | "elementBytes">> {
  const shapes: Array<Omit<TilingRequest, "headDim" | "headDimV" | "elementBytes">> = []
  const blockMs = kernel === "fa3" ? [64, 128, 192] : [64, 128]
  const blockNs = [32, 64, 128, 176, 256]
  for (const blockM of blockMs) {
    for (const blockN of blockNs) {
      for (const stages of kernel === "fa3" ? [2] : [1, 2]) {
        if (kernel === "fa3") {
          // One producer warpgroup plus consumer warpgroups: one per 64 rows of the
          // tile; backward may add a second or third to spread its dK/dV accumulators.
          const consumerRows = backward ? blockN : blockM
          if (consumerRows % 64 !== 0) continue
          // Forward may also split the output columns across twice the warpgroups, as
          // kernels for wide value heads do (MLA's 512-element latent).
          const base = consumerRows / 64
          const consumers = backward ? [...new Set([base, 2, 3])].filter((n) => n >= base) : [base, 2 * base]
          for (const count of consumers) shapes.push({ kernel, blockM, blockN, stages, warps: 4 * (count + 1), backward })
        } else {
          for (const warps of [4, 8]) shapes.push({ kernel, blockM, blockN, stages, warps, backward })
        }
      }
    }
  }
  return shapes
}

/** Tile sizes, stages and warps of a candidate, before placement. */
export interface TileShape {
  readonly blockM: number
  readonly blockN: number
  readonly stages: number
  readonly warps: number
}

/**
 * A tiling from a candidate shape and its placement, carrying the kernel
 * generation's fitted softmax overlap and backward efficiency unless overridden.
 */
export function makeTiling(
  kernel: KernelGeneration,
  candidate: TileShape,
  placement: { readonly ctasPerSm: number; readonly splits: number; readonly packGqa: boolean },
  overrides: { readonly softmaxOverlap?: number | undefined; readonly backwardMmaEfficiency?: number | undefined } = {}
): DenseTiling {
  return {
    kernel,
    blockM: candidate.blockM,
    blockN: candidate.blockN,
    stages: candidate.stages,
    warps: candidate.warps,
    ...placement,
    softmaxOverlap: overrides.softmaxOverlap ?? generations[kernel].softmaxOverlap,
    backwardMmaEfficiency: overrides.backwardMmaEfficiency ?? generations[kernel].backwardMmaEfficiency
  }
}
