import { visibleKeys, visiblePairsInTile } from "../../workload/mask.js"
import { keyRowElements, type AttentionShape } from "../../workload/shape.js"

/**
 * The keys a dense schedule's items attend, and which of them each query sees.
 * The default is the sequence's own keys under the shape's causal or
 * sliding-window mask. NSA's compression branch attends compressed tokens
 * instead. The schedule's closed forms assume that every query sees one
 * contiguous range and that both ends of the range never decrease from one
 * query to the next.
 */
export interface KeySpace {
  /** Number of keys: key tiles and split ranges cover [0, keys). */
  readonly keys: number
  /** Elements loaded per key: dk + dv, or dk when V is read from K's rows. */
  readonly rowElements: number
  /** Keys that query `query` sees, as [lo, hi); empty when hi <= lo. */
  visible(query: number): { lo: number; hi: number }
  /** Visible (query, key) pairs with the query in [queryStart, queryEnd) and the key in [keyStart, keyEnd). */
  pairs(queryStart: number, queryEnd: number, keyStart: number, keyEnd: number): number
  /** Queries that see at least one key of [keyStart, keyEnd), as [lo, hi). */
  queriesSeeing(keyStart: number, keyEnd: number): { lo: number; hi: number }
}

/** Returns the sequence's own keys as a key space, under the shape's mask (bottom-right causal alignment, optional sliding window). */
export function tokenKeySpace(shape: AttentionShape): KeySpace {
  return {
    keys: shape.seqLenKV,
    rowElements: keyRowElements(shape),
    visible: (query) => visibleKeys(shape, query),
    pairs: (queryStart, queryEnd, keyStart, keyEnd) => visiblePairsInTile(shape, queryStart, queryEnd, keyStart, keyEnd),
    queriesSeeing: (keyStart, keyEnd) => queriesSeeingKeys(shape, keyStart, keyEnd)
  }
}

function queriesSeeingKeys(shape: AttentionShape, keyStart: number, keyEnd: number): { lo: number; hi: number } {
  if (!shape.causal) return { lo: 0, hi: shape.seqLenQ }
  const offset = shape.seqLenKV - shape.seqLenQ
  // Query i sits at key position i + offset and sees keys (position − window, position].
  const lo = Math.max(0, keyStart - offset)
  const hi = shape.window === undefined ? shape.seqLenQ : Math.min(shape.seqLenQ, keyEnd - 1 + shape.window - offset)
  return { lo, hi: Math.max(lo, hi) }
}
