import type { WorkCounts } from "../../cost/counts.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import { generations, type KernelGeneration } from "../dense/generations.js"
import { bytesPerElement, type TileStep } from "../dense/schedule.js"
import { forwardWorkCounts } from "../dense/work-counts.js"
import type { ItemClass, Schedule } from "../schedule.js"
import { currentBlock, selectedBlockCount, type NsaGeometry } from "./geometry.js"
import { queryGradientCounts } from "./tile-counts.js"

/**
 * The selection kernel's configuration. `rows` is the group's G query heads
 * padded to the MMA tile height of the generation (16 for mma.sync, 64 for
 * warpgroup MMA); key tiles are blockN keys inside one selection block
 * (blockN divides l' in planned kernels; a blockN larger than l' pads every
 * tile, which the alignment analysis prices).
 */
export interface SelectionTiling {
  readonly kernel: KernelGeneration
  readonly rows: number
  readonly blockN: number
  readonly stages: number
  readonly warps: number
  readonly ctasPerSm: number
  /** Selected blocks of one position shared out over this many CTAs, merged by a combine step. */
  readonly splits: number
  readonly softmaxOverlap: number
  readonly backwardMmaEfficiency: number
}

export const describeSelectionTiling = (t: SelectionTiling): string =>
  `${t.kernel} group-centric ${t.rows}×${t.blockN} stages=${t.stages} warps=${t.warps}` + (t.splits > 1 ? ` splits=${t.splits}` : "")

export type SelectionKernelName = "forward" | "combine" | "backward"

/**
 * One CTA of the group-centric selection kernel: one query position of one
 * KV-head group, all G query heads in the MMA rows, the selected blocks of its
 * split fetched once each, contiguously.
 */
export interface SelectionWorkItem {
  readonly index: number
  readonly kernel: SelectionKernelName
  readonly batch: number
  readonly kvHead: number
  readonly heads: ReadonlyArray<number>
  /** Query index within the sequence's queries. */
  readonly query: number
  /** Key position of the query (bottom-right causal alignment). */
  readonly position: number
  readonly split: number
  readonly rows: number
}

/** Closed-form work of a forward or backward item: tiles, keys loaded, tiles needing masks, visible keys per row. */
export interface SelectionSummary {
  readonly steps: number
  readonly keys: number
  readonly partialSteps: number
  readonly visibleKeys: number
}

export interface SelectionScheduleInput {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly tiling: SelectionTiling
}

export class SelectionSchedule implements Schedule<SelectionWorkItem> {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly tiling: SelectionTiling
  readonly group: number
  readonly offset: number
  readonly tilesPerBlock: number
  /** Tiles of a whole block shorter than blockN (the block's tail, or every tile when blockN > l'), which need masking. */
  readonly paddedTilesPerBlock: number
  readonly forwardItems: number
  readonly combineItems: number
  readonly backwardItems: number
  readonly size: number
  readonly classes: ReadonlyArray<ItemClass<SelectionWorkItem>>

  constructor(input: SelectionScheduleInput) {
    const { shape, tiling } = input
    this.shape = shape
    this.geometry = input.geometry
    this.phase = input.phase
    this.tiling = tiling
    this.group = shape.heads / shape.kvHeads
    this.offset = shape.seqLenKV - shape.seqLenQ
    this.tilesPerBlock = Math.ceil(input.geometry.selectBlock / tiling.blockN)
    this.paddedTilesPerBlock = this.tilesPerBlock - Math.floor(input.geometry.selectBlock / tiling.blockN)
    const rowsOfQueries = shape.batch * shape.kvHeads * shape.seqLenQ
    this.forwardItems = rowsOfQueries * tiling.splits
    this.combineItems = tiling.splits > 1 ? rowsOfQueries : 0
    this.backwardItems = this.phase === "train" ? rowsOfQueries : 0
    this.size = this.forwardItems + this.combineItems + this.backwardItems
    this.classes = this.buildClasses()
  }

  item(index: number): SelectionWorkItem {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`work item ${index} is outside the schedule's ${this.size} items`)
    }
    if (index < this.forwardItems) {
      const split = index % this.tiling.splits
      return { ...this.positionItem(Math.floor(index / this.tiling.splits)), index, kernel: "forward", split }
    }
    if (index < this.forwardItems + this.combineItems) {
      return { ...this.positionItem(index - this.forwardItems), index, kernel: "combine", split: -1 }
    }
    return { ...this.positionItem(index - this.forwardItems - this.combineItems), index, kernel: "backward", split: 0 }
  }

  /** Returns the (batch, KV head, query) of the local-th position, in order query fastest, then KV head, then batch. */
  private positionItem(local: number): Omit<SelectionWorkItem, "index" | "kernel" | "split"> {
    const { shape } = this
    const query = local % shape.seqLenQ
    const kvHead = Math.floor(local / shape.seqLenQ) % shape.kvHeads
    const batch = Math.floor(local / (shape.seqLenQ * shape.kvHeads))
    return {
      batch,
      kvHead,
      heads: Array.from({ length: this.group }, (_, k) => kvHead * this.group + k),
      query,
      position: query + this.offset,
      rows: this.tiling.rows
    }
  }

  /** Index of the forward item of (batch, kvHead, query, split). */
  forwardIndex(batch: number, kvHead: number, query: number, split: number): number {
    return ((batch * this.shape.kvHeads + kvHead) * this.shape.seqLenQ + query) * this.tiling.splits + split
  }

  /** Returns the selected blocks (ascending) that split `split` of `splits` processes. */
  splitBlocks(blocks: ReadonlyArray<number>, split: number, splits = this.tiling.splits): ReadonlyArray<number> {
    const m = blocks.length
    return blocks.slice(Math.floor((split * m) / splits), Math.floor(((split + 1) * m) / splits))
  }

  /** Key tiles of one selected block for a query at `position`: tiles past the query are skipped. */
  blockTiles(block: number, position: number): TileStep[] {
    const { selectBlock } = this.geometry
    const { blockN } = this.tiling
    const tiles: TileStep[] = []
    for (let t = 0; t < this.tilesPerBlock; t++) {
      const start = block * selectBlock + t * blockN
      if (start > position) break
      const end = Math.min(start + Math.min(blockN, selectBlock - t * blockN), this.shape.seqLenKV)
      tiles.push({ start, end, partial: end - start < blockN || end > position + 1 })
    }
    return tiles
  }

  /** Returns the tiles a forward or backward item processes, given the blocks its position selected. */
  steps(item: SelectionWorkItem, blocks: ReadonlyArray<number>): ReadonlyArray<TileStep> {
    if (item.kernel === "combine") return []
    const own = item.kernel === "forward" ? this.splitBlocks(blocks, item.split) : blocks
    return own.flatMap((block) => this.blockTiles(block, item.position))
  }

  /**
   * Work of an item without knowing which blocks were selected: every selected
   * block other than the current one is whole and lies before the query, and
   * the current block (the highest selected) sits in the last split.
   */
  summary(position: number, split: number, splits: number): SelectionSummary {
    const { selectBlock } = this.geometry
    const { blockN } = this.tiling
    const m = selectedBlockCount(this.geometry, position)
    const count = Math.floor(((split + 1) * m) / splits) - Math.floor((split * m) / splits)
    const holdsCurrent = split === splits - 1 && count > 0
    const wholeBlocks = count - (holdsCurrent ? 1 : 0)

    let steps = wholeBlocks * this.tilesPerBlock
    let keys = wholeBlocks * selectBlock
    let partialSteps = wholeBlocks * this.paddedTilesPerBlock
    let visibleKeys = wholeBlocks * selectBlock
    if (holdsCurrent) {
      // The same tiles blockTiles lists for the current block, counted without building them.
      const blockStart = currentBlock(this.geometry, position) * selectBlock
      for (let t = 0; t < this.tilesPerBlock; t++) {
        const start = blockStart + t * blockN
        if (start > position) break
        const end = Math.min(start + Math.min(blockN, selectBlock - t * blockN), this.shape.seqLenKV)
        steps++
        keys += end - start
        if (end - start < blockN || end > position + 1) partialSteps++
      }
      visibleKeys += (position % selectBlock) + 1
    }
    return { steps, keys, partialSteps, visibleKeys }
  }

  /** Work of one key tile as the executor counts it (rows × blockN, padding included). */
  stepCounts(item: SelectionWorkItem, step: TileStep): { tensorFlops: number; expOps: number; loadBytes: number } {
    const { shape, tiling } = this
    const scores = item.rows * tiling.blockN
    return {
      tensorFlops: 2 * scores * (shape.headDim + shape.headDimV),
      expOps: scores,
      loadBytes: (step.end - step.start) * (shape.headDim + shape.headDimV) * bytesPerElement(shape)
    }
  }

  counts(item: SelectionWorkItem): WorkCounts {
    if (item.kernel === "combine") return this.combineCounts()
    if (item.kernel === "backward") return this.backwardCounts(this.summary(item.position, 0, 1))
    return this.forwardCounts(this.summary(item.position, item.split, this.tiling.splits))
  }

  private forwardCounts(summary: SelectionSummary): WorkCounts {
    const { shape, tiling } = this
    const dv = shape.headDimV
    const outputBytes = tiling.splits > 1 ? this.group * (dv + 1) * 4 : this.group * dv * bytesPerElement(shape) + (this.phase === "train" ? this.group * 4 : 0)
    return forwardWorkCounts({
      rows: tiling.rows,
      realRows: this.group,
      blockN: tiling.blockN,
      steps: summary.steps,
      partialSteps: summary.partialSteps,
      keys: summary.keys,
      pairs: this.group * summary.visibleKeys,
      headDim: shape.headDim,
      headDimV: dv,
      elementBytes: bytesPerElement(shape),
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, tiling.rows),
      outputBytes,
      // The item reads its position's selected block indices (int32).
      extraL2Bytes: this.geometry.selectCount * 4
    })
  }

  private combineCounts(): WorkCounts {
    const { shape, tiling } = this
    const rows = this.group
    return {
      tensorFlops: 0,
      usefulFlops: 0,
      expOps: tiling.splits * rows,
      vectorFlops: tiling.splits * rows * (shape.headDimV + 2) * 2,
      bytes: { hbm: 0, l2: tiling.splits * rows * (shape.headDimV + 1) * 4 + rows * shape.headDimV * bytesPerElement(shape), smem: 0 }
    }
  }

  private backwardCounts(summary: SelectionSummary): WorkCounts {
    const { shape, tiling } = this
    return queryGradientCounts({
      rows: tiling.rows,
      realRows: this.group,
      blockN: tiling.blockN,
      steps: summary.steps,
      keys: summary.keys,
      pairs: this.group * summary.visibleKeys,
      headDim: shape.headDim,
      headDimV: shape.headDimV,
      elementBytes: bytesPerElement(shape),
      readers: generations[tiling.kernel].readersPerCta(tiling.warps, tiling.rows)
    })
  }

  /**
   * Items grouped by identical work. Positions with fewer than n blocks, and
   * those in the sequence's last block (where tiles may be clipped at the
   * sequence end), are visited one by one; between them the work depends only
   * on the position modulo l', so each residue is one class.
   */
  private buildClasses(): ReadonlyArray<ItemClass<SelectionWorkItem>> {
    const { shape, geometry, tiling } = this
    const groups = shape.batch * shape.kvHeads
    const first = this.offset
    const end = this.offset + shape.seqLenQ
    const periodicStart = Math.min(end, Math.max(first, (geometry.selectCount - 1) * geometry.selectBlock))
    const periodicEnd = Math.max(periodicStart, Math.min(end, Math.floor((shape.seqLenKV - 1) / geometry.selectBlock) * geometry.selectBlock))

    const found = new Map<string, { representative: number; count: number; kernel: SelectionKernelName; split: number }>()
    const add = (position: number, count: number): void => {
      if (count <= 0) return
      for (let split = 0; split < tiling.splits; split++) this.addClass(found, "forward", position, split, count)
      if (this.combineItems > 0) this.addClass(found, "combine", position, -1, count)
      if (this.backwardItems > 0) this.addClass(found, "backward", position, 0, count)
    }
    for (let p = first; p < periodicStart; p++) add(p, 1)
    const period = geometry.selectBlock
    for (let residue = 0; residue < period; residue++) {
      const firstMatch = periodicStart + ((residue - (periodicStart % period) + period) % period)
      if (firstMatch >= periodicEnd) continue
      add(firstMatch, Math.floor((periodicEnd - 1 - firstMatch) / period) + 1)
    }
    for (let p = periodicEnd; p < end; p++) add(p, 1)

    return [...found.values()].map((entry) => {
      const query = entry.representative - this.offset
      const base = entry.kernel === "forward" ? this.forwardIndex(0, 0, query, entry.split) : (entry.kernel === "combine" ? this.forwardItems : this.forwardItems + this.combineItems) + query
      const representative = this.item(base)
      return { kernel: entry.kernel, count: entry.count * groups, representative, counts: this.counts(representative) }
    })
  }

  private addClass(
    found: Map<string, { representative: number; count: number; kernel: SelectionKernelName; split: number }>,
    kernel: SelectionKernelName,
    position: number,
    split: number,
    count: number
  ): void {
    const summary = kernel === "combine" ? undefined : this.summary(position, kernel === "forward" ? split : 0, kernel === "forward" ? this.tiling.splits : 1)
    const key = kernel === "combine" ? "combine" : `${kernel}:${split}:${summary!.steps}:${summary!.keys}:${summary!.partialSteps}:${summary!.visibleKeys}`
    const entry = found.get(key)
    if (entry) entry.count += count
    else found.set(key, { representative: position, count, kernel, split })
  }
}
