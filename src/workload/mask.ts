/**
 * Which keys each query sees. Queries and keys are indexed from 0 within one
 * sequence. With a causal mask the alignment is bottom-right: the last query
 * sits at the last key, so query i is at key position i + (seqLenKV − seqLenQ).
 * That covers prefill (equal lengths), decode (one query at the end of the
 * cache) and chunked prefill (a chunk of queries after a cached prefix).
 */
export interface MaskSpec {
  readonly seqLenQ: number
  readonly seqLenKV: number
  readonly causal: boolean
  /** Sliding window in keys, counting the query's own position; undefined for none. */
  readonly window?: number | undefined
}

/** Visible keys of query `i` as a half-open range [lo, hi); empty when hi <= lo. */
export function visibleKeys(mask: MaskSpec, i: number): { lo: number; hi: number } {
  if (!mask.causal) return { lo: 0, hi: mask.seqLenKV }
  const position = i + mask.seqLenKV - mask.seqLenQ
  const hi = Math.min(mask.seqLenKV, Math.max(0, position + 1))
  const lo = mask.window === undefined ? 0 : Math.min(hi, Math.max(0, position - mask.window + 1))
  return { lo, hi }
}

/** Visible keys of every query in [queryStart, queryEnd) that fall in [keyStart, keyEnd). */
export function visiblePairsInTile(mask: MaskSpec, queryStart: number, queryEnd: number, keyStart: number, keyEnd: number): number {
  if (!mask.causal) return Math.max(0, queryEnd - queryStart) * Math.max(0, keyEnd - keyStart)
  const offset = mask.seqLenKV - mask.seqLenQ
  const rows = queryEnd - queryStart
  const first = queryStart + offset
  // hi(i) = clamp(position + 1, keyStart, keyEnd); lo(i) = clamp(position − w + 1, keyStart, keyEnd)
  const his = sumClamped(rows, first + 1, keyStart, keyEnd)
  const los = mask.window === undefined ? rows * keyStart : sumClamped(rows, first - mask.window + 1, keyStart, keyEnd)
  return his - los
}

/** Number of (query, key) pairs the mask allows over the whole sequence. */
export function visiblePairs(mask: MaskSpec): number {
  return visiblePairsInTile(mask, 0, mask.seqLenQ, 0, mask.seqLenKV)
}

/** Sum over i in [0, n) of clamp(start + i, low, high), in closed form. */
export function sumClamped(n: number, start: number, low: number, high: number): number {
  if (n <= 0) return 0
  return n * low + sumPositivePart(n, start - low) - sumPositivePart(n, start - high)
}

/** Sum over i in [0, n) of max(0, c + i). */
function sumPositivePart(n: number, c: number): number {
  const firstPositive = Math.max(0, 1 - c)
  if (firstPositive >= n) return 0
  const terms = n - firstPositive
  const firstValue = c + firstPositive
  return terms * firstValue + (terms * (terms - 1)) / 2
}
