/**
 * How many keys each NSA branch attends at a query position, in closed form.
 * Positions are 0-indexed key positions: the query at position p is the
 * (p + 1)-th token and sees keys 0..p. NSA's count floor((t − l)/d) + 1
 * takes t 1-indexed, so its t is p + 1 here.
 */
export interface NsaGeometry {
  /** Compression block length l. */
  readonly compressBlock: number
  /** Compression stride d. */
  readonly compressStride: number
  /** Selection block length l'. */
  readonly selectBlock: number
  /** Selected blocks n per query, the always-kept ones included. */
  readonly selectCount: number
  readonly initialBlocks: number
  /** Blocks ending at the query's own block that are always kept (at least 1). */
  readonly localBlocks: number
  /** Sliding window w, counting the query itself. */
  readonly window: number
}

/**
 * Compressed tokens visible at position p. Token i summarizes keys
 * [i·d, i·d + l − 1] and becomes visible once that whole block lies at or
 * before p, so the count is floor((p + 1 − l)/d) + 1, and 0 while p < l − 1.
 */
export function visibleCompressed(g: NsaGeometry, position: number): number {
  const covered = position + 1 - g.compressBlock
  return covered < 0 ? 0 : Math.floor(covered / g.compressStride) + 1
}

/** Compressed tokens a sequence of `length` tokens produces. */
export const compressedTokens = (g: NsaGeometry, length: number): number => (length <= 0 ? 0 : visibleCompressed(g, length - 1))

/** First key position of compressed token `index` (its block is [start, start + l)). */
export const compressedStart = (g: NsaGeometry, index: number): number => index * g.compressStride

/** The first position that sees compressed token `index`. */
export const firstPositionSeeing = (g: NsaGeometry, index: number): number => index * g.compressStride + g.compressBlock - 1

/**
 * Σ visibleCompressed(p) over p in [0, x). With u = p + 1 − l the terms are
 * floor(u/d) + 1 for u in [0, U), U = x − l + 1; writing U = q·d + r, the sum
 * of floor(u/d) is d·q(q − 1)/2 + q·r.
 */
export function compressedPrefixSum(g: NsaGeometry, x: number): number {
  const terms = x - g.compressBlock + 1
  if (terms <= 0) return 0
  const d = g.compressStride
  const q = Math.floor(terms / d)
  const r = terms - q * d
  return terms + (d * q * (q - 1)) / 2 + q * r
}

/** Σ min(visibleCompressed(p), cap) over p in [first, end), in closed form. */
export function compressedPairsCapped(g: NsaGeometry, first: number, end: number, cap: number): number {
  if (end <= first || cap <= 0) return 0
  const saturated = Math.min(end, Math.max(first, firstPositionSeeing(g, cap - 1)))
  return compressedPrefixSum(g, saturated) - compressedPrefixSum(g, first) + (end - saturated) * cap
}

/**
 * Pairs (position, compressed token) with position in [first, end) and token
 * in [keyStart, keyEnd) that the visibility rule allows.
 */
export function compressedPairsInRange(g: NsaGeometry, first: number, end: number, keyStart: number, keyEnd: number): number {
  if (keyEnd <= keyStart) return 0
  return compressedPairsCapped(g, first, end, keyEnd) - compressedPairsCapped(g, first, end, keyStart)
}

/** Selection blocks that exist at position p: those starting at or before it. */
export const blocksExisting = (g: NsaGeometry, position: number): number => Math.floor(position / g.selectBlock) + 1

/** Blocks selected at position p: n, clamped to the blocks that exist. */
export const selectedBlockCount = (g: NsaGeometry, position: number): number => Math.min(g.selectCount, blocksExisting(g, position))

/** The block holding position p, which is always selected and causal inside. */
export const currentBlock = (g: NsaGeometry, position: number): number => Math.floor(position / g.selectBlock)

/** Always-kept blocks at position p, ascending: the initial blocks and the local blocks ending at the current block. */
export function forcedBlocks(g: NsaGeometry, position: number): number[] {
  const current = currentBlock(g, position)
  const blocks = new Set<number>()
  for (let b = 0; b < Math.min(g.initialBlocks, current + 1); b++) blocks.add(b)
  for (let b = Math.max(0, current - g.localBlocks + 1); b <= current; b++) blocks.add(b)
  return [...blocks].sort((a, b) => a - b)
}

/** Number of always-kept blocks at position p, in closed form (the size of forcedBlocks). */
export function forcedBlockCount(g: NsaGeometry, position: number): number {
  return forcedUnion(g, currentBlock(g, position), currentBlock(g, position))
}

/**
 * Always-kept blocks over positions whose current blocks run from `firstCurrent`
 * to `lastCurrent`: the initial blocks united with the local range
 * [firstCurrent − localBlocks + 1, lastCurrent].
 */
export function forcedUnion(g: NsaGeometry, firstCurrent: number, lastCurrent: number): number {
  const initial = Math.min(g.initialBlocks, lastCurrent + 1)
  const localStart = Math.max(0, firstCurrent - g.localBlocks + 1)
  const local = lastCurrent - localStart + 1
  return initial + local - Math.max(0, initial - localStart)
}

/**
 * Keys the selection branch attends at position p: every selected block is
 * whole except the current one, which is seen up to p (the current block is
 * always selected, and all others lie before it).
 */
export const selectedKeys = (g: NsaGeometry, position: number): number =>
  (selectedBlockCount(g, position) - 1) * g.selectBlock + (position % g.selectBlock) + 1

export const windowKeys = (g: NsaGeometry, position: number): number => Math.min(g.window, position + 1)

export interface BranchKeys {
  readonly compressed: number
  readonly selected: number
  readonly window: number
  readonly total: number
}

/** Keys attended at position p per KV-head group, per branch (each branch has its own K and V). */
export function keysAt(g: NsaGeometry, position: number): BranchKeys {
  const compressed = visibleCompressed(g, position)
  const selected = selectedKeys(g, position)
  const window = windowKeys(g, position)
  return { compressed, selected, window, total: compressed + selected + window }
}

/**
 * Σ over positions in [first, end) of the keys each branch attends, for
 * average sparsity and useful FLOPs. The selection sum runs position by
 * position only while fewer than n blocks exist and is closed form after.
 */
export function keysOverPositions(g: NsaGeometry, first: number, end: number): BranchKeys {
  if (end <= first) return { compressed: 0, selected: 0, window: 0, total: 0 }
  const compressed = compressedPrefixSum(g, end) - compressedPrefixSum(g, first)

  // Σ min(w, p + 1): p + 1 up to w − 1, then w.
  const rampEnd = Math.min(end, Math.max(first, g.window - 1))
  const window = ((first + 1 + rampEnd) * (rampEnd - first)) / 2 + (end - rampEnd) * g.window

  // Once n blocks exist the count is (n − 1)·l' + (p mod l') + 1, so the sum of p mod l' is all that varies.
  const saturated = Math.min(end, Math.max(first, (g.selectCount - 1) * g.selectBlock))
  let selected = 0
  for (let p = first; p < saturated; p++) selected += selectedKeys(g, p)
  const count = end - saturated
  selected += count * ((g.selectCount - 1) * g.selectBlock + 1) + sumOfResidues(saturated, end, g.selectBlock)
  return { compressed, selected, window, total: compressed + selected + window }
}

/** Σ over positions in [first, end) of the blocks each selects (n once n blocks exist). */
export function selectedBlocksOverPositions(g: NsaGeometry, first: number, end: number): number {
  if (end <= first) return 0
  const saturated = Math.min(end, Math.max(first, (g.selectCount - 1) * g.selectBlock))
  let total = 0
  for (let p = first; p < saturated; p++) total += selectedBlockCount(g, p)
  return total + (end - saturated) * g.selectCount
}

/** Σ (p mod m) over p in [first, end). */
function sumOfResidues(first: number, end: number, m: number): number {
  const upTo = (x: number): number => {
    const full = Math.floor(x / m)
    const rest = x - full * m
    return (full * m * (m - 1)) / 2 + (rest * (rest - 1)) / 2
  }
  return end <= first ? 0 : upTo(end) - upTo(first)
}
