import type { KernelSpec } from "../../cost/kernel-time.js"
import { streamingKernel } from "../../cost/streaming.js"
import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { bytesPerElement } from "../dense/schedule.js"
import { blockOf, historySlots, queryBlocks, queryPosition } from "./blocks.js"
import type { MobaConfig } from "./options.js"

/**
 * The kernels around MoBA's attention: mean pooling, gate scores, top-k, the
 * varlen index of the history part, the log-sum-exp merge, and for decode and
 * training their counterparts. None is free; each is priced as a kernel.
 */

/** Rows of one gating CTA: the G heads of a KV head at `positions` query positions, padded to the 16-row MMA height. */
export interface GateTile {
  readonly positions: number
  readonly rows: number
  /** Block means per step. */
  readonly blockTile: number
}

/** Block means a gating CTA stages per step. */
export const gateBlockTile = 64

/**
 * Sizes a gating CTA. It packs the G query heads of one KV head, because they
 * score the same block means, at 64 / G positions in prefill (at least one)
 * or at the decode queries in decode.
 */
export function gateTile(shape: AttentionShape, phase: Phase): GateTile {
  const group = shape.heads / shape.kvHeads
  const perTile = Math.max(1, Math.floor(64 / group))
  const positions = phase === "decode" ? Math.min(shape.seqLenQ, perTile) : perTile
  return { positions, rows: Math.ceil((group * positions) / 16) * 16, blockTile: gateBlockTile }
}

/** Work of one executed gating step (rows × blockTile scores of headDim products), as the gating worker counts it. */
export function gateStepCounts(tile: GateTile, stepBlocks: number, shape: AttentionShape): { tensorFlops: number; expOps: number; loadBytes: number } {
  return {
    tensorFlops: 2 * tile.rows * tile.blockTile * shape.headDim,
    expOps: 0,
    loadBytes: stepBlocks * shape.headDim * bytesPerElement(shape)
  }
}

/**
 * Counts the block means a gating CTA scores. Prefill and training score all
 * blocks and mask the future ones, as one batched product over every block.
 * Decode reads the cached means of the complete blocks before the last query.
 */
export function gateCandidates(shape: AttentionShape, phase: Phase, config: MobaConfig): number {
  return phase === "decode" ? blockOf(shape.seqLenKV - 1, config.blockSize) : config.blocks
}

/** Prices mean pooling: every key read once, one mean per block and KV head written at the storage dtype. */
export function meanPoolKernel(shape: AttentionShape, config: MobaConfig, device: DeviceRates): KernelSpec {
  const s = bytesPerElement(shape)
  const keys = shape.batch * shape.kvHeads * shape.seqLenKV
  const bytes = keys * shape.headDim * s + shape.batch * shape.kvHeads * config.blocks * shape.headDim * s
  return streamingKernel("mean-pool", bytes, 2 * keys * shape.headDim, device)
}

/**
 * Prices the decode step's block-mean upkeep. Decode keeps one mean per
 * complete block (1/b of the K cache) and a running FP32 sum for the current
 * block. Each new key is added to the sum (read and write), and a completed
 * block's mean is stored. This serving design is an assumption.
 */
export function blockMeanUpdateKernel(shape: AttentionShape, device: DeviceRates): KernelSpec {
  const s = bytesPerElement(shape)
  const rows = shape.batch * shape.kvHeads * shape.seqLenQ
  return streamingKernel("block-mean-update", rows * shape.headDim * (s + 8), 2 * rows * shape.headDim, device)
}

/**
 * Prices the gate scores Q · mean(K)ᵀ on the tensor cores. Each CTA stages its
 * rows' queries and streams the KV head's block means in steps of `blockTile`.
 * Means are read from HBM once per KV head and then hit in L2. Prefill and
 * training write every score as FP32 for a separate top-k kernel. That is an
 * assumption (an unfused gate), and a fused gate and top-k would save the
 * traffic. Decode keeps the scores on chip and writes only the top-k indices.
 */
export function gateKernel(shape: AttentionShape, phase: Phase, config: MobaConfig, device: DeviceRates): KernelSpec {
  const s = bytesPerElement(shape)
  const dk = shape.headDim
  const group = shape.heads / shape.kvHeads
  const tile = gateTile(shape, phase)
  const candidates = gateCandidates(shape, phase, config)
  const steps = Math.ceil(candidates / tile.blockTile)
  const tilesPerKvHead = Math.ceil(shape.seqLenQ / tile.positions)
  const fused = phase === "decode"

  const classFor = (positions: number, count: number) => {
    const realRows = group * positions
    const meanBytes = candidates * dk * s
    const outputBytes = fused ? realRows * config.topK * 4 : realRows * candidates * 4
    const l2 = realRows * dk * s + meanBytes + outputBytes
    const scores = tile.rows * tile.blockTile * steps
    return {
      count,
      counts: {
        tensorFlops: 2 * scores * dk,
        usefulFlops: 2 * realRows * candidates * dk,
        expOps: 0,
        // Masking and storing each score; the fused decode top-k adds a compare
        // and a conditional insert per candidate (2 instructions).
        vectorFlops: 2 * scores + (fused ? 4 * realRows * candidates : 0),
        bytes: {
          hbm: l2 - meanBytes * (1 - 1 / tilesPerKvHead),
          l2,
          smem: tile.rows * dk * s + steps * tile.blockTile * dk * s + (fused ? scores * 4 : 0)
        }
      },
      prologueBytes: tile.rows * dk * s + tile.blockTile * dk * s,
      epilogueBytes: outputBytes
    }
  }

  const fullTiles = Math.floor(shape.seqLenQ / tile.positions)
  const rest = shape.seqLenQ - fullTiles * tile.positions
  const perKvHead = shape.batch * shape.kvHeads
  const classes = [...(fullTiles > 0 ? [classFor(tile.positions, fullTiles * perKvHead)] : []), ...(rest > 0 ? [classFor(rest, perKvHead)] : [])]
  return {
    name: fused ? "gate-top-k" : "gate",
    classes,
    ctasPerSm: 2,
    mma: device.asyncMma ? "async" : "sync",
    softmaxOverlap: 1,
    latencyHidden: 0.5,
    mmaEfficiency: 1
  }
}

/**
 * Prices top-k over the materialized FP32 scores. Each row reads its block
 * scores and keeps the best k − 1 past blocks (a compare and a conditional
 * insert per candidate, 2 instructions), then writes k block indices.
 */
export function topKKernel(shape: AttentionShape, config: MobaConfig, device: DeviceRates): KernelSpec {
  const rows = shape.batch * shape.heads * shape.seqLenQ
  return streamingKernel("top-k", rows * (config.blocks + config.topK) * 4, rows * config.blocks * 4, device)
}

/**
 * Prices the varlen layout of the history part, a counting sort of the
 * (query, block) selections by block. It reads the indices twice (histogram,
 * then scatter) and writes each selection's query index and the block offsets.
 */
export function varlenIndexKernel(shape: AttentionShape, config: MobaConfig, selectionsPerOwner: number, owners: number, device: DeviceRates): KernelSpec {
  const selections = shape.batch * owners * selectionsPerOwner
  const offsets = shape.batch * owners * (config.blocks + 1) * 4
  return streamingKernel("varlen-index", 3 * selections * 4 + 2 * offsets, 2 * selections * 2, device)
}

/** Partial results per query row that the merge combines. */
export interface MergeDemand {
  /** Query rows of one (batch, head) with at least one history block. */
  readonly rows: number
  /** Partial (output, log-sum-exp) pairs over those rows: the current block's and every history split's. */
  readonly parts: number
}

export function mergeDemand(shape: AttentionShape, config: MobaConfig, historySplits: number): MergeDemand {
  let rows = 0
  let parts = 0
  for (const { block, queryStart, queryEnd } of queryBlocks(shape, config.blockSize)) {
    const slots = historySlots(block, config.topK)
    if (slots === 0) continue
    rows += queryEnd - queryStart
    parts += (queryEnd - queryStart) * (1 + slots * historySplits)
  }
  return { rows, parts }
}

/**
 * Prices the log-sum-exp merge of each query's partial outputs. It reads every
 * part's output and FP32 log-sum-exp, rescales by exp(lse_part − lse), adds,
 * and writes the output, plus the merged log-sum-exp when training. Rows
 * without history blocks keep the current block's output.
 */
export function mergeKernel(shape: AttentionShape, phase: Phase, demand: MergeDemand, device: DeviceRates): KernelSpec {
  const s = bytesPerElement(shape)
  const dv = shape.headDimV
  const heads = shape.batch * shape.heads
  const bytes = heads * (demand.parts * (dv * s + 4) + demand.rows * (dv * s + (phase === "train" ? 4 : 0)))
  const spec = streamingKernel("merge", bytes, heads * demand.parts * (dv + 2) * 2, device)
  const ctas = spec.classes.reduce((sum, c) => sum + c.count, 0)
  return { ...spec, classes: spec.classes.map((c) => ({ ...c, counts: { ...c.counts, expOps: (heads * demand.parts) / ctas } })) }
}

/**
 * Prices the training reduction of per-head selection: each query head's dK
 * and dV of its history blocks are summed into the block's KV head.
 */
export function historyGqaReduceKernel(shape: AttentionShape, config: MobaConfig, segments: number, device: DeviceRates): KernelSpec {
  const s = bytesPerElement(shape)
  const elements = shape.batch * segments * config.blockSize * (shape.headDim + shape.headDimV)
  return streamingKernel("history-gqa-reduce", elements * (shape.heads + shape.kvHeads) * s, elements * shape.heads * 2, device)
}

/** Current block of the last query, the one a decode step gates for. */
export const lastQueryBlock = (shape: AttentionShape, config: Pick<MobaConfig, "blockSize">): number =>
  blockOf(queryPosition(shape, shape.seqLenQ - 1), config.blockSize)
