import type { WorkCounts } from "../../cost/counts.js"
import type { ExpectedCounts } from "../../exec/unit.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { ItemClass, Schedule } from "../schedule.js"
import { bytesPerElement } from "../dense/schedule.js"
import type { LightningSettings } from "./options.js"
import { chunkRows, type LightningTiling } from "./tiling.js"
import {
  addWork,
  backwardDkdvBlock,
  backwardDqBlock,
  backwardInterBlock,
  backwardIntraBlock,
  decodeStep,
  fusedBlock,
  interBlock,
  intraBlock,
  maskAndQueryDecayExps,
  noWork,
  scaleWork,
  scanBlock,
  toWorkCounts,
  type BlockDims,
  type Work
} from "./work.js"

export type LightningKernelName =
  | "forward"
  | "intra"
  | "state-scan"
  | "inter"
  | "decode"
  | "backward"
  | "backward-intra"
  | "backward-state-scan"
  | "backward-inter"

/**
 * One CTA. Per-block kernels (intra, inter and their backward forms) own one
 * block. Walks (fused forward, backward, scans) own every block of their
 * (batch, head, slice) in order, and the dK/dV walk goes in reverse.
 */
export interface LightningWorkItem {
  readonly index: number
  readonly kernel: LightningKernelName
  readonly batch: number
  readonly head: number
  readonly kvHead: number
  /** Value-column slice (fused forward, decode), state slice (scans), otherwise 0. */
  readonly slice: number
  /** Blocks [firstBlock, endBlock) of the query chunk. */
  readonly firstBlock: number
  readonly endBlock: number
  /** Backward walks: "dq" walks the blocks forward, "dkdv" in reverse. */
  readonly role?: "dq" | "dkdv" | undefined
}

/** One block a work item processes: query rows [start, start + rows) of the chunk. */
export interface BlockStep {
  readonly block: number
  readonly start: number
  readonly rows: number
}

/** A run of items of one kernel, in index order. */
interface Segment {
  readonly kernel: LightningKernelName
  readonly count: number
  readonly item: (local: number, index: number) => LightningWorkItem
}

export interface LightningScheduleInput {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly settings: LightningSettings
  readonly tiling: LightningTiling
}

/**
 * The lightning tile schedule. The query chunk is seqLenQ tokens after a prefix
 * of seqLenKV − seqLenQ tokens, which reaches the chunk only through its state.
 * It is cut into blocks of B rows from the chunk start, and only the last block
 * may be partial. Items are numbered kernel by kernel; within a kernel the fastest
 * index is the block (per-block kernels) or the slice (walks), then the head,
 * then the batch.
 */
export class LightningSchedule implements Schedule<LightningWorkItem> {
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly settings: LightningSettings
  readonly tiling: LightningTiling
  readonly blockSize: number
  /** Blocks per query chunk (0 in one-token decode). */
  readonly blocks: number
  readonly lastBlockRows: number
  /** Tokens before the chunk, summarized by an incoming state loaded from memory. */
  readonly prefixTokens: number
  readonly loadsState: boolean
  readonly group: number
  /** Value columns per executed lane (a slice of dv for fused and decode). */
  readonly valueWidth: number
  readonly valueSplits: number
  readonly size: number
  readonly classes: ReadonlyArray<ItemClass<LightningWorkItem>>
  private readonly segments: ReadonlyArray<Segment>

  constructor(input: LightningScheduleInput) {
    const { shape, tiling } = input
    this.shape = shape
    this.phase = input.phase
    this.settings = input.settings
    this.tiling = tiling
    this.blockSize = input.settings.blockSize
    this.group = shape.heads / shape.kvHeads
    this.prefixTokens = shape.seqLenKV - shape.seqLenQ
    this.loadsState = this.prefixTokens > 0
    this.blocks = tiling.scheme === "decode" ? 0 : Math.ceil(shape.seqLenQ / this.blockSize)
    this.lastBlockRows = tiling.scheme === "decode" ? 1 : shape.seqLenQ - (this.blocks - 1) * this.blockSize
    this.valueSplits = tiling.scheme === "split" ? 1 : tiling.valueSplits
    this.valueWidth = shape.headDimV / this.valueSplits
    this.segments = this.buildSegments()
    this.size = this.segments.reduce((sum, segment) => sum + segment.count, 0)
    this.classes = this.buildClasses()
  }

  /** Elements of the dk × dv state one scan CTA owns. */
  get scanElements(): number {
    return this.tiling.scheme === "split" ? (this.shape.headDim * this.shape.headDimV) / this.tiling.stateSplits : 0
  }

  /** Executed chains: (batch, head, value slice) lanes, each walking every block. */
  get lanes(): number {
    return this.shape.batch * this.shape.heads * this.valueSplits
  }

  dims(valueWidth = this.valueWidth): BlockDims {
    const { tiling } = this
    return {
      blockSize: this.blockSize,
      headDim: this.shape.headDim,
      valueWidth,
      elementBytes: bytesPerElement(this.shape),
      stateBytes: this.settings.stateBytes,
      chunkRows: tiling.scheme === "decode" ? 1 : chunkRows(tiling.consumerGroups, this.blockSize),
      streamKeys: tiling.scheme !== "decode" && tiling.streamKeys
    }
  }

  item(index: number): LightningWorkItem {
    if (!Number.isInteger(index) || index < 0 || index >= this.size) {
      throw new RangeError(`work item ${index} is outside the schedule's ${this.size} items`)
    }
    let local = index
    for (const segment of this.segments) {
      if (local < segment.count) return segment.item(local, index)
      local -= segment.count
    }
    throw new RangeError(`work item ${index} is outside the schedule's ${this.size} items`)
  }

  /** Index of the first item of a kernel, or −1 when the schedule has none. */
  firstIndex(kernel: LightningKernelName): number {
    let offset = 0
    for (const segment of this.segments) {
      if (segment.kernel === kernel) return offset
      offset += segment.count
    }
    return -1
  }

  blockRows(block: number): number {
    return block === this.blocks - 1 ? this.lastBlockRows : this.blockSize
  }

  /** Lists the blocks an item processes, in the order it processes them. */
  steps(item: LightningWorkItem): ReadonlyArray<BlockStep> {
    if (item.kernel === "decode") return [{ block: 0, start: 0, rows: this.shape.seqLenQ }]
    const steps: BlockStep[] = []
    for (let block = item.firstBlock; block < item.endBlock; block++) {
      steps.push({ block, start: block * this.blockSize, rows: this.blockRows(block) })
    }
    return item.role === "dkdv" ? steps.reverse() : steps
  }

  counts(item: LightningWorkItem): WorkCounts {
    return toWorkCounts(this.work(item))
  }

  /** Work of one item, before the HBM split (see cost.ts). */
  work(item: LightningWorkItem): Work {
    const dims = this.dims()
    const full = this.dims(this.shape.headDimV)
    const b = this.blockSize
    switch (item.kernel) {
      case "forward":
        return addWork(this.sumBlocks(item, (block, rows) => fusedBlock(dims, rows, this.hasState(block))), this.walkExtras(dims))
      case "intra":
        return intraBlock(full, this.blockRows(item.firstBlock))
      case "inter":
        return interBlock(full, this.blockRows(item.firstBlock), this.hasState(item.firstBlock))
      case "state-scan":
        return addWork(scaleWork(scanBlock(this.scanElements, this.settings.stateBytes), this.blocks), this.scanEnds())
      case "decode":
        return decodeStep(dims)
      case "backward": {
        const perBlock = item.role === "dq" ? backwardDqBlock : backwardDkdvBlock
        const exps = maskAndQueryDecayExps(b) + b * this.keyDecayRuns(0, this.blocks)
        return addWork(this.sumBlocks(item, (_, rows) => perBlock(full, rows)), { ...noWork, exp: exps })
      }
      case "backward-intra":
        return backwardIntraBlock(full, this.blockRows(item.firstBlock))
      case "backward-inter":
        return backwardInterBlock(full, this.blockRows(item.firstBlock))
      case "backward-state-scan":
        // The KV prefix scan forward and the dKV suffix scan backward, each over every block.
        return scaleWork(scanBlock(this.scanElements, this.settings.stateBytes), 2 * this.blocks)
    }
  }

  /**
   * Counts the executor must reproduce for a task that runs `count` blocks of
   * one lane from `firstBlock`, loading its incoming state from memory when
   * `loadsState`: the fused walk's blocks, or for the split layout each block's
   * intra CTA, scan step and inter CTA.
   */
  taskCounts(firstBlock: number, count: number, loadsState: boolean): ExpectedCounts {
    const { headDim: dk } = this.shape
    if (this.tiling.scheme === "decode") {
      const work = decodeStep(this.dims())
      return { tensorFlops: work.tensor, expOps: work.exp, loadBytes: work.loads }
    }
    const lane: LightningWorkItem = { index: -1, kernel: "forward", batch: 0, head: 0, kvHead: 0, slice: 0, firstBlock, endBlock: firstBlock + count }
    if (this.tiling.scheme === "fused") {
      const dims = this.dims()
      const work = addWork(
        this.sumBlocks(lane, (block, rows) => fusedBlock(dims, rows, this.hasState(block))),
        { ...noWork, exp: maskAndQueryDecayExps(this.blockSize) + this.blockSize * this.keyDecayRuns(firstBlock, firstBlock + count) }
      )
      return { tensorFlops: work.tensor, expOps: work.exp, loadBytes: work.loads + (loadsState ? dk * this.valueWidth * this.settings.stateBytes : 0) }
    }
    const full = this.dims(this.shape.headDimV)
    const stateElements = dk * this.shape.headDimV
    const work = this.sumBlocks(lane, (block, rows) =>
      addWork(addWork(intraBlock(full, rows), interBlock(full, rows, this.hasState(block))), scanBlock(stateElements, this.settings.stateBytes))
    )
    return { tensorFlops: work.tensor, expOps: work.exp, loadBytes: work.loads + (loadsState ? stateElements * this.settings.stateBytes : 0) }
  }

  /** Tells whether block `block` starts with a state that is not identically zero. */
  hasState(block: number): boolean {
    return block > 0 || this.loadsState
  }

  /**
   * Runs of equal block length over blocks [first, end): key decays λ^(L−1−b)
   * depend on the block length L, so a walk computes them again when the
   * partial last block arrives.
   */
  keyDecayRuns(first: number, end: number): number {
    if (end <= first) return 0
    const lastIsPartial = end === this.blocks && this.lastBlockRows !== this.blockSize
    return 1 + (lastIsPartial && end - first > 1 ? 1 : 0)
  }

  /**
   * Sum a per-block work function over an item's blocks. The work depends on a
   * block only through whether it is the first block and whether it is the
   * (possibly partial) last one, so three evaluations cover any range.
   */
  private sumBlocks(item: LightningWorkItem, perBlock: (block: number, rows: number) => Work): Work {
    const { firstBlock: first, endBlock: end } = item
    if (end <= first) return noWork
    let total = perBlock(first, this.blockRows(first))
    if (end - first >= 2) total = addWork(total, perBlock(end - 1, this.blockRows(end - 1)))
    if (end - first >= 3) total = addWork(total, scaleWork(perBlock(first + 1, this.blockRows(first + 1)), end - first - 2))
    return total
  }

  /** Per-CTA work of the fused walk besides its blocks: mask and decays, the incoming state load, the final state store. */
  private walkExtras(dims: BlockDims): Work {
    const stateBytes = this.shape.headDim * dims.valueWidth * this.settings.stateBytes
    return {
      ...noWork,
      exp: maskAndQueryDecayExps(this.blockSize) + this.blockSize * this.keyDecayRuns(0, this.blocks),
      loads: this.loadsState ? stateBytes : 0,
      stores: stateBytes
    }
  }

  /** Counts a scan CTA's incoming state slice (when there is a prefix) and its final state slice. */
  private scanEnds(): Work {
    const bytes = this.scanElements * this.settings.stateBytes
    return { ...noWork, loads: this.loadsState ? bytes : 0, stores: bytes }
  }

  private buildSegments(): Segment[] {
    const { shape, tiling, phase } = this
    const heads = shape.heads
    const lanes = shape.batch * heads
    const headOf = (slot: number) => ({ batch: Math.floor(slot / heads), head: slot % heads, kvHead: Math.floor((slot % heads) / this.group) })
    const walk = (kernel: LightningKernelName, slices: number, role?: "dq" | "dkdv"): Segment => ({
      kernel,
      count: lanes * slices,
      item: (local, index) => ({ index, kernel, ...headOf(Math.floor(local / slices)), slice: local % slices, firstBlock: 0, endBlock: this.blocks, role })
    })
    const perBlock = (kernel: LightningKernelName): Segment => ({
      kernel,
      count: lanes * this.blocks,
      item: (local, index) => {
        const block = local % this.blocks
        return { index, kernel, ...headOf(Math.floor(local / this.blocks)), slice: 0, firstBlock: block, endBlock: block + 1 }
      }
    })

    if (tiling.scheme === "decode") return [walk("decode", tiling.valueSplits)]
    if (tiling.scheme === "fused") {
      const segments = [walk("forward", tiling.valueSplits)]
      if (phase === "train") {
        // dQ walks and dK/dV walks are independent, so one launch runs both: lanes of each.
        segments.push({
          kernel: "backward",
          count: 2 * lanes,
          item: (local, index) => ({
            ...walk("backward", 1).item(local % lanes, index),
            role: local < lanes ? "dq" : "dkdv"
          })
        })
      }
      return segments
    }
    const segments = [perBlock("intra"), walk("state-scan", tiling.stateSplits), perBlock("inter")]
    if (phase === "train") segments.push(perBlock("backward-intra"), walk("backward-state-scan", tiling.stateSplits), perBlock("backward-inter"))
    return segments
  }

  /**
   * Groups items by identical work. Per-block kernels differ only at the first
   * block (no state yet) and the last block (possibly partial), so a kernel has
   * at most three classes. Walks of one kernel and role are all alike.
   */
  private buildClasses(): ReadonlyArray<ItemClass<LightningWorkItem>> {
    const classes: Array<ItemClass<LightningWorkItem>> = []
    const lanes = this.shape.batch * this.shape.heads
    let offset = 0
    for (const segment of this.segments) {
      const perBlock = ["intra", "inter", "backward-intra", "backward-inter"].includes(segment.kernel)
      if (perBlock) {
        const representatives = [...new Set([0, Math.min(1, this.blocks - 1), this.blocks - 1])]
        for (const block of representatives) {
          const middle = block !== 0 && block !== this.blocks - 1
          const count = middle ? lanes * (this.blocks - 2) : lanes
          const representative = this.item(offset + block)
          classes.push({ kernel: segment.kernel, count, representative, counts: this.counts(representative) })
        }
      } else if (segment.kernel === "backward") {
        for (const local of [0, lanes]) {
          const representative = this.item(offset + local)
          classes.push({ kernel: segment.kernel, count: lanes, representative, counts: this.counts(representative) })
        }
      } else {
        const representative = this.item(offset)
        classes.push({ kernel: segment.kernel, count: segment.count, representative, counts: this.counts(representative) })
      }
      offset += segment.count
    }
    return classes
  }
}
