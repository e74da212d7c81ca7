import { elementBytes, type Dtype } from "../hardware/profile-schema.js"
import type { VariantId } from "../variants/variant.js"

/**
 * Memory one layer keeps per sequence: cache that grows with context, and
 * state that does not (a linear-attention state, or the last `window` keys and
 * values of a sliding window, which decode keeps as a ring buffer).
 */
export interface LayerMemory {
  /** Bytes cached per token of context (K/V, latents, compressed K/V). */
  readonly kvCacheBytesPerToken: number
  /** Bytes held per sequence regardless of its length (linear-attention state). */
  readonly stateBytesPerSequence: number
  /** Capacity of a sliding-window state in keys. A shorter sequence fills only part of it. */
  readonly windowTokens?: number
}

/** Bytes one sequence of `seqLen` tokens keeps in a layer: a window state counts only the keys it holds. */
export function sequenceBytes(memory: LayerMemory, seqLen: number): number {
  const state = memory.windowTokens === undefined ? memory.stateBytesPerSequence : (memory.stateBytesPerSequence * Math.min(seqLen, memory.windowTokens)) / memory.windowTokens
  return memory.kvCacheBytesPerToken * seqLen + state
}

export interface LayerShape {
  readonly heads: number
  readonly kvHeads: number
  readonly headDim: number
  readonly headDimV: number
}

/**
 * Per-layer memory by variant, at the given dtype.
 * - dense, moba: K and V for every KV head; a dense layer with a `window`
 *   keeps only the last `window` of them, as state.
 * - nsa: each branch has its own keys and values (NSA paper, arXiv 2502.11089,
 *   Section 3): raw K/V for selection and one compressed K/V per
 *   `compressStride` tokens grow with context, and the sliding-window branch
 *   keeps its last `window` K/V as state.
 * - mla: one latent plus one rotary key per token, shared by all heads.
 * - lightning: nothing per token; a heads × dk × dv state, FP32 unless the
 *   options say otherwise.
 */
export function layerMemory(variant: VariantId, shape: LayerShape, options: Readonly<Record<string, unknown>>, dtype: Dtype): LayerMemory {
  const s = elementBytes[dtype]
  const kv = shape.kvHeads * (shape.headDim + shape.headDimV) * s
  switch (variant) {
    case "dense":
      if (typeof options.window === "number") return { kvCacheBytesPerToken: 0, stateBytesPerSequence: options.window * kv, windowTokens: options.window }
      return { kvCacheBytesPerToken: kv, stateBytesPerSequence: 0 }
    case "moba":
      return { kvCacheBytesPerToken: kv, stateBytesPerSequence: 0 }
    case "nsa": {
      const stride = Number(options.compressStride ?? 16)
      const window = Number(options.window ?? 512)
      return { kvCacheBytesPerToken: kv + kv / stride, stateBytesPerSequence: window * kv, windowTokens: window }
    }
    case "mla": {
      const latent = Number(options.kvLoraRank ?? 512) + Number(options.ropeDim ?? 64)
      return { kvCacheBytesPerToken: latent * s, stateBytesPerSequence: 0 }
    }
    case "lightning": {
      const stateDtype = (options.stateDtype ?? "fp32") as Dtype
      return { kvCacheBytesPerToken: 0, stateBytesPerSequence: shape.heads * shape.headDim * shape.headDimV * elementBytes[stateDtype] }
    }
  }
}
