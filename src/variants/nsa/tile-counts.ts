import type { WorkCounts } from "../../cost/counts.js"
import { vectorFlopsPerScore } from "../dense/generations.js"

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
