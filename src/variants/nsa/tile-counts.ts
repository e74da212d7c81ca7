import type { WorkCounts } from "../../cost/counts.js"
import { maskFlopsPerScore, rescaleFlopsPerOutputElement, vectorFlopsPerScore } from "../dense/generations.js"

/**
 * Work of one forward attention CTA that keeps `rows` query rows on chip and
 * streams `steps` key tiles of blockN keys: the dense forward kernel's
 * accounting (same per-score vector work, staging and MMA-read traffic),
 * written for any list of key tiles so that compressed-token and
 * selected-block kernels count the way the dense kernel does.
 */
export interface ForwardWork {
  /** MMA rows executed, padding included. */
  readonly rows: number
  /** Rows holding real queries. */
  readonly realRows: number
  readonly blockN: number
  readonly steps: number
  /** Steps whose tile needs masking. */
  readonly partialSteps: number
  /** Key rows loaded over all steps. */
  readonly keys: number
  /** Visible (query row, key) pairs over the real rows. */
  readonly pairs: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  /** Consumers (warps or warpgroups) reading each staged K/V tile from shared memory. */
  readonly readers: number
  /** Output bytes: the normalized output, or FP32 partial output and log-sum-exp for split-KV. */
  readonly outputBytes: number
  /** Other global loads of the CTA (block indices). */
  readonly extraL2Bytes?: number | undefined
}

export function forwardWorkCounts(w: ForwardWork): WorkCounts {
  const dk = w.headDim
  const dv = w.headDimV
  const s = w.elementBytes
  const scores = w.steps * w.rows * w.blockN
  const kvBytes = w.keys * (dk + dv) * s
  return {
    tensorFlops: 2 * scores * (dk + dv),
    usefulFlops: 2 * (dk + dv) * w.pairs,
    expOps: scores,
    vectorFlops:
      scores * vectorFlopsPerScore.forward + w.partialSteps * w.rows * w.blockN * maskFlopsPerScore + w.steps * w.rows * dv * rescaleFlopsPerOutputElement,
    bytes: {
      hbm: 0,
      l2: kvBytes + w.realRows * dk * s + w.outputBytes + (w.extraL2Bytes ?? 0),
      smem: kvBytes + w.steps * (w.rows * dk * s + w.readers * w.blockN * (dk + dv) * s) + w.rows * dk * s
    }
  }
}

/**
 * Backward CTA that keeps a key tile (blockN keys of one head) and streams
 * `steps` query tiles of blockM rows, as the dense backward kernel does: five
 * matrix products per step (S = Q·Kᵀ, dP = dO·Vᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q,
 * dQ += dS·K), dQ accumulated by FP32 atomics, dK and dV stored once.
 */
export interface KeyStationaryBackward {
  readonly keys: number
  readonly blockM: number
  readonly blockN: number
  readonly steps: number
  /** Query rows covered by the streamed tiles. */
  readonly queryRows: number
  readonly pairs: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  readonly readers: number
}

export function keyStationaryBackwardCounts(w: KeyStationaryBackward): WorkCounts {
  const dk = w.headDim
  const dv = w.headDimV
  const s = w.elementBytes
  const scores = w.steps * w.blockM * w.blockN
  const queryTileBytes = w.queryRows * ((dk + dv) * s + 8)
  const atomicBytes = 2 * w.queryRows * dk * 4
  const keyBytes = w.keys * (dk + dv) * s
  return {
    tensorFlops: 2 * scores * (3 * dk + 2 * dv),
    usefulFlops: 2 * (3 * dk + 2 * dv) * w.pairs,
    expOps: scores,
    vectorFlops: scores * vectorFlopsPerScore.backward,
    bytes: {
      hbm: 0,
      l2: queryTileBytes + atomicBytes + 2 * keyBytes,
      smem: queryTileBytes + w.steps * (w.readers * w.blockM * (dk + dv) * s + 3 * w.blockM * w.blockN * s) + keyBytes
    }
  }
}

/**
 * The dQ pass of the group-centric backward: the G query rows of one position
 * (padded to `rows`) stay on chip with their dO; per selected key tile it
 * recomputes S = Q·Kᵀ and dP = dO·Vᵀ, forms dS, and accumulates dQ += dS·K in
 * registers (three products). dQ is complete in the CTA and stored once in
 * FP32, to be summed with the other branches' dQ.
 */
export interface QueryStationaryBackward {
  readonly rows: number
  readonly realRows: number
  readonly blockN: number
  readonly steps: number
  readonly keys: number
  readonly pairs: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  readonly readers: number
}

export function queryGradientCounts(w: QueryStationaryBackward): WorkCounts {
  const dk = w.headDim
  const dv = w.headDimV
  const s = w.elementBytes
  const scores = w.steps * w.rows * w.blockN
  const rowBytes = w.realRows * ((dk + dv) * s + 8)
  const keyBytes = w.keys * (dk + dv) * s
  return {
    tensorFlops: 2 * scores * (2 * dk + dv),
    usefulFlops: 2 * (2 * dk + dv) * w.pairs,
    expOps: scores,
    vectorFlops: scores * vectorFlopsPerScore.backward,
    bytes: {
      hbm: 0,
      l2: rowBytes + keyBytes + w.realRows * dk * 4,
      smem: rowBytes + keyBytes + w.steps * (w.readers * w.blockN * (dk + dv) * s + 2 * w.rows * w.blockN * s)
    }
  }
}

/**
 * The dK/dV pass: one CTA per selection block keeps the block's K and V on
 * chip and visits every position that selected the block (through a reverse
 * index), loading that position's G rows of Q, dO, log-sum-exp and D,
 * recomputing S and dP, and accumulating dV += Pᵀ·dO and dK += dSᵀ·Q (four
 * products). dK and dV are stored once; no atomics are needed.
 */
export interface KeyBlockGradient {
  /** Positions the CTA visits (selections of its block). */
  readonly visits: number
  readonly rows: number
  readonly realRows: number
  readonly blockKeys: number
  /** Visible (query row, key) pairs over the visits. */
  readonly pairs: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  readonly readers: number
}

export function keyBlockGradientCounts(w: KeyBlockGradient): WorkCounts {
  const dk = w.headDim
  const dv = w.headDimV
  const s = w.elementBytes
  const scores = w.visits * w.rows * w.blockKeys
  // Per visit: the position's rows of Q and dO, log-sum-exp and D, and its index entry.
  const visitBytes = w.visits * (w.realRows * ((dk + dv) * s + 8) + 4)
  const blockBytes = w.blockKeys * (dk + dv) * s
  return {
    tensorFlops: 2 * scores * (2 * dk + 2 * dv),
    usefulFlops: 2 * (2 * dk + 2 * dv) * w.pairs,
    expOps: scores,
    vectorFlops: scores * vectorFlopsPerScore.backward,
    bytes: {
      hbm: 0,
      l2: visitBytes + 2 * blockBytes,
      smem: visitBytes + blockBytes + w.visits * (w.readers * w.rows * (dk + dv) * s + 2 * w.rows * w.blockKeys * s)
    }
  }
}
