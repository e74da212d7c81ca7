import type { Dtype } from "../hardware/profile-schema.js"
import type { MaskSpec } from "./mask.js"

export type Phase = "prefill" | "decode" | "train"

/**
 * One attention operation for one layer. Query heads `heads` share key/value
 * heads in groups of heads / kvHeads (GQA; MQA when kvHeads = 1).
 */
export interface AttentionShape extends MaskSpec {
  readonly batch: number
  readonly heads: number
  readonly kvHeads: number
  /** Query/key head dimension dk. */
  readonly headDim: number
  /** Value head dimension dv. */
  readonly headDimV: number
  readonly dtype: Dtype
  /**
   * V is the first headDimV columns of each K row (MLA's latent cache with
   * absorbed weights): a key row is loaded once, headDim elements.
   */
  readonly sharedKV?: boolean | undefined
}

/** Elements loaded from memory per key row: K and V, or K alone when V lives inside it. */
export const keyRowElements = (shape: AttentionShape): number => (shape.sharedKV ? shape.headDim : shape.headDim + shape.headDimV)

export const groupSize = (shape: AttentionShape): number => shape.heads / shape.kvHeads

/**
 * FLOPs by the FlashAttention papers' convention, for comparing with published
 * TFLOP/s: forward 4·seqLen²·headDim·heads per sequence, halved when causal.
 * For dk ≠ dv or seqLenQ ≠ seqLenKV it generalizes to 2·seqLenQ·avgKeys·(dk+dv)
 * with avgKeys = seqLenKV, or (max(0, seqLenKV − seqLenQ) + seqLenKV) / 2 when
 * causal. The window and the exact diagonal are ignored on purpose: this is the
 * published convention, not a count.
 */
export function conventionForwardFlops(shape: AttentionShape): number {
  const averageKeys = shape.causal ? (Math.max(0, shape.seqLenKV - shape.seqLenQ) + shape.seqLenKV) / 2 : shape.seqLenKV
  return 2 * shape.batch * shape.heads * shape.seqLenQ * averageKeys * (shape.headDim + shape.headDimV)
}

/** Backward is 2.5 × forward by the same convention (five matrix products against two). */
export const backwardFlopsFactor = 2.5

/** The expectation for a causal query length: bottom-right alignment leaves queries beyond the keys with nothing to attend. */
export const causalQueryLimit = (seqLen: number): string =>
  `at most the keys per sequence (${seqLen}) in causal attention: aligned bottom-right, the first queries would see no keys`
