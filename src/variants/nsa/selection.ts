import { blocksExisting, forcedBlocks, selectedBlockCount, visibleCompressed, type NsaGeometry } from "./geometry.js"

/**
 * Scores each selection block that exists at `position` from the
 * compression branch's attention probabilities already summed over the
 * group's query heads (`tokenScores[i]` for compressed token i). A compressed
 * token adds its whole probability to every selection block its key range
 * [i·d, i·d + l − 1] overlaps. NSA maps compressed tokens onto selection
 * blocks by this overlap; the weight of 1 per overlapping token is this
 * model's choice.
 */
export function blockScores(g: NsaGeometry, position: number, tokenScores: ArrayLike<number>): Float64Array {
  const blocks = blocksExisting(g, position)
  const scores = new Float64Array(blocks)
  const tokens = Math.min(tokenScores.length, visibleCompressed(g, position))
  for (let i = 0; i < tokens; i++) {
    const start = i * g.compressStride
    const first = Math.floor(start / g.selectBlock)
    const last = Math.min(blocks - 1, Math.floor((start + g.compressBlock - 1) / g.selectBlock))
    for (let b = first; b <= last; b++) scores[b] = scores[b]! + tokenScores[i]!
  }
  return scores
}

/**
 * Selects the blocks a query at `position` attends, ascending: the always-kept
 * initial and local blocks, then the highest-scoring others until n blocks
 * (or every block that exists) are chosen. Ties go to the earlier block, so
 * the choice is deterministic. At short positions no compressed token is
 * visible yet, so all scores are 0 and the earliest blocks fill the set.
 */
export function selectBlocks(g: NsaGeometry, position: number, scores: ArrayLike<number>): number[] {
  const count = selectedBlockCount(g, position)
  const chosen = new Set(forcedBlocks(g, position))
  const candidates: number[] = []
  for (let b = 0; b < blocksExisting(g, position); b++) if (!chosen.has(b)) candidates.push(b)
  candidates.sort((a, b) => scores[b]! - scores[a]! || a - b)
  for (const block of candidates) {
    if (chosen.size >= count) break
    chosen.add(block)
  }
  return [...chosen].sort((a, b) => a - b)
}
