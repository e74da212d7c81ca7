import type { WorkCounts } from "../../cost/counts.js"
import { keysLoaded } from "./tiling.js"

/**
 * Work of lightning-attention kernels per block of B rows, in the cost model's
 * units. Conventions:
 * - Matrix products count 2 FLOPs per multiply-add over the whole padded tile.
 *   The intra product is the full B × B block (masked half and padding rows
 *   included), as the kernel computes it. `useful` counts only the pairs j ≤ i
 *   of real rows and skips products with a state that is still zero.
 * - exp: the decay mask λ^(i−j) (B² per evaluation, masked lanes included, as
 *   the warp issues them), the query decays λ^(i+1) and key decays λ^(L−1−b)
 *   (B each), and the block decay λ^L (1 per block).
 * - Vector FLOPs use the FMA-peak convention (one lane-instruction counts 2).
 * - `loads` and `stores` are global-memory bytes of real rows (padding rows are
 *   not loaded), at the element size `s` for Q, K, V, O, at `stateBytes` for
 *   stored states, and FP32 for partial outputs.
 */
export interface BlockDims {
  readonly blockSize: number
  readonly headDim: number
  /** Value columns of the CTA (a slice of dv when value columns are split). */
  readonly valueWidth: number
  readonly elementBytes: number
  readonly stateBytes: number
  /** Query rows per chunk of the block product. */
  readonly chunkRows: number
  /** K and V stream through shared memory in sub-tiles, so later row chunks re-read earlier keys from L2. */
  readonly streamKeys: boolean
}

export interface Work {
  readonly tensor: number
  readonly useful: number
  readonly exp: number
  readonly vector: number
  readonly loads: number
  /**
   * L2 re-reads of K and V sub-tiles by later row chunks when keys are streamed.
   * The executed kernels hold the whole block, so they count loads without these.
   */
  readonly rereads: number
  readonly stores: number
  readonly smem: number
}

export const noWork: Work = { tensor: 0, useful: 0, exp: 0, vector: 0, loads: 0, rereads: 0, stores: 0, smem: 0 }

export function addWork(a: Work, b: Work): Work {
  return {
    tensor: a.tensor + b.tensor,
    useful: a.useful + b.useful,
    exp: a.exp + b.exp,
    vector: a.vector + b.vector,
    loads: a.loads + b.loads,
    rereads: a.rereads + b.rereads,
    stores: a.stores + b.stores,
    smem: a.smem + b.smem
  }
}

export function scaleWork(a: Work, factor: number): Work {
  return {
    tensor: a.tensor * factor,
    useful: a.useful * factor,
    exp: a.exp * factor,
    vector: a.vector * factor,
    loads: a.loads * factor,
    rereads: a.rereads * factor,
    stores: a.stores * factor,
    smem: a.smem * factor
  }
}

export function toWorkCounts(work: Work): WorkCounts {
  return {
    tensorFlops: work.tensor,
    usefulFlops: work.useful,
    expOps: work.exp,
    vectorFlops: work.vector,
    bytes: { hbm: 0, l2: work.loads + work.rereads + work.stores, smem: work.smem + work.rereads }
  }
}

/** Bytes of K and V that later row chunks of a block re-read from L2 when keys are streamed. */
function rereadBytes(dims: BlockDims, rows: number): number {
  const extraKeys = keysLoaded(rows, dims.chunkRows, dims.streamKeys) - rows
  return extraKeys * (dims.headDim + dims.valueWidth) * dims.elementBytes
}

/** Pairs (i, j) with j ≤ i among the first `rows` rows of a block. */
const causalPairs = (rows: number): number => (rows * (rows + 1)) / 2

/** Exps of the decay mask and the query decays, computed once per CTA that needs them. */
export const maskAndQueryDecayExps = (blockSize: number): number => blockSize * blockSize + blockSize

/**
 * Counts one block of the fused forward kernel, `rows` of them real: S = (Q·Kᵀ) ⊙ M,
 * O = S·V + (Q·KV) ⊙ query decays, KV ← λ^L·KV + (K ⊙ key decays)ᵀ·V. Q, K and
 * the CTA's V columns are loaded once and O stored once. `hasState` is false
 * for the first block of a sequence with no prefix, whose Q·KV is zero.
 * Per-CTA exps (mask, query and key decays) are added by the caller.
 */
export function fusedBlock(dims: BlockDims, rows: number, hasState: boolean): Work {
  const { blockSize: b, headDim: dk, valueWidth: e, elementBytes: s } = dims
  return {
    rereads: rereadBytes(dims, rows),
    tensor: 2 * b * b * dk + 2 * b * b * e + 4 * b * dk * e,
    useful: 2 * causalPairs(rows) * (dk + e) + (hasState ? 2 * rows * dk * e : 0) + 2 * rows * dk * e,
    exp: 1,
    // Mask multiply and 16-bit conversion of S, query-decay scale and add of the
    // inter part, key-decay scale and conversion of K, and the state decay with
    // its 16-bit copy for the Q·KV product.
    vector: 2 * (2 * b * b + b * e + 2 * b * dk + 2 * dk * e),
    loads: rows * (2 * dk + e) * s,
    stores: rows * e * s,
    // Staged Q, K, V are written once. Q is read by two products, K by one and V
    // by two. Decayed K and the state operand are each written and read once.
    smem: b * (2 * dk + e) * s + 2 * b * dk * s + b * dk * s + 2 * b * e * s + 2 * b * dk * s + 2 * dk * e * s
  }
}

/**
 * Counts one block of the split layout's intra kernel: S = (Q·Kᵀ) ⊙ M, the FP32
 * partial output S·V, and the block's own state contribution (K ⊙ key decays)ᵀ·V
 * stored at the state dtype. Mask and key decays are computed per CTA, so per block.
 */
export function intraBlock(dims: BlockDims, rows: number): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s, stateBytes } = dims
  return {
    rereads: rereadBytes(dims, rows),
    tensor: 2 * b * b * (dk + dv) + 2 * b * dk * dv,
    useful: 2 * causalPairs(rows) * (dk + dv) + 2 * rows * dk * dv,
    exp: b * b + b,
    vector: 2 * (2 * b * b + 2 * b * dk + dk * dv),
    loads: rows * (2 * dk + dv) * s,
    stores: rows * dv * 4 + dk * dv * stateBytes,
    smem: b * (2 * dk + dv) * s + 2 * b * dk * s + 2 * b * dv * s + 2 * b * dk * s
  }
}

/**
 * Counts one block of a state scan over `elements` state entries: the stored prefix
 * (the state entering the block) and KV ← λ^L·KV + local, one FMA per entry,
 * one exp for λ^L.
 */
export function scanBlock(elements: number, stateBytes: number): Work {
  return { tensor: 0, useful: 0, exp: 1, vector: 2 * elements, loads: elements * stateBytes, rereads: 0, stores: elements * stateBytes, smem: 0 }
}

/**
 * Counts one block of the split layout's inter kernel: O = partial + (Q·KV_t) ⊙ query
 * decays, with KV_t the stored prefix. Query decays are computed per CTA.
 */
export function interBlock(dims: BlockDims, rows: number, hasState: boolean): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s, stateBytes } = dims
  return {
    rereads: 0,
    tensor: 2 * b * dk * dv,
    useful: hasState ? 2 * rows * dk * dv : 0,
    exp: b,
    vector: 2 * (b * dv + dk * dv),
    loads: rows * dk * s + dk * dv * stateBytes + rows * dv * 4,
    stores: rows * dv * s,
    smem: 2 * (b * dk * s + dk * dv * s)
  }
}

/**
 * Counts one decode step of one CTA: S ← λ·S + k·vᵀ (a multiply and an FMA per entry),
 * o = q·S (an FMA per entry), on the FP32 pipes: a single row gives matrix-vector
 * products, so no tensor-core work. λ comes from the per-head rate table, so no exp.
 */
export function decodeStep(dims: BlockDims): Work {
  const { headDim: dk, valueWidth: e, elementBytes: s, stateBytes } = dims
  return {
    rereads: 0,
    tensor: 0,
    useful: 4 * dk * e,
    exp: 0,
    vector: 6 * dk * e,
    loads: dk * e * stateBytes + 2 * dk * s + e * s,
    stores: dk * e * stateBytes + e * s,
    smem: 2 * dk * s
  }
}

/** Query chunks of 64 rows per block, for the backward's chunk re-reads. */
const chunksPerBlock = (blockSize: number): number => Math.ceil(blockSize / 64)

/**
 * Counts one block of the backward dQ walk (blocks in order, KV rebuilt as in the
 * forward): dP = dO·Vᵀ, dQ = (dP ⊙ M)·K + (dO·KVᵀ) ⊙ query decays, and the KV update.
 * Each 64-row query chunk re-reads the block's earlier K and V chunks from L2.
 */
export function backwardDqBlock(dims: BlockDims, rows: number): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s } = dims
  const passes = (chunksPerBlock(b) + 1) / 2
  return {
    rereads: rows * (dk + dv) * s * (passes - 1),
    tensor: 2 * b * b * (dk + dv) + 4 * b * dk * dv,
    useful: 2 * causalPairs(rows) * (dk + dv) + 4 * rows * dk * dv,
    exp: 1,
    vector: 2 * (3 * b * b + 3 * b * dk + 2 * dk * dv),
    loads: rows * dv * s + rows * (dk + dv) * s,
    stores: rows * dk * s,
    smem: 3 * b * (dk + 2 * dv) * s + 2 * dk * dv * s
  }
}

/**
 * Counts one block of the backward dK/dV walk (blocks in reverse, dKV carried back):
 * S = Q·Kᵀ, dP = dO·Vᵀ, dK = (dP ⊙ M)ᵀ·Q + (V·dKVᵀ) ⊙ decays,
 * dV = (S ⊙ M)ᵀ·dO + (K·dKV) ⊙ decays, dKV ← λ^L·dKV + (Q ⊙ decays)ᵀ·dO.
 * Each 64-row key chunk re-reads the block's later Q and dO chunks from L2.
 */
export function backwardDkdvBlock(dims: BlockDims, rows: number): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s } = dims
  const passes = (chunksPerBlock(b) + 1) / 2
  return {
    rereads: rows * (dk + dv) * s * (passes - 1),
    tensor: 2 * b * b * (2 * dk + 2 * dv) + 6 * b * dk * dv,
    useful: 2 * causalPairs(rows) * (2 * dk + 2 * dv) + 6 * rows * dk * dv,
    exp: 1,
    vector: 2 * (4 * b * b + 3 * b * (dk + dv) + 2 * dk * dv),
    loads: rows * (dk + dv) * s + rows * (dk + dv) * s,
    stores: rows * (dk + dv) * s,
    smem: 3 * b * (2 * dk + 2 * dv) * s + 2 * dk * dv * s
  }
}

/**
 * Counts one block of the split backward's intra kernel: S, dP, the intra parts of
 * dQ, dK, dV (FP32 partials), and the block's local KV and dKV contributions.
 */
export function backwardIntraBlock(dims: BlockDims, rows: number): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s, stateBytes } = dims
  return {
    rereads: 0,
    tensor: 2 * b * b * (3 * dk + 2 * dv) + 4 * b * dk * dv,
    useful: 2 * causalPairs(rows) * (3 * dk + 2 * dv) + 4 * rows * dk * dv,
    exp: b * b + 2 * b,
    vector: 2 * (4 * b * b + 2 * b * (dk + dv) + 2 * dk * dv),
    loads: rows * (2 * dk + 2 * dv) * s,
    stores: rows * (2 * dk + dv) * 4 + 2 * dk * dv * stateBytes,
    smem: 3 * b * (2 * dk + 2 * dv) * s
  }
}

/**
 * Counts one block of the split backward's inter kernel: dQ += (dO·KV_tᵀ) ⊙ decays,
 * dK += (V·dKV_tᵀ) ⊙ decays, dV += (K·dKV_t) ⊙ decays, reading the stored prefix
 * KV_t and suffix dKV_t and the FP32 partials, storing the gradients.
 */
export function backwardInterBlock(dims: BlockDims, rows: number): Work {
  const { blockSize: b, headDim: dk, valueWidth: dv, elementBytes: s, stateBytes } = dims
  return {
    rereads: 0,
    tensor: 6 * b * dk * dv,
    useful: 6 * rows * dk * dv,
    exp: 2 * b,
    vector: 2 * (2 * b * (2 * dk + dv) + 2 * dk * dv),
    loads: rows * (dk + 2 * dv) * s + 2 * dk * dv * stateBytes + rows * (2 * dk + dv) * 4,
    stores: rows * (2 * dk + dv) * s,
    smem: 2 * (b * (dk + 2 * dv) * s + 2 * dk * dv * s)
  }
}
