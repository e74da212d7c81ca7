import type { AttentionShape } from "../../workload/shape.js"
import type { MobaConfig, OverlapModel } from "./options.js"

/**
 * Block arithmetic of MoBA. Keys are split into blocks of b tokens, and block c
 * contains keys [c·b, min((c + 1)·b, seqLenKV)). Queries are aligned
 * bottom-right: query i is at key position i + seqLenKV − seqLenQ. A query at
 * position p has current block c = floor(p / b) and attends its keys [c·b, p]
 * under the causal mask. It chooses its other top-k − 1 blocks among the c
 * blocks before it, and with c ≤ k − 1 past blocks it takes all of them.
 */

/** Key position of query `i`. */
export const queryPosition = (shape: AttentionShape, i: number): number => i + shape.seqLenKV - shape.seqLenQ

export const blockOf = (position: number, blockSize: number): number => Math.floor(position / blockSize)

/** History blocks a query in block `current` attends: top-k − 1, clamped to the blocks before it. */
export const historySlots = (current: number, topK: number): number => Math.min(topK - 1, current)

/** Keys a query at `position` attends: its current block up to itself plus its history blocks (always whole). */
export function keysAttended(position: number, config: Pick<MobaConfig, "blockSize" | "topK">): number {
  const current = blockOf(position, config.blockSize)
  return position - current * config.blockSize + 1 + historySlots(current, config.topK) * config.blockSize
}

/** Queries of one (batch, head) whose current block is `block`: the positions [queryStart, queryEnd). */
export interface BlockQueries {
  readonly block: number
  readonly queryStart: number
  readonly queryEnd: number
}

/** Blocks that hold at least one query, in order, with the query positions in each. */
export function queryBlocks(shape: AttentionShape, blockSize: number): ReadonlyArray<BlockQueries> {
  const first = queryPosition(shape, 0)
  const last = shape.seqLenKV - 1
  const blocks: BlockQueries[] = []
  for (let block = blockOf(first, blockSize); block <= blockOf(last, blockSize); block++) {
    blocks.push({ block, queryStart: Math.max(first, block * blockSize), queryEnd: Math.min(last + 1, (block + 1) * blockSize) })
  }
  return blocks
}

/**
 * Current-block attention as causal dense attention: each block with queries is
 * one chunk of qLen queries against the kLen keys from the block start to its
 * last query, aligned bottom-right. Chunks of equal size form one group.
 */
export interface CurrentBlockGroup {
  readonly seqLenQ: number
  readonly seqLenKV: number
  readonly blocks: ReadonlyArray<number>
}

export function currentBlockGroups(shape: AttentionShape, blockSize: number): ReadonlyArray<CurrentBlockGroup> {
  const groups = new Map<string, { seqLenQ: number; seqLenKV: number; blocks: number[] }>()
  for (const { block, queryStart, queryEnd } of queryBlocks(shape, blockSize)) {
    const seqLenQ = queryEnd - queryStart
    const seqLenKV = queryEnd - block * blockSize
    const key = `${seqLenQ}:${seqLenKV}`
    const group = groups.get(key) ?? { seqLenQ, seqLenKV, blocks: [] }
    group.blocks.push(block)
    groups.set(key, group)
  }
  return [...groups.values()]
}

/** History (query, block) selections per (batch, head) and how they spread over the blocks. */
export interface HistoryDemand {
  /** Selections of block j by the queries of one (batch, head), rounded so they add up to `total`. */
  readonly readers: Int32Array
  /** Σ over queries of min(k − 1, c): exact, whatever the gating picks. */
  readonly total: number
  /** Largest history-slot count of any query. */
  readonly maxSlots: number
  /** Whether some query chooses among more past blocks than it can take (the gate matters). */
  readonly hasChoice: boolean
}

/**
 * Expected readers of each block, per (batch, head). A query in block c takes
 * min(k − 1, c) of its c past blocks; which ones depends on the data, so the
 * model assumes each past block is equally likely: block j is picked by a query
 * in block c > j with probability min(1, (k − 1)/c). Suffix sums keep this
 * O(blocks). The total is exact; only its spread over blocks is assumed.
 */
export function historyDemand(shape: AttentionShape, config: Pick<MobaConfig, "blockSize" | "topK" | "blocks">): HistoryDemand {
  const { blockSize, topK, blocks } = config
  const weight = new Float64Array(blocks)
  let total = 0
  let maxSlots = 0
  let hasChoice = false
  for (const { block, queryStart, queryEnd } of queryBlocks(shape, blockSize)) {
    const queries = queryEnd - queryStart
    const slots = historySlots(block, topK)
    total += queries * slots
    maxSlots = Math.max(maxSlots, slots)
    if (slots > 0 && block > slots) hasChoice = true
    if (block > 0) weight[block] = (queries * slots) / block
  }

  // Block j collects weight[c] from every later block c: a suffix sum over c > j.
  const expected = new Float64Array(blocks)
  let suffix = 0
  for (let j = blocks - 1; j >= 0; j--) {
    expected[j] = suffix
    suffix += weight[j]!
  }
  return { readers: roundPreservingTotal(expected, total), total, maxSlots, hasChoice }
}

/**
 * Round non-negative values to integers that add up to `total`, by rounding
 * the running sum: entry i gets round(S_i) − round(S_{i−1}), so every entry
 * moves by less than one and no sort is needed. `total` must equal the sum of
 * the values up to floating-point error.
 */
export function roundPreservingTotal(values: Float64Array, total: number): Int32Array {
  const rounded = new Int32Array(values.length)
  let sum = 0
  let previous = 0
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!
    const next = i === values.length - 1 ? total : Math.min(total, Math.round(sum))
    rounded[i] = Math.max(0, next - previous)
    previous += rounded[i]!
  }
  return rounded
}

/**
 * Distinct history blocks the G heads of a group select for one query position
 * with c past blocks and h history slots per head. With overlap o:
 * U = h + (1 − o)·(min(c, G·h) − h), from h (all heads agree) to the most that
 * fit. Independent heads, each taking h of c blocks uniformly at random, leave a
 * block unpicked by a head with probability 1 − h/c, so U = c·(1 − (1 − h/c)^G).
 */
export function historyUnion(current: number, slots: number, group: number, overlap: OverlapModel): number {
  if (slots === 0) return 0
  if (overlap.kind === "independent") return current * (1 - Math.pow(1 - slots / current, group))
  return slots + (1 - overlap.value) * (Math.min(current, group * slots) - slots)
}

/** Inverts historyUnion: the overlap fraction o that gives union U, or 1 when no spread is possible. */
export function overlapOfUnion(current: number, slots: number, group: number, union: number): number {
  const spread = Math.min(current, group * slots) - slots
  return spread > 0 ? 1 - (union - slots) / spread : 1
}
