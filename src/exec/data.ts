import type { Dtype } from "../hardware/profile-schema.js"

/**
 * Deterministic tensor contents for executed tiles. Any element of a full-size
 * Q, K or V tensor is a hash of (seed, tensor, batch, head, position, dim), so a
 * sampled tile of a 128k-token schedule is built without materializing the rest.
 * Values are uniform in [-1, 1) and rounded to the modeled dtype, so the FP32
 * kernels see exactly the values a bf16/fp16/fp8 kernel would load.
 */
export const TensorId = { query: 1, key: 2, value: 3, state: 4 } as const
export type TensorId = (typeof TensorId)[keyof typeof TensorId]

/** Explicit mantissa bits kept per dtype when rounding (bf16 7, fp16 10, fp8 e4m3 3). */
export const mantissaBits: Record<Dtype, number> = { bf16: 7, fp16: 10, fp8: 3, fp32: 23 }

/** The 32-bit finalizer of MurmurHash3: a bijective mix with good avalanche. */
function mix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

export interface RowKey {
  readonly seed: number
  readonly tensor: TensorId
  readonly batch: number
  readonly head: number
  readonly position: number
}

function rowHash(key: RowKey): number {
  let h = mix32(key.seed ^ 0x9e3779b9)
  h = mix32(h ^ Math.imul(key.tensor, 0x27d4eb2f))
  h = mix32(h ^ Math.imul(key.batch + 1, 0x165667b1))
  h = mix32(h ^ Math.imul(key.head + 1, 0x61c88647))
  return mix32(h ^ Math.imul(key.position + 1, 0x7feb352d))
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** Round an FP32 value to `bits` mantissa bits, nearest-even (normal numbers). */
export function roundMantissa(value: number, bits: number): number {
  if (bits >= 23 || value === 0) return Math.fround(value)
  const drop = 23 - bits
  f32[0] = value
  const word = u32[0]!
  const half = 1 << (drop - 1)
  const lsb = (word >>> drop) & 1
  u32[0] = (((word + half - 1 + lsb) >>> drop) << drop) >>> 0
  return f32[0]!
}

/** Write one row of `dims` values into `out` at `offset`. */
export function fillRow(out: Float32Array, offset: number, dims: number, key: RowKey, dtype: Dtype): void {
  const base = rowHash(key)
  const bits = mantissaBits[dtype]
  for (let dim = 0; dim < dims; dim++) {
    const h = mix32(base + Math.imul(dim + 1, 0x9e3779b1))
    out[offset + dim] = roundMantissa((h >>> 8) / 8388608 - 1, bits)
  }
}

/** A seeded generator for sampling decisions (mulberry32). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
