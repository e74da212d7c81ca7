import type { WorkCounts } from "../../cost/counts.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { generations } from "../dense/generations.js"
import { bytesPerElement, packedHeads, type TileStep } from "../dense/schedule.js"
import type { DenseTiling } from "../dense/tiling.js"
import type { ItemClass, Schedule } from "../schedule.js"
import { compressedPairsInRange, compressedTokens, firstPositionSeeing, visibleCompressed, type NsaGeometry } from "./geometry.js"
import { forwardWorkCounts, keyStationaryBackwardCounts } from "./tile-counts.js"

export type CompressedKernelName = "forward" | "combine" | "backward"

/**
 * One CTA of the compressed-token attention, in the key space of compressed
 * tokens. Forward items own query rows [queryStart, queryEnd) of `heads` and
 * compressed tokens [keyStart, keyEnd) (all of them unless split-KV); packed
 * items put the heads of a GQA group in the MMA rows (row r is head
 * heads[floor(r / q)], query queryStart + r mod q). Backward items own one
 * tile of compressed tokens of one head and stream the query tiles that see it.
 */
export interface CompressedWorkItem {
  readonly index: number
  readonly kernel: CompressedKernelName
  readonly batch: number
  readonly kvHead: number
  readonly heads: ReadonlyArray<number>
  readonly queryStart: number
  readonly queryEnd: number
  readonly keyStart: number
  readonly keyEnd: number
  readonly split: number
  /** MMA rows executed: real rows padded to the tile height. */
  readonly rows: number
}

export interface CompressedScheduleInput {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
}

export const compressedQueryRows = (item: CompressedWorkItem): number => (item.queryEnd - item.queryStart) * item.heads.length

/**
 * The FlashAttention-style schedule of the compression branch: a dense
 * schedule whose mask is the compressed visibility rule (query i at position
 * p = i + seqLenKV − seqLenQ sees compressed tokens [0, visibleCompressed(p)))
 * instead of the token-level causal mask. Item order, split-KV and GQA packing
 * follow the dense schedule.
 */
export class CompressedSchedule implements Schedule<CompressedWorkItem> {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling: DenseTiling | undefined
  /** Compressed tokens the sequence produces: the key space. */
  readonly tokens: number
  /** Position of query 0 (bottom-right causal alignment). */
  readonly offset: number
  readonly group: number
  readonly headsPerItem: number
  readonly queryTileRows: number
  readonly queryTiles: number
  readonly itemsPerBatch: number
  readonly forwardItems: number
  readonly combineItems: number
  readonly backwardItems: number
  readonly keyTilesBackward: number
  readonly size: number
  readonly classes: ReadonlyArray<ItemClass<CompressedWorkItem>>

  constructor(input: CompressedScheduleInput) {
    const { shape, tiling } = input
    this.shape = shape
    this.geometry = input.geometry
    this.phase = input.phase
    this.tiling = tiling
    this.backwardTiling = input.backwardTiling
    this.tokens = compressedTokens(input.geometry, shape.seqLenKV)
    this.offset = shape.seqLenKV - shape.seqLenQ
    this.group = shape.heads / shape.kvHeads

    this.headsPerItem = tiling.packGqa ? packedHeads(this.group, tiling.blockM) : 1
    this.queryTileRows = tiling.packGqa ? Math.max(1, Math.floor(tiling.blockM / this.headsPerItem)) : tiling.blockM
    this.queryTiles = Math.ceil(shape.seqLenQ / this.queryTileRows)
    const itemHeads = shape.heads / this.headsPerItem
    this.itemsPerBatch = itemHeads * this.queryTiles * tiling.splits
    this.forwardItems = shape.batch * this.itemsPerBatch
    this.combineItems = tiling.splits > 1 ? shape.batch * itemHeads * this.queryTiles : 0

    const backward = this.phase === "train" ? this.backwardTiling : undefined
    this.keyTilesBackward = backward ? Math.ceil(this.tokens / backward.blockN) : 0
    this.backwardItems = backward ? shape.batch * shape.heads * this.keyTilesBackward : 0
    this.size = this.forwardItems + this.combineItems + this.backwardItems
    this.classes = this.buildClasses()
  }

  /** Compressed tokens visible to query `queryIndex`. */
  visible(queryIndex: number): number {
    return visibleCompressed(this.geometry, queryIndex + this.offset)
  }

  item(index: number): CompressedWorkItem {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`work item ${index} is outside the schedule's ${this.size} items`)
    }
    if (index < this.forwardItems) return this.forwardItem(index)
    if (index < this.forwardItems + this.combineItems) return this.combineItem(index)
    return this.backwardItem(index)
  }

  private forwardItem(index: number): CompressedWorkItem {
    const { shape, tiling } = this
    // Index order, fastest first: split, query tile, head (or group), batch.
    const split = index % tiling.splits
    const queryTile = Math.floor(index / tiling.splits) % this.queryTiles
    const headSlot = Math.floor(index / (tiling.splits * this.queryTiles)) % (shape.heads / this.headsPerItem)
    const batch = Math.floor(index / this.itemsPerBatch)
    const heads = this.headsOf(headSlot)
    const queryStart = queryTile * this.queryTileRows
    const queryEnd = Math.min(shape.seqLenQ, queryStart + this.queryTileRows)
    const { keyStart, keyEnd } = this.splitRange(split)
    const realRows = (queryEnd - queryStart) * heads.length
    const mmaRows = generations[tiling.kernel].mmaRows
    return {
      index,
      kernel: "forward",
      batch,
      kvHead: Math.floor(heads[0]! / this.group),
      heads,
      queryStart,
      queryEnd,
      keyStart,
      keyEnd,
      split,
      rows: tiling.packGqa ? Math.ceil(realRows / mmaRows) * mmaRows : tiling.blockM
    }
  }

  private combineItem(index: number): CompressedWorkItem {
    const base = this.forwardItem((index - this.forwardItems) * this.tiling.splits)
    return { ...base, index, kernel: "combine", split: -1, keyStart: 0, keyEnd: this.tokens }
  }

  private backwardItem(index: number): CompressedWorkItem {
    const { shape } = this
    const tiling = this.backwardTiling!
    const local = index - this.forwardItems - this.combineItems
    const keyTile = local % this.keyTilesBackward
    const head = Math.floor(local / this.keyTilesBackward) % shape.heads
    const batch = Math.floor(local / (this.keyTilesBackward * shape.heads))
    const keyStart = keyTile * tiling.blockN
    return {
      index,
      kernel: "backward",
      batch,
      kvHead: Math.floor(head / this.group),
      heads: [head],
      queryStart: 0,
      queryEnd: shape.seqLenQ,
      keyStart,
      keyEnd: Math.min(this.tokens, keyStart + tiling.blockN),
      split: 0,
      rows: tiling.blockN
    }
  }

  private readonly headLists = new Map<number, ReadonlyArray<number>>()

  /** Returns the query heads of head slot `slot`, shared between items (items are immutable). */
  private headsOf(slot: number): ReadonlyArray<number> {
    let heads = this.headLists.get(slot)
    if (!heads) {
      heads = Array.from({ length: this.headsPerItem }, (_, k) => slot * this.headsPerItem + k)
      this.headLists.set(slot, heads)
    }
    return heads
  }

  /** Compressed tokens of split `split`: whole key tiles, shared out as evenly as possible. */
  splitRange(split: number): { keyStart: number; keyEnd: number } {
    const { blockN, splits } = this.tiling
    const keyTiles = Math.ceil(this.tokens / blockN)
    const first = Math.floor((split * keyTiles) / splits)
    const last = Math.floor(((split + 1) * keyTiles) / splits)
    return { keyStart: Math.min(this.tokens, first * blockN), keyEnd: Math.min(this.tokens, last * blockN) }
  }

  /** Compressed-token tiles a forward item processes, in order; tiles no row sees are skipped. */
  steps(item: CompressedWorkItem): ReadonlyArray<TileStep> {
    if (item.kernel !== "forward") return []
    const { blockN } = this.tiling
    const { lo, hi } = this.forwardKeyRange(item)
    const firstVisible = this.visible(item.queryStart)
    const steps: TileStep[] = []
    for (let start = Math.floor(lo / blockN) * blockN; start < hi; start += blockN) {
      const end = Math.min(start + blockN, this.tokens)
      steps.push({ start, end, partial: end - start < blockN || firstVisible < end })
    }
    return steps
  }

  /** Tiles, tokens loaded and partly masked tiles of a forward item, in closed form (rows see nested prefixes). */
  forwardStepSummary(item: CompressedWorkItem): { steps: number; keys: number; partialSteps: number } {
    const { blockN } = this.tiling
    const { lo, hi } = this.forwardKeyRange(item)
    if (hi <= lo) return { steps: 0, keys: 0, partialSteps: 0 }
    const firstTile = Math.floor(lo / blockN)
    const endTile = Math.ceil(hi / blockN)
    const fullEndTile = Math.min(endTile, Math.floor(Math.min(this.visible(item.queryStart), item.keyEnd) / blockN))
    return {
      steps: endTile - firstTile,
      keys: Math.min(endTile * blockN, this.tokens) - firstTile * blockN,
      partialSteps: endTile - firstTile - Math.max(0, fullEndTile - firstTile)
    }
  }

  private forwardKeyRange(item: CompressedWorkItem): { lo: number; hi: number } {
    return { lo: item.keyStart, hi: Math.min(item.keyEnd, this.visible(item.queryEnd - 1)) }
  }

  /** Visible (query row, compressed token) pairs of a forward item over all its heads. */
  forwardPairs(item: CompressedWorkItem): number {
    const perHead = compressedPairsInRange(this.geometry, item.queryStart + this.offset, item.queryEnd + this.offset, item.keyStart, item.keyEnd)
    return perHead * item.heads.length
  }

  /** Work of one compressed-token tile as the executor counts it (rows × blockN, padding included). */
  stepCounts(item: CompressedWorkItem, step: TileStep): { tensorFlops: number; expOps: number; loadBytes: number } {
    const { shape, tiling } = this
    const scores = item.rows * tiling.blockN
    return {
      tensorFlops: 2 * scores * (shape.headDim + shape.headDimV),
      expOps: scores,
      loadBytes: (step.end - step.start) * (shape.headDim + shape.headDimV) * bytesPerElement(shape)
    }
  }

  counts(item: CompressedWorkItem): WorkCounts {
    if (item.kernel === "combine") return this.combineCounts(item)
    return item.kernel === "forward" ? this.forwardCounts(item) : this.backwardCounts(item)
  }

  private forwardCounts(item: CompressedWorkItem): WorkCounts {
    const { shape, tiling } = this
    const realRows = compressedQueryRows(item)
    const dv = shape.headDimV
    const { steps, keys, partialSteps } = this.forwardStepSummary(item)
    // The log-sum-exp is always written: the selection scores normalize with it.
    const outputBytes = tiling.splits > 1 ? realRows * (dv + 1) * 4 : realRows * (dv * bytesPerElement(shape) + 4)
    return forwardWorkCounts({
      rows: item.rows,
      realRows,
      blockN: tiling.blockN,
      steps,
      partialSteps,
      keys,
      pairs: this.forwardPairs(item),
      headDim: shape.headDim,
      headDimV: dv,
      elementBytes: bytesPerElement(shape),
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, item.rows),
      outputBytes
    })
  }

  /** Combine item: read every split's FP32 partial output and log-sum-exp, write the output and its log-sum-exp. */
  private combineCounts(item: CompressedWorkItem): WorkCounts {
    const { shape, tiling } = this
    const realRows = compressedQueryRows(item)
    return {
      tensorFlops: 0,
      usefulFlops: 0,
      expOps: tiling.splits * realRows,
      vectorFlops: tiling.splits * realRows * (shape.headDimV + 2) * 2,
      bytes: { hbm: 0, l2: tiling.splits * realRows * (shape.headDimV + 1) * 4 + realRows * (shape.headDimV * bytesPerElement(shape) + 4), smem: 0 }
    }
  }

  /** Queries (as a [lo, hi) index range) that see at least one token of a backward item. */
  backwardQueryRange(item: CompressedWorkItem): { lo: number; hi: number } {
    const lo = Math.max(0, firstPositionSeeing(this.geometry, item.keyStart) - this.offset)
    return { lo: Math.min(lo, this.shape.seqLenQ), hi: this.shape.seqLenQ }
  }

  private backwardCounts(item: CompressedWorkItem): WorkCounts {
    const { shape } = this
    const tiling = this.backwardTiling!
    const { lo, hi } = this.backwardQueryRange(item)
    const firstTile = Math.floor(lo / tiling.blockM)
    const endTile = Math.ceil(hi / tiling.blockM)
    const steps = Math.max(0, endTile - firstTile)
    return keyStationaryBackwardCounts({
      keys: item.keyEnd - item.keyStart,
      blockM: tiling.blockM,
      blockN: item.rows,
      steps,
      queryRows: steps > 0 ? Math.min(endTile * tiling.blockM, shape.seqLenQ) - firstTile * tiling.blockM : 0,
      pairs: compressedPairsInRange(this.geometry, lo + this.offset, hi + this.offset, item.keyStart, item.keyEnd),
      headDim: shape.headDim,
      headDimV: shape.headDimV,
      elementBytes: bytesPerElement(shape),
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, item.rows)
    })
  }

  /**
   * Items grouped by identical timing. Forward items whose tile count, masked
   * tiles, tokens loaded and rows agree take the same time, so they form one
   * class even where their visible pairs differ: the class's usefulFlops is
   * the mean over its items, so totals stay exact. Query tiles number up to
   * seqLenQ / (blockM / G), while distinct tile counts number only about
   * tokens / blockN, so this keeps pricing fast at long sequences.
   */
  private buildClasses(): ReadonlyArray<ItemClass<CompressedWorkItem>> {
    const classes: Array<ItemClass<CompressedWorkItem>> = []
    const itemGroups = this.shape.batch * (this.shape.heads / this.headsPerItem)
    const forward = new Map<string, { representative: CompressedWorkItem; items: number; pairs: number }>()
    for (let local = 0; local < this.tiling.splits * this.queryTiles; local++) {
      const item = this.forwardItem(local)
      const summary = this.forwardStepSummary(item)
      const key = `${item.split}:${summary.steps}:${summary.partialSteps}:${summary.keys}:${item.rows}:${compressedQueryRows(item)}`
      const entry = forward.get(key)
      if (entry) {
        entry.items++
        entry.pairs += this.forwardPairs(item)
      } else {
        forward.set(key, { representative: item, items: 1, pairs: this.forwardPairs(item) })
      }
    }
    for (const { representative, items, pairs } of forward.values()) {
      const counts = this.counts(representative)
      const usefulFlops = 2 * (this.shape.headDim + this.shape.headDimV) * (pairs / items)
      classes.push({ kernel: "forward", count: items * itemGroups, representative, counts: { ...counts, usefulFlops } })
    }
    for (let tile = 0; tile < (this.combineItems > 0 ? this.queryTiles : 0); tile++) {
      const representative = this.combineItem(this.forwardItems + tile)
      classes.push({ kernel: "combine", count: itemGroups, representative, counts: this.counts(representative) })
    }
    for (let tile = 0; tile < this.keyTilesBackward; tile++) {
      const representative = this.backwardItem(this.forwardItems + this.combineItems + tile)
      classes.push({ kernel: "backward", count: this.shape.batch * this.shape.heads, representative, counts: this.counts(representative) })
    }
    return classes
  }
}
