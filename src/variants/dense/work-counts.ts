import type { WorkCounts } from "../../cost/counts.js"
import { maskFlopsPerScore, rescaleFlopsPerOutputElement, vectorFlopsPerScore } from "./generations.js"

/**
 * Work of one forward attention CTA that keeps `rows` query rows on chip and
 * streams `steps` key tiles of blockN keys. Per key tile it counts S = Q·Kᵀ
 * and O += P·V on rows × blockN, the exp of every score and the vector work
 * of online softmax, and the K and V tile loads. Once per CTA it counts the
 * query tile load and the output store. The dense schedule counts its items
 * with it, and so do kernels that stream other key tiles (NSA's selected
 * blocks, MoBA's history blocks), so all of them count alike.
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
  /** Elements loaded per key row; default dk + dv (dk alone when V is read from K's rows). */
  readonly keyRowElements?: number | undefined
  /** Visible (query row, key) pairs over the real rows. */
  readonly pairs: number
  readonly headDim: number
  readonly headDimV: number
  readonly elementBytes: number
  /** Consumers (warps or warpgroups) reading each staged K/V tile from shared memory. */
  readonly readers: number
  /** Output bytes: the normalized output, or FP32 partial output and log-sum-exp for split-KV. */
  readonly outputBytes: number
  /** Other global loads of the CTA (block or query indices). */
  readonly extraL2Bytes?: number | undefined
}

export function forwardWorkCounts(w: ForwardWork): WorkCounts {
  const dk = w.headDim
  const dv = w.headDimV
  const s = w.elementBytes
  const scores = w.steps * w.rows * w.blockN
  const kvBytes = w.keys * (w.keyRowElements ?? dk + dv) * s
  return {
    tensorFlops: 2 * scores * (dk + dv),
    usefulFlops: 2 * (dk + dv) * w.pairs,
    expOps: scores,
    vectorFlops:
      scores * vectorFlopsPerScore.forward + w.partialSteps * w.rows * w.blockN * maskFlopsPerScore + w.steps * w.rows * dv * rescaleFlopsPerOutputElement,
    bytes: {
      hbm: 0,
      l2: kvBytes + w.realRows * dk * s + w.outputBytes + (w.extraL2Bytes ?? 0),
      // Staged K/V tiles written once and read by every consumer; the query tile
      // staged once and read once per key tile.
      smem: kvBytes + w.steps * (w.rows * dk * s + w.readers * w.blockN * (dk + dv) * s) + w.rows * dk * s
    }
  }
}

/**
 * Backward CTA that keeps a key tile (blockN keys of one head) and streams
 * `steps` query tiles of blockM rows, FlashAttention-2 style. Per query tile it
 * runs five matrix products, S = Q·Kᵀ, dP = dO·Vᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q and
 * dQ += dS·K, giving 2·blockM·blockN·(3·dk + 2·dv) FLOPs, and recomputes P
 * with exp. Per query row it loads Q, dO, the log-sum-exp and D, and adds dQ by
 * FP32 atomics in L2 (read and write). It loads K and V and stores dK and dV once.
 */
export interface KeyStationaryBackward {
  readonly keys: number
  readonly blockM: number
  readonly blockN: number
  readonly steps: number
  /** Query rows covered by the streamed tiles. */
  readonly queryRows: number
  /** Visible (query, key) pairs of the key tile. */
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
      // Staged Q and dO tiles read by every consumer; dS staged through shared
      // memory for the dK and dQ products; K and V staged once.
      smem: queryTileBytes + w.steps * (w.readers * w.blockM * (dk + dv) * s + 3 * w.blockM * w.blockN * s) + keyBytes
    }
  }
}
