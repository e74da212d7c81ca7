import { fillRow, TensorId, type RowKey } from "../../exec/data.js"
import type { Dtype } from "../../hardware/profile-schema.js"

/**
 * MoBA gating on the host: mean-pooled block keys, gate scores and top-k.
 * Each query head scores every past block by q · mean(K_block). The current
 * block is always selected and counts towards top-k, and future blocks are
 * never candidates. The scores need no 1/√d scale because only their order matters.
 */

/** Source of Q, K and V rows; the seeded default, or a perturbed copy in tests. */
export interface TensorData {
  readonly dtype: Dtype
  /** Identifies the data for caching block means; undefined disables the cache. */
  readonly cacheKey?: string | undefined
  fill(out: Float32Array, offset: number, dims: number, key: RowKey): void
}

/** Returns the deterministic tensors every executed tile uses (values rounded to the dtype). */
export function seededData(dtype: Dtype): TensorData {
  return { dtype, cacheKey: `seeded-${dtype}`, fill: (out, offset, dims, key) => fillRow(out, offset, dims, key, dtype) }
}

/**
 * Ranks past blocks by gate score and returns the selected blocks in ascending
 * order, the current block last. Ties: among equal scores the earlier block
 * (lower index) ranks first, so exactly min(k − 1, current) history blocks are
 * taken for any scores. `scores[j]` is block j's score; entries at or after
 * `current` are ignored.
 */
export function selectBlocks(scores: ArrayLike<number>, current: number, topK: number): number[] {
  const slots = Math.min(topK - 1, current)
  const ranked = Array.from({ length: current }, (_, block) => block).sort((a, b) => scores[b]! - scores[a]! || a - b)
  const history = ranked.slice(0, slots).sort((a, b) => a - b)
  return [...history, current]
}

const meanCache = new Map<string, Float64Array>()
/** Cached block means kept at most; the cache is cleared when it grows past this. */
const meanCacheLimit = 8192

/**
 * Mean of the keys of one complete block of one KV head, in float64 over the
 * dtype-rounded keys. Cached per data source, since scenario rows on different
 * devices read the same seeded tensors.
 */
export function blockMeanKey(data: TensorData, at: { seed: number; batch: number; kvHead: number }, block: number, blockSize: number, headDim: number): Float64Array {
  const cacheKey = data.cacheKey === undefined ? undefined : `${data.cacheKey}|${at.seed}|${at.batch}|${at.kvHead}|${blockSize}|${block}|${headDim}`
  const cached = cacheKey === undefined ? undefined : meanCache.get(cacheKey)
  if (cached) return cached

  const row = new Float32Array(headDim)
  const sum = new Float64Array(headDim)
  for (let position = block * blockSize; position < (block + 1) * blockSize; position++) {
    data.fill(row, 0, headDim, { seed: at.seed, tensor: TensorId.key, batch: at.batch, head: at.kvHead, position })
    for (let c = 0; c < headDim; c++) sum[c] = sum[c]! + row[c]!
  }
  for (let c = 0; c < headDim; c++) sum[c] = sum[c]! / blockSize

  if (cacheKey !== undefined) {
    if (meanCache.size >= meanCacheLimit) meanCache.clear()
    meanCache.set(cacheKey, sum)
  }
  return sum
}

/** Gate scores of one query against the first `blocks` block means, in float64. */
export function gateScores(query: ArrayLike<number>, means: ReadonlyArray<Float64Array>, headDim: number): Float64Array {
  const scores = new Float64Array(means.length)
  means.forEach((mean, block) => {
    let dot = 0
    for (let c = 0; c < headDim; c++) dot += query[c]! * mean[c]!
    scores[block] = dot
  })
  return scores
}

/**
 * Union statistics of one query position across the heads of a GQA group, for
 * measuring head overlap: `excess` = union − h, `maxExcess` = min(c, G·h) − h.
 */
export function unionExcess(selections: ReadonlyArray<ReadonlyArray<number>>, current: number, topK: number): { excess: number; maxExcess: number } {
  const slots = Math.min(topK - 1, current)
  const union = new Set<number>()
  for (const blocks of selections) for (const block of blocks) if (block !== current) union.add(block)
  return { excess: union.size - slots, maxExcess: Math.min(current, selections.length * slots) - slots }
}
