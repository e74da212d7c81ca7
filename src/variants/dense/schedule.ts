import { scaleCounts, sumCounts, type WorkCounts } from "../../cost/counts.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { ItemClass, Schedule } from "../schedule.js"
import { generations } from "./generations.js"
import { tokenKeySpace, type KeySpace } from "./key-space.js"
import type { DenseTiling } from "./tiling.js"
import { forwardWorkCounts, keyStationaryBackwardCounts } from "./work-counts.js"

export type DenseKernelName = "forward" | "combine" | "backward"

/**
 * One CTA. Forward items own query rows [queryStart, queryEnd) of `heads` and
 * keys [keyStart, keyEnd) of the schedule's key space (all of it unless
 * split-KV). Packed items put every head of a GQA group in the MMA rows: row r
 * is head heads[floor(r / q)], query queryStart + r mod q, with
 * q = queryEnd − queryStart. Backward items own keys [keyStart, keyEnd) of
 * one head and stream the query tiles that see them.
 */
export interface DenseWorkItem {
  readonly index: number
  readonly kernel: DenseKernelName
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

/** One key tile (forward) or query tile (backward) an item processes. */
export interface TileStep {
  readonly start: number
  readonly end: number
  /** True when the mask hides some (query, key) pair of the tile, so it needs masking. */
  readonly partial: boolean
}

export interface DenseScheduleInput {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
  /** Keys the items attend; default: the sequence's keys under the shape's mask. */
  readonly keySpace?: KeySpace | undefined
  /** Whether the output carries its FP32 log-sum-exp; default: when training, for the backward. */
  readonly storeLogSumExp?: boolean | undefined
  /** Grouping of forward items into priced classes; default "query-tile-bands". */
  readonly classGrouping?: ClassGrouping | undefined
}

/**
 * "query-tile-bands": one class per (query tile, split), or per band of query
 * tiles past maxQueryTileClasses tiles. "equal-work": one class per distinct
 * (split, tiles, masked tiles, keys loaded, rows), exact at any length. Query
 * tiles number up to seqLenQ / (blockM / G), while distinct tile counts number
 * only about keys / blockN, so equal-work grouping keeps pricing fast when the
 * key space is much shorter than the queries (compressed tokens).
 */
export type ClassGrouping = "query-tile-bands" | "equal-work"

/** Rows of one query position range, for a head-packed or plain item. */
export function itemQueryRows(item: DenseWorkItem): number {
  return (item.queryEnd - item.queryStart) * item.heads.length
}

export class DenseSchedule implements Schedule<DenseWorkItem> {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling: DenseTiling | undefined
  readonly keySpace: KeySpace
  readonly storeLogSumExp: boolean
  readonly classGrouping: ClassGrouping
  readonly group: number
  /** Query position tiles per (batch, head) for unpacked items; 1 for packed items. */
  readonly queryTiles: number
  readonly queryTileRows: number
  readonly headsPerItem: number
  readonly itemsPerBatch: number
  readonly forwardItems: number
  readonly combineItems: number
  readonly backwardItems: number
  readonly keyTilesBackward: number
  readonly size: number
  readonly classes: ReadonlyArray<ItemClass<DenseWorkItem>>

  constructor(input: DenseScheduleInput) {
    const { shape, tiling } = input
    this.shape = shape
    this.phase = input.phase
    this.tiling = tiling
    this.backwardTiling = input.backwardTiling
    this.keySpace = input.keySpace ?? tokenKeySpace(shape)
    this.storeLogSumExp = input.storeLogSumExp ?? this.phase === "train"
    this.classGrouping = input.classGrouping ?? "query-tile-bands"
    this.group = shape.heads / shape.kvHeads

    // Packed items hold every head of a group; the tile height bounds the query rows per item.
    // Packed items hold a whole GQA group, or an even share of it when the group
    // outgrows the tile (MLA's 128 heads on one latent: 64 heads per CTA).
    this.headsPerItem = tiling.packGqa ? packedHeads(this.group, tiling.blockM) : 1
    this.queryTileRows = tiling.packGqa ? Math.max(1, Math.floor(tiling.blockM / this.headsPerItem)) : tiling.blockM
    this.queryTiles = Math.ceil(shape.seqLenQ / this.queryTileRows)
    const itemHeads = shape.heads / this.headsPerItem
    this.itemsPerBatch = itemHeads * this.queryTiles * tiling.splits
    this.forwardItems = shape.batch * this.itemsPerBatch
    this.combineItems = tiling.splits > 1 ? shape.batch * itemHeads * this.queryTiles : 0

    const backward = this.phase === "train" ? this.backwardTiling : undefined
    this.keyTilesBackward = backward ? Math.ceil(this.keySpace.keys / backward.blockN) : 0
    this.backwardItems = backward ? shape.batch * shape.heads * this.keyTilesBackward : 0
    this.size = this.forwardItems + this.combineItems + this.backwardItems
    this.classes = this.buildClasses()
  }

  item(index: number): DenseWorkItem {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`work item ${index} is outside the schedule's ${this.size} items`)
    }
    if (index < this.forwardItems) return this.forwardItem(index)
    if (index < this.forwardItems + this.combineItems) return this.combineItem(index)
    return this.backwardItem(index)
  }

  private forwardItem(index: number): DenseWorkItem {
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

  private combineItem(index: number): DenseWorkItem {
    const local = index - this.forwardItems
    const base = this.forwardItem(local * this.tiling.splits)
    return { ...base, index, kernel: "combine", split: -1, keyStart: 0, keyEnd: this.keySpace.keys }
  }

  private backwardItem(index: number): DenseWorkItem {
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
      keyEnd: Math.min(this.keySpace.keys, keyStart + tiling.blockN),
      split: 0,
      rows: tiling.blockN
    }
  }

  /** Returns the forward items (one per split) whose rows contain query `query` of head `head` in sequence `batch`. */
  forwardItemsAt(batch: number, head: number, query: number): DenseWorkItem[] {
    const slot = Math.floor(head / this.headsPerItem)
    const slots = this.shape.heads / this.headsPerItem
    const tile = Math.floor(query / this.queryTileRows)
    const first = ((batch * slots + slot) * this.queryTiles + tile) * this.tiling.splits
    return Array.from({ length: this.tiling.splits }, (_, split) => this.item(first + split))
  }

  private readonly headLists = new Map<number, ReadonlyArray<number>>()

  /** The query heads of head slot `slot`, shared between items (items are immutable). */
  private headsOf(slot: number): ReadonlyArray<number> {
    let heads = this.headLists.get(slot)
    if (!heads) {
      heads = Array.from({ length: this.headsPerItem }, (_, k) => slot * this.headsPerItem + k)
      this.headLists.set(slot, heads)
    }
    return heads
  }

  /** Keys of split `split`: whole key tiles, shared out as evenly as possible. */
  splitRange(split: number): { keyStart: number; keyEnd: number } {
    const { blockN, splits } = this.tiling
    const { keys } = this.keySpace
    const keyTiles = Math.ceil(keys / blockN)
    const first = Math.floor((split * keyTiles) / splits)
    const last = Math.floor(((split + 1) * keyTiles) / splits)
    return { keyStart: Math.min(keys, first * blockN), keyEnd: Math.min(keys, last * blockN) }
  }

  /** The tiles an item processes, in order; tiles the mask hides entirely are skipped. */
  steps(item: DenseWorkItem): ReadonlyArray<TileStep> {
    if (item.kernel === "combine") return []
    return item.kernel === "forward" ? this.forwardSteps(item) : this.backwardSteps(item)
  }

  private forwardSteps(item: DenseWorkItem): TileStep[] {
    const { blockN } = this.tiling
    const { lo, hi } = this.forwardKeyRange(item)
    const steps: TileStep[] = []
    // Tiles are aligned to multiples of blockN from key 0, as the split ranges are.
    for (let start = Math.floor(lo / blockN) * blockN; start < hi; start += blockN) {
      const end = Math.min(start + blockN, this.keySpace.keys)
      const pairs = this.keySpace.pairs(item.queryStart, item.queryEnd, start, end)
      const full = (item.queryEnd - item.queryStart) * blockN
      steps.push({ start, end, partial: pairs < full })
    }
    return steps
  }

  private backwardSteps(item: DenseWorkItem): TileStep[] {
    const { blockM } = this.backwardTiling!
    const { lo, hi } = this.backwardQueryRange(item)
    const steps: TileStep[] = []
    for (let start = Math.floor(lo / blockM) * blockM; start < hi; start += blockM) {
      const end = Math.min(start + blockM, this.shape.seqLenQ)
      const pairs = this.keySpace.pairs(start, end, item.keyStart, item.keyEnd)
      steps.push({ start, end, partial: pairs < blockM * (item.keyEnd - item.keyStart) })
    }
    return steps
  }

  /** Queries that see at least one key of a backward item's key range, as [lo, hi). */
  backwardQueryRange(item: DenseWorkItem): { lo: number; hi: number } {
    return this.keySpace.queriesSeeing(item.keyStart, item.keyEnd)
  }

  /** Number of query tiles a backward item processes and the query rows they cover. */
  backwardStepSummary(item: DenseWorkItem): { steps: number; rows: number } {
    const { blockM } = this.backwardTiling!
    const { lo, hi } = this.backwardQueryRange(item)
    if (hi <= lo) return { steps: 0, rows: 0 }
    const firstTile = Math.floor(lo / blockM)
    const endTile = Math.ceil(hi / blockM)
    return { steps: endTile - firstTile, rows: Math.min(endTile * blockM, this.shape.seqLenQ) - firstTile * blockM }
  }

  counts(item: DenseWorkItem): WorkCounts {
    if (item.kernel === "combine") return this.combineCounts(item)
    return item.kernel === "forward" ? this.forwardCounts(item) : this.backwardCounts(item)
  }

  /**
   * Forward item: the work of its key tiles (see forwardWorkCounts). The output
   * is stored at the storage dtype, with its FP32 log-sum-exp when the schedule
   * stores one, or as an FP32 partial output and log-sum-exp when split.
   */
  private forwardCounts(item: DenseWorkItem): WorkCounts {
    const { shape, tiling } = this
    const s = bytesPerElement(shape)
    const dv = shape.headDimV
    const realRows = itemQueryRows(item)
    const { steps, keys, partialSteps } = this.forwardStepSummary(item)
    return forwardWorkCounts({
      rows: item.rows,
      realRows,
      blockN: tiling.blockN,
      steps,
      partialSteps,
      keys,
      keyRowElements: this.keySpace.rowElements,
      pairs: this.forwardPairs(item),
      headDim: shape.headDim,
      headDimV: dv,
      elementBytes: s,
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, item.rows),
      outputBytes: tiling.splits > 1 ? realRows * (dv + 1) * 4 : realRows * dv * s + (this.storeLogSumExp ? realRows * 4 : 0)
    })
  }

  /** Visible (query row, key) pairs of a forward item over all its heads. */
  forwardPairs(item: DenseWorkItem): number {
    return this.keySpace.pairs(item.queryStart, item.queryEnd, item.keyStart, item.keyEnd) * item.heads.length
  }

  /**
   * Work of one key tile of a forward item, as the executor counts it: the two
   * matrix products over rows × blockN (padding included), the exp stage over
   * the same scores, and the K and V tile loads of the tile's real keys.
   */
  stepCounts(item: DenseWorkItem, step: TileStep): { tensorFlops: number; expOps: number; loadBytes: number } {
    const { shape, tiling } = this
    const scores = item.rows * tiling.blockN
    return {
      tensorFlops: 2 * scores * (shape.headDim + shape.headDimV),
      expOps: scores,
      loadBytes: (step.end - step.start) * this.keySpace.rowElements * bytesPerElement(shape)
    }
  }

  /**
   * Number of key tiles a forward item processes, the keys they cover and how
   * many of them are partly masked, in closed form. The union of the rows'
   * visible ranges is contiguous (adjacent rows' ranges overlap), so every tile
   * that meets it has a visible pair. A tile is fully visible when the first
   * row already sees its end, the last row still sees its start, and it holds a
   * whole blockN keys.
   */
  forwardStepSummary(item: DenseWorkItem): { steps: number; keys: number; partialSteps: number } {
    const { blockN } = this.tiling
    const range = this.forwardKeyRange(item)
    if (range.hi <= range.lo) return { steps: 0, keys: 0, partialSteps: 0 }
    const firstTile = Math.floor(range.lo / blockN)
    const endTile = Math.ceil(range.hi / blockN)
    const steps = endTile - firstTile

    const first = this.keySpace.visible(item.queryStart)
    const last = this.keySpace.visible(item.queryEnd - 1)
    const fullFirstTile = Math.max(firstTile, Math.ceil(last.lo / blockN))
    const fullEndTile = Math.min(endTile, Math.floor(Math.min(first.hi, item.keyEnd) / blockN))
    const fullSteps = first.hi > first.lo ? Math.max(0, fullEndTile - fullFirstTile) : 0
    return {
      steps,
      keys: Math.min(endTile * blockN, this.keySpace.keys) - firstTile * blockN,
      partialSteps: steps - fullSteps
    }
  }

  private forwardKeyRange(item: DenseWorkItem): { lo: number; hi: number } {
    const first = this.keySpace.visible(item.queryStart)
    const last = this.keySpace.visible(item.queryEnd - 1)
    // Rows that see nothing (queries before the first key) contribute no range.
    const ranges = [first, last].filter((r) => r.hi > r.lo)
    if (ranges.length === 0) return { lo: 0, hi: 0 }
    const lo = Math.max(item.keyStart, Math.min(...ranges.map((r) => r.lo)))
    const hi = Math.min(item.keyEnd, Math.max(...ranges.map((r) => r.hi)))
    return { lo, hi }
  }

  /** Combine item: read every split's FP32 partial output and log-sum-exp, write the output (and its log-sum-exp when stored). */
  private combineCounts(item: DenseWorkItem): WorkCounts {
    const { shape, tiling } = this
    const realRows = itemQueryRows(item)
    const partialBytes = tiling.splits * realRows * (shape.headDimV + 1) * 4
    const outputBytes = realRows * shape.headDimV * bytesPerElement(shape) + (this.storeLogSumExp ? realRows * 4 : 0)
    return {
      tensorFlops: 0,
      usefulFlops: 0,
      expOps: tiling.splits * realRows,
      vectorFlops: tiling.splits * realRows * (shape.headDimV + 2) * 2,
      bytes: { hbm: 0, l2: partialBytes + outputBytes, smem: 0 }
    }
  }

  /** Backward item (one key tile of one head): the query tiles it streams, counted by keyStationaryBackwardCounts. */
  private backwardCounts(item: DenseWorkItem): WorkCounts {
    const { shape } = this
    const tiling = this.backwardTiling!
    const { steps, rows } = this.backwardStepSummary(item)
    return keyStationaryBackwardCounts({
      keys: item.keyEnd - item.keyStart,
      blockM: tiling.blockM,
      blockN: item.rows,
      steps,
      queryRows: rows,
      pairs: this.keySpace.pairs(0, shape.seqLenQ, item.keyStart, item.keyEnd),
      headDim: shape.headDim,
      headDimV: shape.headDimV,
      elementBytes: bytesPerElement(shape),
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, item.rows)
    })
  }

  private buildClasses(): ReadonlyArray<ItemClass<DenseWorkItem>> {
    const classes: Array<ItemClass<DenseWorkItem>> = []
    const itemGroups = this.shape.batch * (this.shape.heads / this.headsPerItem)
    const equalWork = this.classGrouping === "equal-work"
    // Equal-work grouping keeps one band per query tile, so its combine classes are exact as well.
    const bands = queryTileBands(this.queryTiles, equalWork ? this.queryTiles : maxQueryTileClasses)

    if (equalWork) {
      classes.push(...this.equalWorkClasses(itemGroups))
    } else {
      // Forward items with the same query tile and split do the same work in every (batch, head).
      for (const band of bands) {
        for (let split = 0; split < this.tiling.splits; split++) {
          const itemAt = (tile: number) => this.forwardItem(tile * this.tiling.splits + split)
          classes.push(this.bandClass("forward", band, itemAt, itemGroups))
        }
      }
    }
    if (this.combineItems > 0) {
      for (const band of bands) {
        classes.push(this.bandClass("combine", band, (tile) => this.combineItem(this.forwardItems + tile), itemGroups))
      }
    }
    for (let tile = 0; tile < this.keyTilesBackward; tile++) {
      const representative = this.backwardItem(this.forwardItems + this.combineItems + tile)
      classes.push({ kernel: "backward", count: this.shape.batch * this.shape.heads, representative, counts: this.counts(representative) })
    }
    return classes
  }

  /**
   * One class for a band of consecutive query tiles. A one-tile band is exact.
   * A wider band (only above maxQueryTileClasses tiles) takes the mean counts of
   * its first, middle and last tile, with useful FLOPs exact from the band's
   * visible pairs: under a causal mask the counts grow linearly with the tile
   * index, so the band's total is kept to well under 1 %.
   */
  private bandClass(kernel: DenseKernelName, band: QueryTileBand, itemAt: (tile: number) => DenseWorkItem, itemGroups: number): ItemClass<DenseWorkItem> {
    const representative = itemAt(band.middle)
    if (band.size === 1) return { kernel, count: itemGroups, representative, counts: this.counts(representative) }

    const samples = [band.first, band.middle, band.last].map((tile) => this.counts(itemAt(tile)))
    const mean = scaleCounts(sumCounts(samples), 1 / samples.length)
    if (kernel !== "forward") return { kernel, count: itemGroups * band.size, representative, counts: mean }

    const first = itemAt(band.first)
    const last = itemAt(band.last)
    const { shape } = this
    const pairs = this.keySpace.pairs(first.queryStart, last.queryEnd, representative.keyStart, representative.keyEnd)
    const usefulFlops = (2 * (shape.headDim + shape.headDimV) * representative.heads.length * pairs) / band.size
    return { kernel, count: itemGroups * band.size, representative, counts: { ...mean, usefulFlops } }
  }

  /**
   * Forward classes of equal work: items whose split, tile count, masked tiles,
   * keys loaded and rows agree take the same time, so they form one class even
   * where their visible pairs differ. The class's usefulFlops is the mean over
   * its items, so totals stay exact.
   */
  private equalWorkClasses(itemGroups: number): Array<ItemClass<DenseWorkItem>> {
    const found = new Map<string, { representative: DenseWorkItem; items: number; pairs: number }>()
    for (let local = 0; local < this.tiling.splits * this.queryTiles; local++) {
      const item = this.forwardItem(local)
      const summary = this.forwardStepSummary(item)
      const key = `${item.split}:${summary.steps}:${summary.partialSteps}:${summary.keys}:${item.rows}:${itemQueryRows(item)}`
      const entry = found.get(key)
      if (entry) {
        entry.items++
        entry.pairs += this.forwardPairs(item)
      } else {
        found.set(key, { representative: item, items: 1, pairs: this.forwardPairs(item) })
      }
    }

    const flopsPerPair = 2 * (this.shape.headDim + this.shape.headDimV)
    return [...found.values()].map(({ representative, items, pairs }) => ({
      kernel: "forward",
      count: items * itemGroups,
      representative,
      counts: { ...this.counts(representative), usefulFlops: flopsPerPair * (pairs / items) }
    }))
  }
}

/** Most classes per split a forward kernel is priced with; more query tiles are banded. */
export const maxQueryTileClasses = 512

interface QueryTileBand {
  readonly first: number
  readonly middle: number
  readonly last: number
  readonly size: number
}

/** Consecutive query tiles in at most `maxBands` bands of near-equal size. */
function queryTileBands(tiles: number, maxBands: number): QueryTileBand[] {
  const bands = Math.min(tiles, maxBands)
  return Array.from({ length: bands }, (_, band) => {
    const first = Math.floor((band * tiles) / bands)
    const end = Math.floor(((band + 1) * tiles) / bands)
    return { first, middle: Math.floor((first + end - 1) / 2), last: end - 1, size: end - first }
  })
}

/** Heads one packed item holds: the whole group if it fits the tile, else its largest divisor that does. */
export function packedHeads(group: number, blockM: number): number {
  if (group <= blockM) return group
  for (let heads = blockM; heads > 1; heads--) if (group % heads === 0) return heads
  return 1
}

export const bytesPerElement = (shape: AttentionShape): number =>
  shape.dtype === "fp8" ? 1 : shape.dtype === "fp32" ? 4 : 2
