import type { WorkCounts } from "../../cost/counts.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { generations, vectorFlopsPerScore } from "../dense/generations.js"
import { bytesPerElement } from "../dense/schedule.js"
import type { DenseTiling } from "../dense/tiling.js"
import { forwardWorkCounts } from "../dense/work-counts.js"
import { blockOf, historySlots, queryPosition, type HistoryDemand } from "./blocks.js"
import type { MobaConfig } from "./options.js"

/**
 * Owner of a history segment. "per-head" is MoBA: every query head selects its
 * own blocks, so a segment gathers one head's queries. "group-shared" is the
 * hypothetical contrast where the G heads of a GQA group share one selection,
 * so a segment gathers the queries of all G heads against one K/V block.
 */
export type Selection = "per-head" | "group-shared"

/**
 * One history segment of an owner (head or KV head): a complete K/V block and
 * the query rows that selected it. Prefill and training have one segment per
 * block with readers, with its block index and rows from the expected spread.
 * Decode has one per selected (query, slot), and the data decides its block.
 */
export interface Segment {
  readonly block: number
  readonly rows: number
}

/**
 * One CTA of the history kernel: query tile `tile` of segment `segment` of
 * `owner` in sequence `batch`, against split `split` of the block's keys
 * (backward: key tile `tile` against all the segment's query rows).
 */
export interface HistoryItem {
  readonly index: number
  readonly kernel: "history-forward" | "history-backward"
  readonly batch: number
  readonly owner: number
  readonly segment: number
  readonly tile: number
  readonly split: number
  /** Real query rows (forward) or gathered query rows (backward). */
  readonly realRows: number
  /** Keys of the block this item covers: [keyStart, keyEnd) relative to the block start. */
  readonly keyStart: number
  readonly keyEnd: number
}

/** One key tile of a forward item, relative to the block start. */
export interface HistoryStep {
  readonly start: number
  readonly end: number
}

export interface HistoryClass {
  readonly kernel: HistoryItem["kernel"]
  readonly count: number
  readonly representative: HistoryItem
  readonly counts: WorkCounts
}

export interface HistoryScheduleInput {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly config: Pick<MobaConfig, "blockSize" | "topK" | "blocks">
  readonly demand: HistoryDemand
  readonly selection: Selection
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
}

/**
 * The history part of MoBA as varlen FlashAttention: for each owner and each
 * selected block, the gathered queries that chose it attend the whole block
 * without a mask (history blocks lie entirely before their queries). Forward
 * items tile each segment's rows by blockM and, in decode, split the block's
 * keys into `splits` ranges of whole key tiles. Index order, fastest first:
 * split, tile, segment, owner, batch.
 */
export class HistorySchedule {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly selection: Selection
  readonly tiling: DenseTiling
  readonly backwardTiling: DenseTiling | undefined
  readonly blockSize: number
  readonly group: number
  readonly owners: number
  readonly segments: ReadonlyArray<Segment>
  /** Segments grouped by their row count; pricing reads these, not every segment. */
  readonly histogram: ReadonlyArray<RowCount>
  /** Forward query tiles of one owner. */
  readonly tilesPerOwner: number
  private tileIndex: Float64Array | undefined
  readonly forwardItems: number
  readonly keyTilesBackward: number
  readonly backwardItems: number
  readonly size: number
  readonly classes: ReadonlyArray<HistoryClass>

  constructor(input: HistoryScheduleInput) {
    const { shape, tiling } = input
    this.shape = shape
    this.phase = input.phase
    this.selection = input.selection
    this.tiling = tiling
    this.backwardTiling = input.phase === "train" ? input.backwardTiling : undefined
    this.blockSize = input.config.blockSize
    this.group = shape.heads / shape.kvHeads
    this.owners = input.selection === "per-head" ? shape.heads : shape.kvHeads
    this.segments = buildSegments(input, input.selection === "per-head" ? 1 : this.group)
    this.histogram = rowHistogram(this.segments)
    const summary = tileSummary(this.histogram, tiling.blockM)
    this.tilesPerOwner = [...summary.byTiles].reduce((sum, [tiles, entry]) => sum + tiles * entry.count, 0)
    this.forwardItems = shape.batch * this.owners * this.tilesPerOwner * tiling.splits
    this.keyTilesBackward = this.backwardTiling ? Math.ceil(this.blockSize / this.backwardTiling.blockN) : 0
    this.backwardItems = shape.batch * this.owners * this.segments.length * this.keyTilesBackward
    this.size = this.forwardItems + this.backwardItems
    this.classes = this.buildClasses()
  }

  /** tileStart[s]: forward query tiles of one owner before segment s (length segments + 1), built on first use. */
  private get tileStart(): Float64Array {
    if (!this.tileIndex) {
      const index = new Float64Array(this.segments.length + 1)
      this.segments.forEach((segment, s) => {
        index[s + 1] = index[s]! + Math.ceil(segment.rows / this.tiling.blockM)
      })
      this.tileIndex = index
    }
    return this.tileIndex
  }

  item(index: number): HistoryItem {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`history work item ${index} is outside the schedule's ${this.size} items`)
    }
    return index < this.forwardItems ? this.forwardItem(index) : this.backwardItem(index)
  }

  /** Index of the forward item for (batch, owner, segment, tile, split). */
  forwardIndex(batch: number, owner: number, segment: number, tile: number, split: number): number {
    const tiles = this.tilesPerOwner
    return (((batch * this.owners + owner) * tiles + this.tileStart[segment]! + tile) * this.tiling.splits) + split
  }

  private forwardItem(index: number): HistoryItem {
    const { splits, blockM } = this.tiling
    const split = index % splits
    const ownerTile = Math.floor(index / splits) % this.tilesPerOwner
    const owner = Math.floor(index / (splits * this.tilesPerOwner)) % this.owners
    const batch = Math.floor(index / (splits * this.tilesPerOwner * this.owners))
    const segment = upperBound(this.tileStart, ownerTile) - 1
    const tile = ownerTile - this.tileStart[segment]!
    const rows = this.segments[segment]!.rows
    const { keyStart, keyEnd } = this.splitRange(split)
    return {
      index,
      kernel: "history-forward",
      batch,
      owner,
      segment,
      tile,
      split,
      realRows: Math.min(blockM, rows - tile * blockM),
      keyStart,
      keyEnd
    }
  }

  private backwardItem(index: number): HistoryItem {
    const local = index - this.forwardItems
    const keyTile = local % this.keyTilesBackward
    const segment = Math.floor(local / this.keyTilesBackward) % this.segments.length
    const owner = Math.floor(local / (this.keyTilesBackward * this.segments.length)) % this.owners
    const batch = Math.floor(local / (this.keyTilesBackward * this.segments.length * this.owners))
    const blockN = this.backwardTiling!.blockN
    return {
      index,
      kernel: "history-backward",
      batch,
      owner,
      segment,
      tile: keyTile,
      split: 0,
      realRows: this.segments[segment]!.rows,
      keyStart: keyTile * blockN,
      keyEnd: Math.min(this.blockSize, (keyTile + 1) * blockN)
    }
  }

  /** Keys of split `split` within a block: whole key tiles, shared out as evenly as possible. */
  splitRange(split: number): { keyStart: number; keyEnd: number } {
    const { blockN, splits } = this.tiling
    const keyTiles = Math.ceil(this.blockSize / blockN)
    const first = Math.floor((split * keyTiles) / splits)
    const last = Math.floor(((split + 1) * keyTiles) / splits)
    return { keyStart: Math.min(this.blockSize, first * blockN), keyEnd: Math.min(this.blockSize, last * blockN) }
  }

  /** Key tiles of a forward item, relative to the block start; every key of a history block is visible. */
  steps(item: HistoryItem): ReadonlyArray<HistoryStep> {
    const { blockN } = this.tiling
    const steps: HistoryStep[] = []
    for (let start = item.keyStart; start < item.keyEnd; start += blockN) steps.push({ start, end: Math.min(start + blockN, item.keyEnd) })
    return steps
  }

  /** Work of one executed key tile, as the tile worker counts it (MMA padding included). */
  stepCounts(step: HistoryStep): { tensorFlops: number; expOps: number; loadBytes: number } {
    const { shape, tiling } = this
    const scores = tiling.blockM * tiling.blockN
    return {
      tensorFlops: 2 * scores * (shape.headDim + shape.headDimV),
      expOps: scores,
      loadBytes: (step.end - step.start) * (shape.headDim + shape.headDimV) * bytesPerElement(shape)
    }
  }

  counts(item: HistoryItem): WorkCounts {
    return item.kernel === "history-forward" ? this.forwardCounts(item.realRows, item.keyEnd - item.keyStart) : this.backwardCounts(item.realRows, item.keyEnd - item.keyStart)
  }

  /**
   * Forward item: the dense forward's accounting over blockM × blockN tiles,
   * the padded rows of a short segment included. The block's K and V load once.
   * Each gathered query row loads with its 4-byte query index, and the partial
   * output is stored at the storage dtype with its FP32 log-sum-exp for the merge.
   */
  forwardCounts(realRows: number, keys: number): WorkCounts {
    const { shape, tiling } = this
    const s = bytesPerElement(shape)
    return forwardWorkCounts({
      rows: tiling.blockM,
      realRows,
      blockN: tiling.blockN,
      steps: Math.ceil(keys / tiling.blockN),
      partialSteps: keys % tiling.blockN === 0 ? 0 : 1,
      keys,
      pairs: realRows * keys,
      headDim: shape.headDim,
      headDimV: shape.headDimV,
      elementBytes: s,
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, tiling.blockM),
      outputBytes: realRows * (shape.headDimV * s + 4),
      extraL2Bytes: realRows * 4
    })
  }

  /**
   * Counts a backward item: one key tile of a block against the segment's
   * gathered queries. Per query tile it runs the dense backward's five products
   * S, dP, dV, dK and dQ, so 2·blockM·blockN·(3·dk + 2·dv) FLOPs, and recomputes
   * P with the merged log-sum-exp. Per gathered row it loads Q, dO, the
   * log-sum-exp, D and the query index, and adds dQ by FP32 atomics (read and
   * write). Once per item it loads the tile's K and V and stores per-head dK, dV.
   */
  backwardCounts(rows: number, keys: number): WorkCounts {
    const { shape } = this
    const tiling = this.backwardTiling!
    const s = bytesPerElement(shape)
    const dk = shape.headDim
    const dv = shape.headDimV
    const readers = generations[tiling.kernel].readersPerCta(tiling.warps, tiling.blockN)
    const steps = Math.ceil(rows / tiling.blockM)
    const scores = steps * tiling.blockM * tiling.blockN
    const queryTileBytes = rows * ((dk + dv) * s + 8 + 4)
    const atomicBytes = 2 * rows * dk * 4
    const keyBytes = keys * (dk + dv) * s
    return {
      tensorFlops: 2 * scores * (3 * dk + 2 * dv),
      usefulFlops: 2 * (3 * dk + 2 * dv) * rows * keys,
      expOps: scores,
      vectorFlops: scores * vectorFlopsPerScore.backward,
      bytes: {
        hbm: 0,
        l2: queryTileBytes + atomicBytes + 2 * keyBytes,
        smem: queryTileBytes + steps * (readers * tiling.blockM * (dk + dv) * s + 3 * tiling.blockM * tiling.blockN * s) + keyBytes
      }
    }
  }

  /**
   * Forward items with equal rows and split do equal work. Backward items are
   * grouped by query tiles and key tile: within a group the work is linear in
   * the gathered rows, so the class takes their mean and its totals stay exact.
   */
  private buildClasses(): ReadonlyArray<HistoryClass> {
    const perOwner = this.shape.batch * this.owners
    const { blockM, splits } = this.tiling
    const summary = this.tiles(blockM)
    const forward: Array<{ count: number; representative: HistoryItem }> = []
    for (let split = 0; split < splits; split++) {
      if (summary.fullTiles > 0) forward.push({ count: summary.fullTiles * perOwner, representative: this.forwardItem(this.forwardIndex(0, 0, summary.fullFirst, 0, split)) })
      for (const [rest, { count, first }] of summary.rests) {
        const tile = Math.floor(this.segments[first]!.rows / blockM)
        forward.push({ count: count * perOwner, representative: { ...this.forwardItem(this.forwardIndex(0, 0, first, tile, split)), realRows: rest } })
      }
    }
    const classes: HistoryClass[] = forward.map(({ count, representative }) => ({
      kernel: "history-forward",
      count,
      representative,
      counts: this.counts(representative)
    }))
    if (this.backwardTiling) classes.push(...this.backwardClasses(perOwner))
    return classes
  }

  /** Summarizes the segments' tiles of `blockM` rows (computed once for every tiling with that height). */
  tiles(blockM: number): TileSummary {
    return tileSummary(this.histogram, blockM)
  }

  private backwardClasses(perOwner: number): HistoryClass[] {
    const tiling = this.backwardTiling!
    const summary = this.tiles(tiling.blockM)
    const classes: HistoryClass[] = []
    for (const [, { count, rows, first }] of summary.byTiles) {
      const meanRows = rows / count
      for (let keyTile = 0; keyTile < this.keyTilesBackward; keyTile++) {
        const keys = Math.min(this.blockSize, (keyTile + 1) * tiling.blockN) - keyTile * tiling.blockN
        const item = this.backwardItem(this.forwardItems + first * this.keyTilesBackward + keyTile)
        classes.push({
          kernel: "history-backward",
          count: count * perOwner,
          representative: { ...item, realRows: Math.round(meanRows) },
          counts: this.backwardCounts(meanRows, keys)
        })
      }
    }
    return classes
  }
}

/** Segments with `rows` rows: `count` of them, the first at index `first`. */
export interface RowCount {
  readonly rows: number
  readonly count: number
  readonly first: number
}

const histograms = new WeakMap<ReadonlyArray<Segment>, ReadonlyArray<RowCount>>()

/**
 * Segments cut into tiles of blockM rows: the full tiles in all, the segments
 * by the rows of their last, partial tile, and the segments by tile count
 * with their rows (for the backward pass, whose items stream every tile).
 */
export interface TileSummary {
  readonly fullTiles: number
  /** A segment with at least one full tile (-1 when none has). */
  readonly fullFirst: number
  readonly rests: ReadonlyMap<number, { readonly count: number; readonly first: number }>
  readonly byTiles: ReadonlyMap<number, { readonly count: number; readonly rows: number; readonly first: number }>
}

const summaries = new WeakMap<ReadonlyArray<RowCount>, Map<number, TileSummary>>()

function tileSummary(histogram: ReadonlyArray<RowCount>, blockM: number): TileSummary {
  let byHeight = summaries.get(histogram)
  const cached = byHeight?.get(blockM)
  if (cached) return cached

  let fullTiles = 0
  let fullFirst = -1
  const rests = new Map<number, { count: number; first: number }>()
  const byTiles = new Map<number, { count: number; rows: number; first: number }>()
  for (const { rows, count, first } of histogram) {
    const full = Math.floor(rows / blockM)
    const rest = rows - full * blockM
    if (full > 0) {
      fullTiles += full * count
      if (fullFirst < 0) fullFirst = first
    }
    if (rest > 0) {
      const entry = rests.get(rest)
      if (entry) entry.count += count
      else rests.set(rest, { count, first })
    }

    const tiles = Math.ceil(rows / blockM)
    const entry = byTiles.get(tiles)
    if (entry) {
      entry.count += count
      entry.rows += rows * count
    } else {
      byTiles.set(tiles, { count, rows: rows * count, first })
    }
  }
  const summary = { fullTiles, fullFirst, rests, byTiles }

  if (!byHeight) {
    byHeight = new Map()
    summaries.set(histogram, byHeight)
  }
  byHeight.set(blockM, summary)
  return summary
}

function rowHistogram(segments: ReadonlyArray<Segment>): ReadonlyArray<RowCount> {
  const cached = histograms.get(segments)
  if (cached) return cached
  const byRows = new Map<number, { rows: number; count: number; first: number }>()
  segments.forEach((segment, index) => {
    const entry = byRows.get(segment.rows)
    if (entry) entry.count += 1
    else byRows.set(segment.rows, { rows: segment.rows, count: 1, first: index })
  })
  const histogram = [...byRows.values()]
  histograms.set(segments, histogram)
  return histogram
}

/**
 * Segments of one owner. Prefill and training: one per block with readers,
 * `rowsPerReader` rows per selecting query (G for a group-shared selection).
 * Decode: one per (query, history slot), each with rowsPerReader rows.
 */
function buildSegments(input: HistoryScheduleInput, rowsPerReader: number): ReadonlyArray<Segment> {
  const key = `${input.phase === "decode" ? "decode" : "blocks"}|${rowsPerReader}`
  let cached = segmentCache.get(input.demand)
  const found = cached?.get(key)
  if (found) return found
  const segments = segmentsOf(input, rowsPerReader)
  if (!cached) {
    cached = new Map()
    segmentCache.set(input.demand, cached)
  }
  cached.set(key, segments)
  return segments
}

/** Segments per demand (one per planned request), shared by the tilings a search prices. */
const segmentCache = new WeakMap<HistoryDemand, Map<string, ReadonlyArray<Segment>>>()

function segmentsOf(input: HistoryScheduleInput, rowsPerReader: number): ReadonlyArray<Segment> {
  const { shape, config, demand } = input
  const segments: Segment[] = []
  if (input.phase === "decode") {
    for (let i = 0; i < shape.seqLenQ; i++) {
      const slots = historySlots(blockOf(queryPosition(shape, i), config.blockSize), config.topK)
      for (let slot = 0; slot < slots; slot++) segments.push({ block: -1, rows: rowsPerReader })
    }
    return segments
  }
  demand.readers.forEach((readers, block) => {
    if (readers > 0) segments.push({ block, rows: readers * rowsPerReader })
  })
  return segments
}

/** First index i with sorted[i] > value. */
function upperBound(sorted: Float64Array, value: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (sorted[mid]! <= value) lo = mid + 1
    else hi = mid
  }
  return lo
}
