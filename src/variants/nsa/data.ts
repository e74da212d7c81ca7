import { fillRow, mantissaBits, roundMantissa, TensorId } from "../../exec/data.js"
import type { Dtype } from "../../hardware/profile-schema.js"
import type { NsaGeometry } from "./geometry.js"

export type NsaBranch = "compressed" | "selected" | "window"
export const nsaBranches: ReadonlyArray<NsaBranch> = ["compressed", "selected", "window"]
/** Branches that attend raw key rows. */
export type AttendedBranch = Exclude<NsaBranch, "compressed">

/**
 * A probe that replaces every tensor row at positions after `after` (queries, gates and the
 * K/V of all three branches) with rows drawn from another seed: the probe
 * that shows nothing at or before `after` depends on later tokens.
 */
export interface Perturbation {
  readonly after: number
  /** Mixed into the seed of perturbed rows; must not be 0. */
  readonly seed: number
}

export interface NsaDataOptions {
  readonly seed: number
  readonly dtype: Dtype
  readonly headDim: number
  readonly headDimV: number
  readonly geometry: NsaGeometry
  readonly perturbation?: Perturbation | undefined
}

/**
 * Deterministic NSA tensors for executed tiles and the float64 reference.
 * Each branch has its own K and V, as in NSA, and all branches share the
 * query. The sliding-window branch uses the base K/V tensors of the seed, so
 * the dense sampler run on the window plan with the same seed builds exactly
 * these tiles.
 *
 * NOTE: compressed tokens come from a linear stand-in for the priced MLP
 * (seeded position weights over the block's keys plus a seeded intra-block
 * position encoding). The checks need only that token i is a fixed function
 * of exactly keys [i·d, i·d + l − 1]; the MLP's own arithmetic is priced,
 * not executed.
 */
export class NsaData {
  private readonly options: NsaDataOptions
  private readonly poolWeights: Float64Array
  /** Σ_j w_j · (position encoding of row j): what the encoding adds to every compressed token. */
  private readonly keyBias: Float64Array
  private readonly valueBias: Float64Array
  private readonly cache = new Map<string, Array<Float32Array | undefined>>()

  constructor(options: NsaDataOptions) {
    if (options.perturbation && options.perturbation.seed === 0) throw new RangeError("a perturbation needs a nonzero seed")
    this.options = options
    const { compressBlock } = options.geometry
    const weights = new Float32Array(compressBlock)
    fillRow(weights, 0, compressBlock, { seed: salted(options.seed, 11), tensor: TensorId.state, batch: 0, head: 0, position: 0 }, "fp32")
    // Positive weights in [0.5, 1.5), normalized to sum 1.
    const positive = Array.from(weights, (w) => 1 + 0.5 * w)
    const total = positive.reduce((sum, w) => sum + w, 0)
    this.poolWeights = Float64Array.from(positive, (w) => w / total)
    this.keyBias = this.encodingBias(12, options.headDim)
    this.valueBias = this.encodingBias(13, options.headDimV)
  }

  get dtype(): Dtype {
    return this.options.dtype
  }

  get headDim(): number {
    return this.options.headDim
  }

  get headDimV(): number {
    return this.options.headDimV
  }

  query(batch: number, head: number, position: number): Float32Array {
    const row = new Float32Array(this.options.headDim)
    fillRow(row, 0, row.length, { seed: this.seedAt(this.options.seed, position), tensor: TensorId.query, batch, head, position }, this.options.dtype)
    return row
  }

  /** Returns a key row of the selection or window branch (the compression branch's raw rows only feed φ). */
  key(branch: AttendedBranch, batch: number, kvHead: number, position: number): Float32Array {
    const row = new Float32Array(this.options.headDim)
    this.fill(row, branch, TensorId.key, batch, kvHead, position)
    return row
  }

  value(branch: AttendedBranch, batch: number, kvHead: number, position: number): Float32Array {
    const row = new Float32Array(this.options.headDimV)
    this.fill(row, branch, TensorId.value, batch, kvHead, position)
    return row
  }

  /** Compressed key token `index`, rounded to the dtype as a kernel would store it. */
  compressedKey(batch: number, kvHead: number, index: number): Float32Array {
    return this.compressed("k", batch, kvHead, index)
  }

  compressedValue(batch: number, kvHead: number, index: number): Float32Array {
    return this.compressed("v", batch, kvHead, index)
  }

  /** Gate of one branch for one query head and position, in (0.05, 0.95): seeded, as if from the gate MLP. */
  gate(batch: number, head: number, position: number, branch: NsaBranch): number {
    const row = new Float32Array(3)
    fillRow(row, 0, 3, { seed: this.seedAt(salted(this.options.seed, 14), position), tensor: TensorId.state, batch, head, position }, "fp32")
    return 0.5 + 0.45 * row[branchIndex(branch)]!
  }

  /** Compressed key tokens [0, end) of one KV head, computed in one sweep over the raw keys. */
  compressedKeys(batch: number, kvHead: number, end: number): ReadonlyArray<Float32Array> {
    this.ensureCompressed("k", batch, kvHead, 0, end)
    return this.tokensOf("k", batch, kvHead).slice(0, end) as Float32Array[]
  }

  private compressed(tensor: "k" | "v", batch: number, kvHead: number, index: number): Float32Array {
    this.ensureCompressed(tensor, batch, kvHead, index, index + 1)
    return this.tokensOf(tensor, batch, kvHead)[index]!
  }

  private tokensOf(tensor: "k" | "v", batch: number, kvHead: number): Array<Float32Array | undefined> {
    const key = `${tensor}:${batch}:${kvHead}`
    let tokens = this.cache.get(key)
    if (!tokens) {
      tokens = []
      this.cache.set(key, tokens)
    }
    return tokens
  }

  /**
   * Computes the missing compressed tokens of [first, end) in one sweep over
   * the raw rows, keeping the last l rows in a ring: token i is complete once
   * row i·d + l − 1 arrives. The position encoding adds the same weighted sum
   * to every token, so it is one precomputed bias.
   */
  private ensureCompressed(tensor: "k" | "v", batch: number, kvHead: number, first: number, end: number): void {
    const tokens = this.tokensOf(tensor, batch, kvHead)
    let missing = first
    while (missing < end && tokens[missing] !== undefined) missing++
    if (missing >= end) return

    const { compressBlock: l, compressStride: d } = this.options.geometry
    const dims = tensor === "k" ? this.options.headDim : this.options.headDimV
    const bias = tensor === "k" ? this.keyBias : this.valueBias
    const bits = mantissaBits[this.options.dtype]
    const ring = new Float32Array(l * dims)
    for (let position = missing * d; position < (end - 1) * d + l; position++) {
      this.rawCompressionRow(tensor, batch, kvHead, position, ring, (position % l) * dims)
      const index = (position - l + 1) / d
      if (!Number.isInteger(index) || index < missing) continue
      tokens[index] = poolBlock(ring, this.poolWeights, bias, (index * d) % l, dims, bits)
    }
  }

  /**
   * Writes one raw row of the compression branch's K or V, uniform in [-1, 1).
   * These rows only feed φ (no kernel loads them), so a fast seeded generator
   * replaces the per-element hash used for tiles. The perturbation applies here too.
   */
  private rawCompressionRow(tensor: "k" | "v", batch: number, kvHead: number, position: number, out: Float32Array, offset: number): void {
    const dims = tensor === "k" ? this.options.headDim : this.options.headDimV
    const seed = this.seedAt(branchSeed(this.options.seed, "compressed"), position)
    let state = rowSeed(seed, tensor === "k" ? TensorId.key : TensorId.value, batch, kvHead, position)
    for (let c = 0; c < dims; c++) {
      // mulberry32
      state = (state + 0x6d2b79f5) >>> 0
      let t = Math.imul(state ^ (state >>> 15), state | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      out[offset + c] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1
    }
  }

  private fill(row: Float32Array, branch: AttendedBranch, tensor: TensorId, batch: number, kvHead: number, position: number): void {
    const seed = this.seedAt(branchSeed(this.options.seed, branch), position)
    fillRow(row, 0, row.length, { seed, tensor, batch, head: kvHead, position }, this.options.dtype)
  }

  /** Computes the pooled intra-block position encoding: l seeded rows of `dims` values in [-0.1, 0.1), weighted by the pooling weights. */
  private encodingBias(salt: number, dims: number): Float64Array {
    const { compressBlock } = this.options.geometry
    const row = new Float32Array(dims)
    const bias = new Float64Array(dims)
    for (let j = 0; j < compressBlock; j++) {
      fillRow(row, 0, dims, { seed: salted(this.options.seed, salt), tensor: TensorId.state, batch: 0, head: 0, position: j }, "fp32")
      for (let c = 0; c < dims; c++) bias[c] = bias[c]! + this.poolWeights[j]! * 0.1 * row[c]!
    }
    return bias
  }

  private seedAt(seed: number, position: number): number {
    const perturbation = this.options.perturbation
    return perturbation && position > perturbation.after ? (seed ^ perturbation.seed) >>> 0 : seed
  }
}

/**
 * bias + Σ_j weights[j] · (raw row j of the block), rounded to `bits`
 * mantissa bits. Row j of the block sits in ring slot (first + j) mod l.
 */
function poolBlock(ring: Float32Array, weights: Float64Array, bias: Float64Array, first: number, dims: number, bits: number): Float32Array {
  const l = weights.length
  const sum = Float64Array.from(bias)
  for (let j = 0; j < l; j++) {
    const weight = weights[j]!
    const offset = ((first + j) % l) * dims
    for (let c = 0; c < dims; c++) sum[c] = sum[c]! + weight * ring[offset + c]!
  }
  const out = new Float32Array(dims)
  for (let c = 0; c < dims; c++) out[c] = roundMantissa(sum[c]!, bits)
  return out
}

/** Mixes a raw row's coordinates into a 32-bit seed (multiply-rotate steps, as in MurmurHash3's block mixing). */
function rowSeed(seed: number, tensor: number, batch: number, kvHead: number, position: number): number {
  let h = seed >>> 0
  for (const value of [tensor, batch, kvHead, position]) {
    let k = Math.imul(value + 1, 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) >>> 0
  }
  return h
}

const branchIndex = (branch: NsaBranch): number => nsaBranches.indexOf(branch)

/** Returns a branch's data seed: the window branch keeps the base seed (see NsaData), the others get their own. */
export function branchSeed(seed: number, branch: NsaBranch): number {
  return branch === "window" ? seed : salted(seed, 1 + branchIndex(branch))
}

function salted(seed: number, salt: number): number {
  return (seed + Math.imul(salt, 0x9e3779b1)) >>> 0
}
