import { fillRow, roundMantissa, seededRandom, TensorId } from "../../exec/data.js"
import type { LightningTileResult, LightningTileTask } from "../../exec/lightning-task.js"
import { compareOutputs, mergeChecks, type ExecUnit, type ExpectedCounts, type NumericCheck } from "../../exec/unit.js"
import type { SampleOptions } from "../variant.js"
import { bytesPerElement } from "../dense/schedule.js"
import { fastestDecayHead, negligibleDistance } from "./decay.js"
import type { LightningSchedule } from "./schedule.js"

/**
 * Reason a unit was picked: the schedule's first or last block, a full block of
 * the fastest-decaying head, an interior block, a whole lane, a chain of
 * consecutive blocks, or a seeded random block. The fastest head is where an
 * exponent of a negative distance would overflow. Chains check the state
 * carried from block to block.
 */
export type LightningSampleReason = "first" | "last" | "fastest-decay" | "interior" | "whole-item" | "chain" | "random"

export interface LightningUnit extends ExecUnit {
  readonly kind: "block" | "chain" | "decode"
  readonly reason: LightningSampleReason
  readonly tasks: ReadonlyArray<LightningTileTask>
  readonly expected: ReadonlyArray<ExpectedCounts>
}

/**
 * Incoming states are computed exactly (in float64, from the same deterministic
 * data as the blocks) when they summarize at most this many tokens that still
 * matter; longer histories get a seeded state of the same scale.
 */
export const exactStateMaxTokens = 1024
/** Rows a chain unit may cover: its float64 reference costs O(rows²). */
const chainMaxRows = 1024

/** A (batch, head, value slice) lane of the schedule: the unit of the state recurrence. */
interface Lane {
  readonly index: number
  readonly batch: number
  readonly head: number
  readonly kvHead: number
  readonly slice: number
}

/**
 * Pick a seeded, representative sample of a lightning schedule: the first and
 * last blocks, a full block of the fastest-decaying head, a whole lane or a
 * chain of consecutive blocks, an interior block, then random blocks until the
 * budget (in blocks) is spent. Decode samples lanes the same way. Backward
 * items are priced, not executed.
 */
export function sampleLightning(schedule: LightningSchedule, options: SampleOptions): ReadonlyArray<LightningUnit> {
  const random = seededRandom(options.seed)
  const builder = new LightningTaskBuilder(schedule, options)
  const units: LightningUnit[] = []
  let budget = options.budgetSteps
  const take = (unit: LightningUnit | undefined): void => {
    if (!unit) return
    const steps = unit.tasks.reduce((sum, task) => sum + task.stepRows.length, 0)
    if (steps > budget && units.length >= 2) return
    units.push(unit)
    budget -= steps
  }

  const lanes = schedule.lanes
  const randomLane = (): number => Math.floor(random() * lanes)
  const fastestLane = builder.laneOfHead(fastestDecayHead(schedule.settings.logDecay))

  if (schedule.tiling.scheme === "decode") {
    take(builder.unit(0, 0, 1, "first"))
    take(builder.unit(lanes - 1, 0, 1, "last"))
    take(builder.unit(fastestLane, 0, 1, "fastest-decay"))
    for (let attempt = 0; attempt < 64 && budget > 0; attempt++) take(builder.unit(randomLane(), 0, 1, "random"))
    return units
  }

  const blocks = schedule.blocks
  const fullBlocks = schedule.lastBlockRows === schedule.blockSize ? blocks : blocks - 1
  const randomBlock = (low: number, high: number): number => low + Math.floor(random() * (high - low))
  take(builder.unit(0, 0, 1, "first"))
  take(builder.unit(lanes - 1, blocks - 1, 1, "last"))
  if (fullBlocks > 0) take(builder.unit(fastestLane, fullBlocks > 2 ? randomBlock(1, fullBlocks - 1) : fullBlocks - 1, 1, "fastest-decay"))

  const chainBlocks = Math.min(blocks, options.wholeItemMaxSteps, Math.max(1, Math.floor(chainMaxRows / schedule.blockSize)))
  if (chainBlocks === blocks && blocks > 1) take(builder.unit(randomLane(), 0, blocks, "whole-item"))
  else if (chainBlocks >= 2) take(builder.unit(randomLane(), randomBlock(1, blocks - chainBlocks + 1), chainBlocks, "chain"))

  if (blocks >= 3) take(builder.unit(randomLane(), randomBlock(1, blocks - 1), 1, "interior"))
  for (let attempt = 0; attempt < 64 && budget > 0; attempt++) take(builder.unit(randomLane(), randomBlock(0, blocks), 1, "random"))
  return units
}

/** Builds tasks for lanes of one schedule, with deterministic data and states. */
class LightningTaskBuilder {
  private readonly schedule: LightningSchedule
  private readonly options: SampleOptions
  private readonly random: () => number
  private serial = 0

  constructor(schedule: LightningSchedule, options: SampleOptions) {
    this.schedule = schedule
    this.options = options
    this.random = seededRandom(options.seed ^ 0x2545f491)
  }

  lane(index: number): Lane {
    const { shape, valueSplits } = this.schedule
    const slot = Math.floor(index / valueSplits)
    const head = slot % shape.heads
    return { index, batch: Math.floor(slot / shape.heads), head, kvHead: Math.floor(head / this.schedule.group), slice: index % valueSplits }
  }

  /** The first lane (batch 0, value slice 0) of a head. */
  laneOfHead(head: number): number {
    return head * this.schedule.valueSplits
  }

  /** A unit of `count` consecutive blocks of a lane from `firstBlock` (decode: the lane's one step). */
  unit(laneIndex: number, firstBlock: number, count: number, reason: LightningSampleReason): LightningUnit {
    const { schedule } = this
    const lane = this.lane(laneIndex)
    const decode = schedule.tiling.scheme === "decode"
    const loadsState = decode || (firstBlock === 0 && schedule.loadsState)
    const task = decode ? this.decodeTask(lane) : this.blockTask(lane, firstBlock, count, loadsState)
    const rows = decode ? 1 : Array.from(task.stepRows).reduce((sum, r) => sum + r, 0)
    return {
      kind: decode ? "decode" : count > 1 ? "chain" : "block",
      reason,
      itemIndices: this.itemIndices(lane, firstBlock, count),
      tasks: [task],
      expected: [schedule.taskCounts(firstBlock, count, loadsState)],
      check: (results) => checkLightning(results[0] as LightningTileResult, rows * schedule.valueWidth)
    }
  }

  /** The schedule items whose work the unit runs: the fused walk or decode item, or each block's intra, scan and inter items. */
  private itemIndices(lane: Lane, firstBlock: number, count: number): number[] {
    const { schedule } = this
    const { tiling, blocks } = schedule
    if (tiling.scheme !== "split") return [schedule.firstIndex(tiling.scheme === "decode" ? "decode" : "forward") + lane.index]
    const headSlot = lane.batch * schedule.shape.heads + lane.head
    const blockItems = (kernel: "intra" | "inter") => Array.from({ length: count }, (_, k) => schedule.firstIndex(kernel) + headSlot * blocks + firstBlock + k)
    const scanItems = Array.from({ length: tiling.stateSplits }, (_, slice) => schedule.firstIndex("state-scan") + headSlot * tiling.stateSplits + slice)
    return [...blockItems("intra"), ...scanItems, ...blockItems("inter")]
  }

  private blockTask(lane: Lane, firstBlock: number, count: number, loadsState: boolean): LightningTileTask {
    const { schedule } = this
    const b = schedule.blockSize
    const dk = schedule.shape.headDim
    const e = schedule.valueWidth
    const q = new Float32Array(count * b * dk)
    const k = new Float32Array(count * b * dk)
    const v = new Float32Array(count * b * e)
    const stepRows = new Float32Array(count)
    for (let step = 0; step < count; step++) {
      const block = firstBlock + step
      stepRows[step] = schedule.blockRows(block)
      for (let r = 0; r < stepRows[step]!; r++) {
        const position = schedule.prefixTokens + block * b + r
        this.fillToken(lane, position, (step * b + r) * dk, (step * b + r) * e, q, k, v)
      }
    }
    const summarized = schedule.prefixTokens + firstBlock * b
    return this.task(lane, { stepRows, q, k, v, state: summarized > 0 ? this.incomingState(lane, summarized, loadsState) : undefined, loadsState, blockSize: b })
  }

  /** The new token at the end of the cache, with the state of every token before it (zero for an empty cache). */
  private decodeTask(lane: Lane): LightningTileTask {
    const { shape } = this.schedule
    const dk = shape.headDim
    const e = this.schedule.valueWidth
    const q = new Float32Array(dk)
    const k = new Float32Array(dk)
    const v = new Float32Array(e)
    const position = shape.seqLenKV - 1
    this.fillToken(lane, position, 0, 0, q, k, v)
    const state = position > 0 ? this.incomingState(lane, position, true) : new Float32Array(dk * e)
    return this.task(lane, { stepRows: Float32Array.of(1), q, k, v, state, loadsState: true, blockSize: 1 })
  }

  private task(
    lane: Lane,
    data: Pick<LightningTileTask, "stepRows" | "q" | "k" | "v" | "state" | "loadsState" | "blockSize">
  ): LightningTileTask {
    const { schedule } = this
    return {
      kind: "lightning-forward",
      id: `lightning-${lane.index}-${this.serial++}`,
      backend: this.options.backend,
      layout: schedule.tiling.scheme,
      headDim: schedule.shape.headDim,
      valueWidth: schedule.valueWidth,
      elementBytes: bytesPerElement(schedule.shape),
      stateDtype: schedule.settings.stateDtype,
      logDecay: Math.fround(schedule.settings.logDecay[lane.head]!),
      ...data
    }
  }

  /** Q of the lane's head, K of its KV head, and the lane's slice of V, at one sequence position. */
  private fillToken(lane: Lane, position: number, keyOffset: number, valueOffset: number, q: Float32Array, k: Float32Array, v: Float32Array): void {
    const { shape } = this.schedule
    const { seed } = this.options
    const dk = shape.headDim
    const e = this.schedule.valueWidth
    fillRow(q, keyOffset, dk, { seed, tensor: TensorId.query, batch: lane.batch, head: lane.head, position }, shape.dtype)
    fillRow(k, keyOffset, dk, { seed, tensor: TensorId.key, batch: lane.batch, head: lane.kvHead, position }, shape.dtype)
    const value = new Float32Array(shape.headDimV)
    fillRow(value, 0, shape.headDimV, { seed, tensor: TensorId.value, batch: lane.batch, head: lane.kvHead, position }, shape.dtype)
    v.set(value.subarray(lane.slice * e, (lane.slice + 1) * e), valueOffset)
  }

  /**
   * The state entering position `summarized`: exact (Σ_{j<P} λ^(P−1−j)·k_jᵀv_j
   * in float64 over the tokens that still matter) when that is at most
   * exactStateMaxTokens tokens, otherwise seeded with the same scale. A state
   * loaded from memory is rounded to the stored state dtype.
   */
  private incomingState(lane: Lane, summarized: number, fromMemory: boolean): Float32Array {
    const logDecay = Math.fround(this.schedule.settings.logDecay[lane.head]!)
    const contributing = Math.min(summarized, negligibleDistance(logDecay))
    const state = contributing <= exactStateMaxTokens ? this.exactState(lane, summarized, contributing, logDecay) : this.seededState(summarized, logDecay)
    const dtype = this.schedule.settings.stateDtype
    if (!fromMemory || dtype === "fp32") return state
    const bits = dtype === "bf16" ? 7 : 10
    return state.map((value) => roundMantissa(value, bits))
  }

  private exactState(lane: Lane, summarized: number, contributing: number, logDecay: number): Float32Array {
    const dk = this.schedule.shape.headDim
    const e = this.schedule.valueWidth
    const sum = new Float64Array(dk * e)
    const q = new Float32Array(dk)
    const k = new Float32Array(dk)
    const v = new Float32Array(e)
    for (let position = summarized - contributing; position < summarized; position++) {
      this.fillToken(lane, position, 0, 0, q, k, v)
      const weight = Math.exp((summarized - 1 - position) * logDecay)
      for (let d = 0; d < dk; d++) {
        const scaled = weight * k[d]!
        for (let c = 0; c < e; c++) sum[d * e + c] = sum[d * e + c]! + scaled * v[c]!
      }
    }
    return Float32Array.from(sum)
  }

  /**
   * Entries uniform with the standard deviation of a real state's entry: with
   * k, v uniform in [−1, 1), each k·v term has standard deviation 1/3, and
   * Σ_t λ^t over `summarized` terms of independent signs gives
   * sqrt((1 − λ^(2P)) / (1 − λ²)) / 3.
   */
  private seededState(summarized: number, logDecay: number): Float32Array {
    const dk = this.schedule.shape.headDim
    const e = this.schedule.valueWidth
    const terms = logDecay < 0 ? -Math.expm1(2 * summarized * logDecay) / -Math.expm1(2 * logDecay) : summarized
    const halfWidth = Math.sqrt(3) * (Math.sqrt(terms) / 3)
    return Float32Array.from({ length: dk * e }, () => halfWidth * (2 * this.random() - 1))
  }
}

/**
 * Compare a lightning result with float64: the output rows (the first
 * `realOutputs` values; padding rows must be exactly zero) and the outgoing state.
 */
export function checkLightning(result: LightningTileResult, realOutputs: number): NumericCheck {
  const output = compareOutputs(result.output, result.referenceOutput, result.output.length, realOutputs)
  const state = compareOutputs(result.state, result.referenceState, result.state.length)
  return mergeChecks([output, state])
}
