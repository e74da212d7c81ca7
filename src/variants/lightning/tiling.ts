import type { DeviceRates } from "../../hardware/device.js"
import { formatBytes } from "../../units/index.js"

export type MmaPath = "sync" | "async"

/**
 * Fused layout, the forward pass of Lightning Attention-2 (arXiv 2401.04658,
 * Algorithm 1). One CTA per (batch, head, value slice) walks the head's blocks
 * in order and keeps its dk × (dv / valueSplits) state in FP32 registers, so the
 * state never leaves the chip. The blocks of one head are serial, so heads and
 * value slices are the only parallelism.
 */
export interface FusedTiling {
  readonly scheme: "fused"
  readonly mma: MmaPath
  readonly blockSize: number
  /** Value columns are independent in linear attention, so a head's columns can be split over CTAs; each recomputes Q·Kᵀ. */
  readonly valueSplits: number
  /** Consumer warpgroups; each owns 64 query rows of the block at a time. */
  readonly consumerGroups: number
  /** Stream K and V through shared memory in 64-key sub-tiles instead of keeping the whole block resident. */
  readonly streamKeys: boolean
  readonly ctasPerSm: number
  /** CTAs per SM of the backward walks (training). */
  readonly backwardCtasPerSm: number
}

/**
 * Split layout of three kernels. The intra kernel runs one CTA per block for
 * the masked B × B product and the block's own state contribution. The state
 * scan runs one CTA per slice of a head's state, serially over the blocks. The
 * inter kernel runs one CTA per block for the queries times the state entering
 * the block. Intermediates go through global memory, and only the scan is serial.
 */
export interface SplitTiling {
  readonly scheme: "split"
  readonly mma: MmaPath
  readonly blockSize: number
  readonly consumerGroups: number
  /** The intra CTA streams K and V in 64-key sub-tiles instead of keeping the whole block resident. */
  readonly streamKeys: boolean
  /** The dk × dv state is split into this many slices, one scan CTA each. */
  readonly stateSplits: number
  readonly intraCtasPerSm: number
  readonly interCtasPerSm: number
  readonly scanCtasPerSm: number
  readonly backwardCtasPerSm: number
}

/** Decode: one CTA per (batch, head, value slice) reads its state slice, updates it and writes it back. */
export interface DecodeTiling {
  readonly scheme: "decode"
  readonly valueSplits: number
  readonly ctasPerSm: number
}

export type LightningTiling = FusedTiling | SplitTiling | DecodeTiling

export function describeTiling(tiling: LightningTiling): string {
  switch (tiling.scheme) {
    case "fused":
      return `fused B=${tiling.blockSize} value-splits=${tiling.valueSplits} warpgroups=${tiling.consumerGroups}${tiling.streamKeys ? " streamed-kv" : ""} ${tiling.mma}-mma`
    case "split":
      return `split B=${tiling.blockSize} state-splits=${tiling.stateSplits} warpgroups=${tiling.consumerGroups}${tiling.streamKeys ? " streamed-kv" : ""} ${tiling.mma}-mma`
    case "decode":
      return `decode value-splits=${tiling.valueSplits}`
  }
}

/** Shared memory, accumulators and threads of one CTA. */
export interface CtaFootprint {
  readonly smemBytes: number
  /** FP32 accumulators held in the consumer threads' registers. */
  readonly accumulatorFloats: number
  readonly consumerThreads: number
  readonly producerThreads: number
}

/** Register overhead per thread beyond the accumulators (addresses, loop state); the dense kernels' figure. */
const baseRegistersPerThread = 32
/** Registers a producer warp keeps after handing the rest to the consumers (setmaxnreg); the dense kernels' figure. */
const producerRegistersPerThread = 40

/** CTAs per SM for a footprint, or why it cannot run. */
export function residency(footprint: CtaFootprint, device: DeviceRates): number | string {
  const { smemBytes, accumulatorFloats, consumerThreads, producerThreads } = footprint
  const registersPerThread = Math.ceil(accumulatorFloats / consumerThreads) + baseRegistersPerThread
  if (smemBytes > device.smemPerBlock) {
    return `needs ${formatBytes(smemBytes)} of shared memory; ${device.profileId} offers ${formatBytes(device.smemPerBlock)} per CTA`
  }
  if (registersPerThread > device.maxRegistersPerThread) {
    return `needs ${registersPerThread} registers per thread for its FP32 accumulators; the limit is ${device.maxRegistersPerThread}`
  }
  const threads = consumerThreads + producerThreads
  const registersPerCta = registersPerThread * consumerThreads + producerRegistersPerThread * producerThreads
  const bySmem = smemBytes > 0 ? Math.floor(device.smemPerSm / smemBytes) : device.maxCtasPerSm
  const byRegisters = Math.floor(device.registersPerSm / 4 / registersPerCta)
  const byThreads = Math.floor(device.maxThreadsPerSm / threads)
  const ctasPerSm = Math.min(bySmem, byRegisters, byThreads, device.maxCtasPerSm)
  if (ctasPerSm < 1) return `${registersPerCta} registers per CTA exceed the register file of one SM (${device.registersPerSm / 4})`
  return ctasPerSm
}

export interface BlockGeometry {
  readonly blockSize: number
  readonly headDim: number
  /** Value columns this CTA owns. */
  readonly valueWidth: number
  readonly elementBytes: number
  readonly consumerGroups: number
  readonly streamKeys: boolean
  readonly mma: MmaPath
}

/**
 * Keys a CTA loads for one block of `rows` real rows when it streams K and V:
 * row chunk c needs the keys up to its last row, so earlier keys are loaded
 * again by every later chunk (from L2). Without streaming each key is loaded once.
 */
export function keysLoaded(rows: number, chunk: number, streamKeys: boolean): number {
  if (!streamKeys) return rows
  let keys = 0
  for (let end = chunk; end < rows + chunk; end += chunk) keys += Math.min(rows, end)
  return keys
}

/**
 * Query rows a CTA's consumers work on at once: 64 per consumer warpgroup, at
 * most the block. Warpgroups beyond the block's rows split the value columns
 * instead, which spreads the accumulators over more threads.
 */
export const chunkRows = (consumerGroups: number, blockSize: number): number => Math.min(64 * consumerGroups, blockSize)
/** Keys per sub-tile of the intra-block product, walked like FlashAttention's key tiles. */
export const keySubTile = 64

function threads(geometry: BlockGeometry): { consumerThreads: number; producerThreads: number } {
  return { consumerThreads: 128 * geometry.consumerGroups, producerThreads: geometry.mma === "async" ? 128 : 0 }
}

/**
 * Returns the footprint of a fused forward CTA or of the split layout's intra
 * CTA. The block's K and V stay in shared memory for every row chunk and the
 * state update, or with streamKeys pass through it in double-buffered 64-key
 * sub-tiles. Query chunks are double-buffered. The state goes through shared
 * memory once per block as the 16-bit operand of Q·KV. Registers hold the FP32
 * state, the output chunk and one score sub-tile.
 */
export function blockFootprint(geometry: BlockGeometry): CtaFootprint {
  const { blockSize, headDim, valueWidth, elementBytes } = geometry
  const rows = chunkRows(geometry.consumerGroups, geometry.blockSize)
  const keyRows = geometry.streamKeys ? 2 * Math.min(keySubTile, blockSize) : blockSize
  return {
    smemBytes: (keyRows * (headDim + valueWidth) + 2 * rows * headDim + headDim * valueWidth) * elementBytes,
    accumulatorFloats: headDim * valueWidth + rows * valueWidth + rows * keySubTile,
    ...threads(geometry)
  }
}

/** Returns the footprint of the split layout's inter CTA: a double-buffered query chunk and the state operand, with the output chunk in registers. */
export function interFootprint(geometry: BlockGeometry): CtaFootprint {
  const rows = chunkRows(geometry.consumerGroups, geometry.blockSize)
  return {
    smemBytes: (2 * rows * geometry.headDim + geometry.headDim * geometry.valueWidth) * geometry.elementBytes,
    accumulatorFloats: rows * geometry.valueWidth,
    ...threads(geometry)
  }
}

/**
 * Returns the footprint of a backward CTA. The walk processes 64-row chunks as
 * the FlashAttention backward does, with the key chunk resident and query and
 * dO chunks double-buffered. Registers hold the FP32 state (KV or dKV), the dK
 * and dV chunk accumulators and a score sub-tile.
 */
export function backwardFootprint(geometry: BlockGeometry): CtaFootprint {
  const { headDim, valueWidth, elementBytes } = geometry
  const rows = 64
  return {
    smemBytes: (3 * rows * (headDim + valueWidth) + headDim * valueWidth) * elementBytes,
    accumulatorFloats: headDim * valueWidth + rows * (headDim + valueWidth) + rows * keySubTile,
    consumerThreads: 256,
    producerThreads: geometry.mma === "async" ? 128 : 0
  }
}

/** A scan or decode CTA: 256 threads streaming state elements, nothing staged. */
export const streamingFootprint: CtaFootprint = { smemBytes: 0, accumulatorFloats: 0, consumerThreads: 256, producerThreads: 0 }
