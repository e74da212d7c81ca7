import { scaleCounts, sumCounts, type WorkCounts } from "../../cost/counts.js"
import { keyRowElements, type AttentionShape, type Phase } from "../../workload/shape.js"
import { visibleKeys, visiblePairsInTile } from "../../workload/mask.js"
import type { ItemClass, Schedule } from "../schedule.js"
import { generations, maskFlopsPerScore, rescaleFlopsPerOutputElement, vectorFlopsPerScore } from "./generations.js"
import type { DenseTiling } from "./tiling.js"

export type DenseKernelName = "forward" | "combine" | "backward"

/**
 * One CTA. Forward items own query rows [queryStart, queryEnd) of `heads` and
 * keys [keyStart, keyEnd) (the whole sequence unless split-KV). Packed items put
 * every head of a GQA group in the MMA rows: row r is head heads[floor(r / q)],
 * query queryStart + r mod q, with q = queryEnd − queryStart. Backward items own
 * keys [keyStart, keyEnd) of one head and stream the query tiles that see them.
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
}

/** Rows of one query position range, for a head-packed or plain item. */
export function itemQueryRows(item: DenseWorkItem): number {
  return (item.queryEnd - item.queryStart) * item.heads.length
}

export class DenseSchedule implements Schedule<DenseWorkItem> {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling: DenseTiling | undefined
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
    this.keyTilesBackward = backward ? Math.ceil(shape.seqLenKV / backward.blockN) : 0
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
    return { ...base, index, kernel: "combine", split: -1, keyStart: 0, keyEnd: this.shape.seqLenKV }
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
      keyEnd: Math.min(shape.seqLenKV, keyStart + tiling.blockN),
      split: 0,
      rows: tiling.blockN
    }
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
    const keyTiles = Math.ceil(this.shape.seqLenKV / blockN)
    const first = Math.floor((split * keyTiles) / splits)
    const last = Math.floor(((split + 1) * keyTiles) / splits)
    return { keyStart: Math.min(this.shape.seqLenKV, first * blockN), keyEnd: Math.min(this.shape.seqLenKV, last * blockN) }
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
      const end = Math.min(start + blockN, this.shape.seqLenKV)
      const pairs = visiblePairsInTile(this.shape, item.queryStart, item.queryEnd, start, end)
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
      const pairs = visiblePairsInTile(this.shape, start, end, item.keyStart, item.keyEnd)
      steps.push({ start, end, partial: pairs < blockM * (item.keyEnd - item.keyStart) })
    }
    return steps
  }

  /** Queries that see at least one key of a backward item's key range, as [lo, hi). */
  private backwardQueryRange(item: DenseWorkItem): { lo: number; hi: number } {
    const { shape } = this
    if (!shape.causal) return { lo: 0, hi: shape.seqLenQ }
    const offset = shape.seqLenKV - shape.seqLenQ
    // Query i sits at key position i + offset and sees keys (position − window, position].
    const lo = Math.max(0, item.keyStart - offset)
    const hi = shape.window === undefined ? shape.seqLenQ : Math.min(shape.seqLenQ, item.keyEnd - 1 + shape.window - offset)
    return { lo, hi: Math.max(lo, hi) }
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
   * Forward item: per key tile, S = Q·Kᵀ and O += P·V on rows × blockN, exp of
   * every score, the vector work of online softmax; loads of the K and V tiles;
   * once per item the query tile load and the output store (FP32 partial output
   * and log-sum-exp when split, log-sum-exp too when training).
   */
  private forwardCounts(item: DenseWorkItem): WorkCounts {
    const { shape, tiling } = this
    const s = bytesPerElement(shape)
    const dk = shape.headDim
    const dv = shape.headDimV
    const readers = generations[tiling.kernel].readersPerCta(tiling.warps, item.rows)
    const realRows = itemQueryRows(item)
    const { steps, keys, partialSteps } = this.forwardStepSummary(item)

    const scores = steps * item.rows * tiling.blockN
    const pairs = visiblePairsInTile(shape, item.queryStart, item.queryEnd, item.keyStart, item.keyEnd)
    const queryBytes = realRows * dk * s
    const outputBytes = tiling.splits > 1 ? realRows * (dv + 1) * 4 : realRows * dv * s + (this.phase === "train" ? realRows * 4 : 0)
    const kvBytes = keys * keyRowElements(shape) * s
    return {
      tensorFlops: 2 * scores * (dk + dv),
      usefulFlops: 2 * (dk + dv) * item.heads.length * pairs,
      expOps: scores,
      vectorFlops:
        scores * vectorFlopsPerScore.forward +
        partialSteps * item.rows * tiling.blockN * maskFlopsPerScore +
        steps * item.rows * dv * rescaleFlopsPerOutputElement,
      bytes: {
        hbm: 0,
        l2: kvBytes + queryBytes + outputBytes,
        // Staged K/V tiles written once and read by every consumer; the query tile
        // staged once and read once per key tile.
        smem: kvBytes + steps * (item.rows * dk * s + readers * tiling.blockN * (dk + dv) * s) + item.rows * dk * s
      }
    }
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
      loadBytes: (step.end - step.start) * keyRowElements(shape) * bytesPerElement(shape)
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

    const first = visibleKeys(this.shape, item.queryStart)
    const last = visibleKeys(this.shape, item.queryEnd - 1)
    const fullFirstTile = Math.max(firstTile, Math.ceil(last.lo / blockN))
    const fullEndTile = Math.min(endTile, Math.floor(Math.min(first.hi, item.keyEnd) / blockN))
    const fullSteps = first.hi > first.lo ? Math.max(0, fullEndTile - fullFirstTile) : 0
    return {
      steps,
      keys: Math.min(endTile * blockN, this.shape.seqLenKV) - firstTile * blockN,
      partialSteps: steps - fullSteps
    }
  }

  private forwardKeyRange(item: DenseWorkItem): { lo: number; hi: number } {
    const first = visibleKeys(this.shape, item.queryStart)
    const last = visibleKeys(this.shape, item.queryEnd - 1)
    // Rows that see nothing (queries before the first key) contribute no range.
    const ranges = [first, last].filter((r) => r.hi > r.lo)
    if (ranges.length === 0) return { lo: 0, hi: 0 }
    const lo = Math.max(item.keyStart, Math.min(...ranges.map((r) => r.lo)))
    const hi = Math.min(item.keyEnd, Math.max(...ranges.map((r) => r.hi)))
    return { lo, hi }
  }

  /** Combine item: read every split's FP32 partial output and log-sum-exp, write the output. */
  private combineCounts(item: DenseWorkItem): WorkCounts {
    const { shape, tiling } = this
    const realRows = itemQueryRows(item)
    const partialBytes = tiling.splits * realRows * (shape.headDimV + 1) * 4
    const outputBytes = realRows * shape.headDimV * bytesPerElement(shape)
    return {
      tensorFlops: 0,
      usefulFlops: 0,
      expOps: tiling.splits * realRows,
      vectorFlops: tiling.splits * realRows * (shape.headDimV + 2) * 2,
      bytes: { hbm: 0, l2: partialBytes + outputBytes, smem: 0 }
    }
  }

  /**
   * Backward item (one key tile of one head): per query tile, five matrix
   * products S = Q·Kᵀ, dP = dO·Vᵀ, dV += Pᵀ·dO, dK += dSᵀ·Q, dQ += dS·K, giving
   * 2·blockM·blockN·(3·dk + 2·dv) FLOPs; exp to recompute P; loads of Q, dO,
   * log-sum-exp and D; dQ accumulated by FP32 atomics in L2 (read and write).
   * Once per item: K and V loaded, dK and dV stored.
   */
  private backwardCounts(item: DenseWorkItem): WorkCounts {
    const { shape } = this
    const tiling = this.backwardTiling!
    const s = bytesPerElement(shape)
    const dk = shape.headDim
    const dv = shape.headDimV
    const readers = generations[tiling.kernel].readersPerCta(tiling.warps, item.rows)
    const { steps, rows } = this.backwardStepSummary(item)
    const scores = steps * tiling.blockM * item.rows
    const pairs = visiblePairsInTile(shape, 0, shape.seqLenQ, item.keyStart, item.keyEnd)

    // Per query row: Q and dO tiles, log-sum-exp and D (4 bytes each), and the FP32
    // dQ accumulator read and written by atomics.
    const queryTileBytes = rows * ((dk + dv) * s + 8)
    const atomicBytes = 2 * rows * dk * 4
    const keyBytes = (item.keyEnd - item.keyStart) * (dk + dv) * s
    return {
      tensorFlops: 2 * scores * (3 * dk + 2 * dv),
      usefulFlops: 2 * (3 * dk + 2 * dv) * pairs,
      expOps: scores,
      vectorFlops: scores * vectorFlopsPerScore.backward,
      bytes: {
        hbm: 0,
        l2: queryTileBytes + atomicBytes + 2 * keyBytes,
        // Staged Q and dO tiles read by every consumer; dS staged through shared
        // memory for the dK and dQ products; K and V staged once.
        smem: queryTileBytes + steps * (readers * tiling.blockM * (dk + dv) * s + 3 * tiling.blockM * item.rows * s) + keyBytes
      }
    }
  }

  private buildClasses(): ReadonlyArray<ItemClass<DenseWorkItem>> {
    const classes: Array<ItemClass<DenseWorkItem>> = []
    const itemGroups = this.shape.batch * (this.shape.heads / this.headsPerItem)

    // Forward items with the same query tile and split do the same work in every (batch, head).
    for (const band of queryTileBands(this.queryTiles)) {
      for (let split = 0; split < this.tiling.splits; split++) {
        const itemAt = (tile: number) => this.forwardItem(tile * this.tiling.splits + split)
        classes.push(this.bandClass("forward", band, itemAt, itemGroups))
      }
    }
    if (this.combineItems > 0) {
      for (const band of queryTileBands(this.queryTiles)) {
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
    const pairs = visiblePairsInTile(shape, first.queryStart, last.queryEnd, representative.keyStart, representative.keyEnd)
    const usefulFlops = (2 * (shape.headDim + shape.headDimV) * representative.heads.length * pairs) / band.size
    return { kernel, count: itemGroups * band.size, representative, counts: { ...mean, usefulFlops } }
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

/** Consecutive query tiles in at most maxQueryTileClasses bands of near-equal size. */
function queryTileBands(tiles: number): QueryTileBand[] {
  const bands = Math.min(tiles, maxQueryTileClasses)
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
