import { seededRandom, TensorId } from "../../exec/data.js"
import type { AttentionTileResult, AttentionTileTask, TileResult } from "../../exec/task.js"
import { compareOutputs, mergeChecks, type ExecUnit, type ExpectedCounts, type NumericCheck } from "../../exec/unit.js"
import type { AttentionShape } from "../../workload/shape.js"
import { combineSplits } from "../dense/combine.js"
import { maskedScore } from "../dense/kernels.js"
import { checkAttention } from "../dense/sample.js"
import { bytesPerElement, itemQueryRows, type DenseSchedule, type DenseWorkItem } from "../dense/schedule.js"
import type { SampleOptions } from "../variant.js"
import { gateStepCounts, gateTile } from "./aux-cost.js"
import { blockOf, historySlots, queryPosition } from "./blocks.js"
import { blockMeanKey, gateScores, seededData, selectBlocks, unionExcess, type TensorData } from "./gating.js"
import { isMobaGatingResult, type MobaGatingResult, type MobaGatingTask } from "./gating-task.js"
import type { HistoryItem, HistoryStep } from "./history-schedule.js"
import type { CurrentBlockPart, MobaPlan } from "./plan.js"
import { referenceRow } from "./reference.js"

/**
 * Reason a unit was picked. "gating": one gating CTA's rows (all G heads of a
 * KV head) scored by the gpu.js kernel, with top-k on the host, against
 * float64. "merged": sampled queries' current-block tiles and one task per
 * selected (head, block), merged by log-sum-exp and compared with float64
 * attention over the query's selected keys. "merged-leading-tiles" is the same
 * when the budget covers only the leading key tiles of some block, and the
 * reference then takes exactly those keys. The rest are single tiles of the
 * current-block and history schedules.
 */
export type MobaSampleReason =
  | "gating"
  | "merged"
  | "merged-leading-tiles"
  | "current-first"
  | "current-last"
  | "current-diagonal"
  | "history-first"
  | "history-last"
  | "history-random"

/**
 * Most keys whose block means one row's sample pools on the host (float64
 * means of the dtype-rounded keys): about a second of hashing at 2^20 keys of
 * head dim 128. Gating and merged units run only for queries whose past blocks
 * fit, so a 10M-token row samples an early block.
 */
export const poolKeyBudget = 1 << 20

/** Names of the quantities gating units measure (summed over units, see NumericCheck.measured). */
export const measuredKeys = {
  excess: "moba.unionExcess",
  maxExcess: "moba.unionExcessMax",
  positions: "moba.gatedPositions"
} as const

/** Relative gap within which a kernel and a float64 selection may differ (a near tie in FP32). */
const nearTie = 1e-5

interface QueryRow {
  readonly head: number
  readonly position: number
}

interface Focus {
  readonly batch: number
  readonly kvHead: number
  /** Query positions of one gating CTA, all in block `block` (prefill) or the decode queries. */
  readonly positions: ReadonlyArray<number>
  readonly block: number
}

/**
 * Samples a MoBA plan's work as executable units, seeded, from the same
 * schedules the cost model prices: the gating CTA, the dense plans of the
 * current block and the history schedule. Units go in by priority (gating,
 * merged, first and last tiles of both attention parts, a diagonal tile,
 * random history tiles) while the attention steps stay within budgetSteps.
 * Gating steps (score tiles of 64 block means) do not count against it.
 */
export function sampleMoba(plan: MobaPlan, options: SampleOptions, data: TensorData = seededData(plan.request.shape.dtype)): ExecUnit[] {
  const builder = new UnitBuilder(plan, options, data)
  return builder.build()
}

class UnitBuilder {
  private readonly plan: MobaPlan
  private readonly options: SampleOptions
  private readonly data: TensorData
  private readonly shape: AttentionShape
  private readonly random: () => number
  private readonly units: ExecUnit[] = []
  private budget: number
  private serial = 0

  constructor(plan: MobaPlan, options: SampleOptions, data: TensorData) {
    this.plan = plan
    this.options = options
    this.data = data
    this.shape = plan.request.shape
    this.random = seededRandom(options.seed)
    this.budget = options.budgetSteps
  }

  build(): ExecUnit[] {
    const focus = this.focus()
    const selections = focus && this.plan.gated ? this.gatingUnit(focus) : undefined
    if (focus && (selections || !this.plan.gated)) this.mergedUnit(focus, selections)

    const parts = this.plan.currentBlock
    const firstPart = parts[0]!
    const lastPart = parts[parts.length - 1]!
    this.take(this.currentStepUnit(firstPart, 0, "first", "current-first"))
    this.take(this.currentStepUnit(lastPart, lastPart.plan.schedule.forwardItems - 1, "last", "current-last"))
    const history = this.plan.history
    if (history) {
      this.take(this.historyStepUnit(0, "first", "history-first"))
      this.take(this.historyStepUnit(history.forwardItems - 1, "last", "history-last"))
    }
    const diagonal = this.findDiagonal()
    if (diagonal) this.take(this.currentStepUnit(diagonal.part, diagonal.index, diagonal.step, "current-diagonal"))
    for (let attempt = 0; history && attempt < 32 && this.budget > 0; attempt++) {
      this.take(this.historyStepUnit(Math.floor(this.random() * history.forwardItems), "random", "history-random"))
    }
    return this.units
  }

  /** Add a unit if its attention steps fit the budget (the first two always go in). */
  private take(unit: ExecUnit | undefined): void {
    if (!unit) return
    const steps = attentionSteps(unit)
    if (steps > this.budget && this.units.length >= 2) return
    this.units.push(unit)
    this.budget -= steps
  }

  /**
   * Picks the queries the gating and merged units check. Decode takes the
   * decode queries. Prefill takes one gating CTA at the start of the latest
   * block whose past blocks fit poolKeyBudget, because a tile at a block start
   * has few current-block steps. Returns undefined when no past blocks fit.
   */
  private focus(): Focus | undefined {
    const { shape, plan } = this
    const { blockSize } = plan.config
    const kvHead = Math.floor(this.random() * shape.kvHeads)
    const batch = shape.batch - 1
    const tile = gateTile(shape, plan.request.phase)
    if (plan.request.phase === "decode") {
      const positions = Array.from({ length: Math.min(shape.seqLenQ, tile.positions) }, (_, i) => queryPosition(shape, shape.seqLenQ - 1 - i)).reverse()
      const block = blockOf(positions[positions.length - 1]!, blockSize)
      return block * blockSize <= poolKeyBudget ? { batch, kvHead, positions, block } : undefined
    }
    const firstQuery = queryPosition(shape, 0)
    const block = Math.min(blockOf(shape.seqLenKV - 1, blockSize), Math.floor(poolKeyBudget / blockSize))
    if (block < blockOf(firstQuery, blockSize)) return undefined
    const start = Math.max(firstQuery, block * blockSize)
    const end = Math.min(shape.seqLenKV, (block + 1) * blockSize, start + tile.positions)
    return { batch, kvHead, positions: Array.from({ length: end - start }, (_, i) => start + i), block }
  }

  private queryRow(out: Float32Array, row: number, batch: number, query: QueryRow): void {
    const dk = this.shape.headDim
    this.data.fill(out, row * dk, dk, { seed: this.options.seed, tensor: TensorId.query, batch, head: query.head, position: query.position })
  }

  /**
   * Adds the gating unit and returns the float64 selections it is checked
   * against, which the merged unit then attends. Row r is head
   * kvHead·G + floor(r / P) at position positions[r mod P], as a gating CTA packs them.
   */
  private gatingUnit(focus: Focus): Map<string, number[]> | undefined {
    const { shape, plan } = this
    const { blockSize, topK } = plan.config
    const dk = shape.headDim
    const group = shape.heads / shape.kvHeads
    const tile = gateTile(shape, plan.request.phase)
    const rowsOf = focus.positions.length
    const realRows = group * rowsOf
    const candidates = focus.block
    if (candidates === 0) return new Map(focus.positions.flatMap((position) => headsOf(focus, group).map((head) => [`${head}:${position}`, [blockOf(position, blockSize)]])))

    const at = { seed: this.options.seed, batch: focus.batch, kvHead: focus.kvHead }
    const means64 = Array.from({ length: candidates }, (_, block) => blockMeanKey(this.data, at, block, blockSize, dk))
    const steps = Math.ceil(candidates / tile.blockTile)
    const stepStart = new Float32Array(steps)
    const stepBlocks = new Float32Array(steps)
    const means = new Float32Array(steps * tile.blockTile * dk)
    const meansReference = new Float64Array(steps * tile.blockTile * dk)
    for (let step = 0; step < steps; step++) {
      stepStart[step] = step * tile.blockTile
      stepBlocks[step] = Math.min(tile.blockTile, candidates - step * tile.blockTile)
      for (let j = 0; j < stepBlocks[step]!; j++) {
        const mean = means64[step * tile.blockTile + j]!
        const offset = (step * tile.blockTile + j) * dk
        for (let c = 0; c < dk; c++) {
          means[offset + c] = mean[c]!
          meansReference[offset + c] = mean[c]!
        }
      }
    }

    const q = new Float32Array(tile.rows * dk)
    const currentBlock = new Float32Array(tile.rows)
    const selections = new Map<string, number[]>()
    const rowQueries: QueryRow[] = []
    for (let r = 0; r < realRows; r++) {
      const query = { head: focus.kvHead * group + Math.floor(r / rowsOf), position: focus.positions[r % rowsOf]! }
      rowQueries.push(query)
      this.queryRow(q, r, focus.batch, query)
      const current = blockOf(query.position, blockSize)
      currentBlock[r] = current
      const scores = gateScores(q.subarray(r * dk, (r + 1) * dk), means64.slice(0, current), dk)
      selections.set(`${query.head}:${query.position}`, selectBlocks(scores, current, topK))
    }

    const task: MobaGatingTask = {
      kind: "moba-gating",
      id: `moba-gating-${this.serial++}`,
      backend: this.options.backend,
      rows: tile.rows,
      realRows,
      blockTile: tile.blockTile,
      headDim: dk,
      elementBytes: bytesPerElement(shape),
      topK,
      stepStart,
      stepBlocks,
      q,
      means,
      meansReference,
      currentBlock
    }
    const expected = Array.from(stepBlocks).reduce(
      (sum, blocks) => addCounts(sum, gateStepCounts(tile, blocks, shape)),
      { tensorFlops: 0, expOps: 0, loadBytes: 0 }
    )
    this.units.push({
      kind: "gating",
      reason: "gating",
      itemIndices: [],
      tasks: [task],
      expected: [expected],
      check: (results) => checkGating(results[0]!, rowQueries, topK, group)
    })
    return selections
  }

  /**
   * Adds the merged unit: as many focus queries of the group's first head as
   * fit the budget, their current-block items (every split), and for each
   * history block they selected the history schedule's items for it. Current
   * steps take at most half the allowance when there is history, and each
   * history block gets an equal share of the rest. Steps that do not fit are
   * left out, and the reference takes exactly the keys of the steps that ran.
   */
  private mergedUnit(focus: Focus, selections: Map<string, number[]> | undefined): void {
    const { shape, plan } = this
    const { blockSize, topK } = plan.config
    const group = shape.heads / shape.kvHeads
    const head = focus.kvHead * group
    const part = plan.currentBlock.find((p) => p.group.blocks.includes(focus.block))
    if (!part) return
    const schedule = part.plan.schedule

    const selectionOf = (position: number): number[] => {
      const found = selections?.get(`${head}:${position}`)
      if (found) return found
      const current = blockOf(position, blockSize)
      return [...Array.from({ length: historySlots(current, topK) }, (_, j) => j), current]
    }
    const historyOf = (position: number): number[] => selectionOf(position).slice(0, -1)
    const currentItems = (positions: ReadonlyArray<number>) => uniqueItems(positions.flatMap((p) => denseItemsFor(part, focus.batch, head, p, blockSize)))
    const stepsOf = (items: ReadonlyArray<DenseWorkItem>) => items.reduce((sum, item) => sum + schedule.steps(item).length, 0)

    // Grow the row set while its current-block steps and one step per history block fit.
    const allowance = Math.max(2, this.budget - 4)
    let rows = [focus.positions[0]!]
    for (const position of focus.positions.slice(1)) {
      const candidate = [...rows, position]
      const blocks = new Set(candidate.flatMap(historyOf))
      if (stepsOf(currentItems(candidate)) + blocks.size > allowance) break
      rows = candidate
    }
    const blocks = [...new Set(rows.flatMap(historyOf))].sort((a, b) => a - b)
    const history = blocks.length > 0 ? plan.history : undefined

    const built: Array<{ task: AttentionTileTask; expected: ExpectedCounts; queries: ReadonlyArray<QueryRow>; index: number }> = []
    const covered: Array<{ start: number; end: number }> = []
    let whole = true
    let left = history ? Math.max(1, Math.floor(allowance / 2)) : allowance
    for (const item of currentItems(rows)) {
      const count = Math.min(left, schedule.steps(item).length)
      if (count < schedule.steps(item).length) whole = false
      if (count === 0) continue
      left -= count
      const { task, expected, queries } = this.currentTask(part, item, Array.from({ length: count }, (_, i) => i))
      built.push({ task, expected, queries, index: item.index })
      task.stepStart.forEach((start, i) => covered.push({ start, end: start + task.stepKeys[i]! }))
    }

    if (history) {
      const used = built.reduce((sum, b) => sum + b.task.stepStart.length, 0)
      const perBlock = Math.max(1, Math.floor((allowance - used) / blocks.length))
      const owner = history.selection === "per-head" ? head : focus.kvHead
      blocks.forEach((block, slot) => {
        const segment = segmentFor(plan, block, slot)
        const readers = rows.filter((position) => historyOf(position).includes(block)).map((position) => ({ head, position }))
        let share = perBlock
        for (let split = 0; split < history.tiling.splits; split++) {
          const item = history.item(history.forwardIndex(focus.batch, owner, segment, 0, split))
          const steps = history.steps(item)
          const coveredSteps = steps.slice(0, share)
          if (coveredSteps.length < steps.length) whole = false
          if (coveredSteps.length === 0) continue
          share -= coveredSteps.length
          const { task, expected, queries } = this.historyTask(item, coveredSteps, block, readers, focus.batch)
          built.push({ task, expected, queries, index: item.index })
          for (const step of coveredSteps) covered.push({ start: block * blockSize + step.start, end: block * blockSize + step.end })
        }
      })
    }

    const taskRows = built.map((b) => b.queries)
    const queries = rows.map((position) => ({ head, position }))
    const covers = (key: number): boolean => covered.some((range) => key >= range.start && key < range.end)
    const unit: ExecUnit = {
      kind: "merged",
      reason: whole ? "merged" : "merged-leading-tiles",
      itemIndices: built.map((b) => b.index),
      tasks: built.map((b) => b.task),
      expected: built.map((b) => b.expected),
      check: (results) =>
        checkMerged(results as ReadonlyArray<AttentionTileResult>, taskRows, queries, shape.headDimV, (query) =>
          referenceRow(this.data, shape, plan.config, { seed: this.options.seed, batch: focus.batch, ...query }, covers, selectionOf(query.position)).output
        )
    }
    this.units.push(unit)
    this.budget -= attentionSteps(unit)
  }

  /** An attention task for current-block item `item`, with its steps `stepIndices`, in absolute key positions. */
  private currentTask(
    part: CurrentBlockPart,
    item: DenseWorkItem,
    stepIndices: ReadonlyArray<number>
  ): { task: AttentionTileTask; expected: ExpectedCounts; queries: ReadonlyArray<QueryRow> } {
    const schedule = part.plan.schedule
    const { blockSize } = this.plan.config
    const chunks = part.group.blocks.length
    const batch = Math.floor(item.batch / chunks)
    const blockStart = part.group.blocks[item.batch % chunks]! * blockSize
    const offset = part.group.seqLenKV - part.group.seqLenQ
    const perHead = item.queryEnd - item.queryStart
    const queries: QueryRow[] = Array.from({ length: itemQueryRows(item) }, (_, r) => ({
      head: item.heads[Math.floor(r / perHead)]!,
      position: blockStart + offset + item.queryStart + (r % perHead)
    }))
    const all = schedule.steps(item)
    const steps = stepIndices.map((i) => ({ start: blockStart + all[i]!.start, end: blockStart + all[i]!.end }))
    const task = this.attentionTask({
      rows: item.rows,
      blockN: schedule.tiling.blockN,
      batch,
      kvHead: item.kvHead,
      queries,
      visible: queries.map((q) => ({ lo: blockStart, hi: q.position + 1 })),
      steps
    })
    const expected = stepIndices.reduce((sum, i) => addCounts(sum, schedule.stepCounts(item, all[i]!)), { tensorFlops: 0, expOps: 0, loadBytes: 0 })
    return { task, expected, queries }
  }

  private currentStepUnit(part: CurrentBlockPart, index: number, stepChoice: number | "first" | "last", reason: MobaSampleReason): ExecUnit | undefined {
    const schedule = part.plan.schedule
    if (index < 0 || index >= schedule.forwardItems) return undefined
    const item = schedule.item(index)
    const steps = schedule.steps(item)
    if (steps.length === 0) return undefined
    let step = stepChoice === "last" ? steps.length - 1 : 0
    if (typeof stepChoice === "number") step = stepChoice
    const { task, expected } = this.currentTask(part, item, [step])
    return stepUnit(reason, [item.index], task, expected, this.shape.headDimV)
  }

  /** A step the mask cuts (a diagonal tile) of a random current-block item. */
  private findDiagonal(): { part: CurrentBlockPart; index: number; step: number } | undefined {
    for (let attempt = 0; attempt < 16; attempt++) {
      const part = this.plan.currentBlock[Math.floor(this.random() * this.plan.currentBlock.length)]!
      const index = Math.floor(this.random() * part.plan.schedule.forwardItems)
      const step = part.plan.schedule.steps(part.plan.schedule.item(index)).findIndex((s) => s.partial)
      if (step >= 0) return { part, index, step }
    }
    return undefined
  }

  /**
   * Builds a unit of one key tile of history item `index`, for seeded queries
   * after its block. A prefill segment names its block. Decode leaves the block
   * to the data, so the tile takes the (slot + 1)-th most recent past block.
   */
  private historyStepUnit(index: number, stepChoice: "first" | "last" | "random", reason: MobaSampleReason): ExecUnit | undefined {
    const history = this.plan.history!
    const item = history.item(index)
    const steps = history.steps(item)
    if (steps.length === 0) return undefined
    let step = stepChoice === "last" ? steps.length - 1 : 0
    if (stepChoice === "random") step = Math.floor(this.random() * steps.length)
    const { shape } = this
    const { blockSize } = this.plan.config
    const segment = history.segments[item.segment]!
    const group = shape.heads / shape.kvHeads
    const lastBlock = blockOf(shape.seqLenKV - 1, blockSize)
    const block = segment.block >= 0 ? segment.block : Math.max(0, lastBlock - 1 - (item.segment % Math.max(1, lastBlock)))
    const firstAfter = Math.max(queryPosition(shape, 0), (block + 1) * blockSize)
    const queries: QueryRow[] = Array.from({ length: item.realRows }, (_, r) => ({
      head: history.selection === "per-head" ? item.owner : item.owner * group + (r % group),
      position: firstAfter + Math.floor(this.random() * Math.max(1, shape.seqLenKV - firstAfter))
    }))
    const { task, expected } = this.historyTask(item, [steps[step]!], block, queries, item.batch)
    return stepUnit(reason, [item.index], task, expected, shape.headDimV)
  }

  /** An attention task over `steps` of a history item, with `queries` as its real rows. */
  private historyTask(
    item: HistoryItem,
    steps: ReadonlyArray<HistoryStep>,
    block: number,
    queries: ReadonlyArray<QueryRow>,
    batch: number
  ): { task: AttentionTileTask; expected: ExpectedCounts; queries: ReadonlyArray<QueryRow> } {
    const history = this.plan.history!
    const { blockSize } = this.plan.config
    const group = this.shape.heads / this.shape.kvHeads
    const start = block * blockSize
    const task = this.attentionTask({
      rows: history.tiling.blockM,
      blockN: history.tiling.blockN,
      batch,
      kvHead: Math.floor((queries[0]?.head ?? item.owner * (history.selection === "per-head" ? 1 : group)) / group),
      queries,
      visible: queries.map(() => ({ lo: start, hi: start + blockSize })),
      steps: steps.map((s) => ({ start: start + s.start, end: start + s.end }))
    })
    const expected = steps.reduce((sum, s) => addCounts(sum, history.stepCounts(s)), { tensorFlops: 0, expOps: 0, loadBytes: 0 })
    return { task, expected, queries }
  }

  private attentionTask(input: {
    rows: number
    blockN: number
    batch: number
    kvHead: number
    queries: ReadonlyArray<QueryRow>
    visible: ReadonlyArray<{ lo: number; hi: number }>
    steps: ReadonlyArray<{ start: number; end: number }>
  }): AttentionTileTask {
    const { shape } = this
    const dk = shape.headDim
    const dv = shape.headDimV
    const { rows, blockN, steps } = input
    const q = new Float32Array(rows * dk)
    const rowLo = new Float32Array(rows)
    const rowHi = new Float32Array(rows)
    input.queries.forEach((query, r) => {
      this.queryRow(q, r, input.batch, query)
      rowLo[r] = input.visible[r]!.lo
      rowHi[r] = input.visible[r]!.hi
    })
    const k = new Float32Array(steps.length * blockN * dk)
    const v = new Float32Array(steps.length * blockN * dv)
    const stepStart = new Float32Array(steps.length)
    const stepKeys = new Float32Array(steps.length)
    steps.forEach((step, index) => {
      stepStart[index] = step.start
      stepKeys[index] = step.end - step.start
      for (let key = step.start; key < step.end; key++) {
        const row = index * blockN + (key - step.start)
        const at = { seed: this.options.seed, batch: input.batch, head: input.kvHead, position: key }
        this.data.fill(k, row * dk, dk, { ...at, tensor: TensorId.key })
        this.data.fill(v, row * dv, dv, { ...at, tensor: TensorId.value })
      }
    })
    return {
      kind: "attention-forward",
      id: `moba-${this.serial++}`,
      backend: this.options.backend,
      rows,
      realRows: input.queries.length,
      blockN,
      headDim: dk,
      headDimV: dv,
      elementBytes: bytesPerElement(shape),
      scale: 1 / Math.sqrt(dk),
      stepStart,
      stepKeys,
      q,
      k,
      v,
      rowLo,
      rowHi,
      finalize: false
    }
  }
}

function headsOf(focus: Focus, group: number): number[] {
  return Array.from({ length: group }, (_, g) => focus.kvHead * group + g)
}

/**
 * Finds the history segment whose items represent block `block`. In prefill
 * that is the block's own segment, or the first segment if rounding left the
 * block without readers, because its items do the same work per tile. In
 * decode it is the slot's segment.
 */
function segmentFor(plan: MobaPlan, block: number, slot: number): number {
  const history = plan.history!
  if (plan.request.phase === "decode") return Math.min(slot, history.segments.length - 1)
  const index = history.segments.findIndex((segment) => segment.block === block)
  return index >= 0 ? index : 0
}

/**
 * Finds the current-block items (every split) that contain query `position`
 * of `head`. The dense plan runs batch × chunks sequences, and sequence
 * b·chunks + i is block blocks[i] of batch b. The index order is the dense
 * schedule's: split, query tile, head slot, sequence.
 */
function denseItemsFor(part: CurrentBlockPart, batch: number, head: number, position: number, blockSize: number): DenseWorkItem[] {
  const schedule: DenseSchedule = part.plan.schedule
  const block = blockOf(position, blockSize)
  const chunk = part.group.blocks.indexOf(block)
  const local = position - block * blockSize - (part.group.seqLenKV - part.group.seqLenQ)
  const sequence = batch * part.group.blocks.length + chunk
  const headSlot = Math.floor(head / schedule.headsPerItem)
  const queryTile = Math.floor(local / schedule.queryTileRows)
  const headSlots = schedule.shape.heads / schedule.headsPerItem
  const first = ((sequence * headSlots + headSlot) * schedule.queryTiles + queryTile) * schedule.tiling.splits
  return Array.from({ length: schedule.tiling.splits }, (_, split) => schedule.item(first + split)).filter((item) => schedule.steps(item).length > 0)
}

function uniqueItems(items: ReadonlyArray<DenseWorkItem>): DenseWorkItem[] {
  const seen = new Map<number, DenseWorkItem>()
  for (const item of items) seen.set(item.index, item)
  return [...seen.values()]
}

function stepUnit(reason: MobaSampleReason, itemIndices: number[], task: AttentionTileTask, expected: ExpectedCounts, headDimV: number): ExecUnit {
  return {
    kind: "step",
    reason,
    itemIndices,
    tasks: [task],
    expected: [expected],
    check: (results) => checkAttention("step", results as ReadonlyArray<AttentionTileResult>, task.rows, task.realRows, headDimV)
  }
}

function attentionSteps(unit: ExecUnit): number {
  return unit.tasks.reduce((sum, task) => sum + (task.kind === "attention-forward" ? task.stepStart.length : 0), 0)
}

function addCounts(a: ExpectedCounts, b: ExpectedCounts): ExpectedCounts {
  return { tensorFlops: a.tensorFlops + b.tensorFlops, expOps: a.expOps + b.expOps, loadBytes: a.loadBytes + b.loadBytes }
}

/**
 * Checks a gating result. The kernel's scores of every candidate block are
 * compared with float64, and its selection with the float64 one: they may
 * differ only between blocks whose float64 scores tie within nearTie. No block
 * at or after the current one may be selected, except the current block. The
 * check also measures, per query position, how far the G heads' blocks spread.
 */
export function checkGating(result: TileResult, queries: ReadonlyArray<QueryRow>, topK: number, group: number): NumericCheck {
  if (!isMobaGatingResult(result)) throw new TypeError("a gating unit needs a gating result")
  const gating: MobaGatingResult = result
  const candidates = gating.scores.length / Math.max(1, gating.selected.length / topK)
  let maxAbsError = 0
  let maxReference = 0
  const byPosition = new Map<number, number[][]>()

  queries.forEach((query, r) => {
    const reference = gating.referenceScores.subarray(r * candidates, (r + 1) * candidates)
    const selected = rowSelection(gating.selected, r, topK)
    const expected = rowSelection(gating.referenceSelected, r, topK)
    const current = expected[expected.length - 1]!
    for (let j = 0; j < current; j++) {
      const difference = Math.abs(gating.scores[r * candidates + j]! - reference[j]!)
      maxAbsError = Math.max(maxAbsError, Number.isNaN(difference) ? Infinity : difference)
      maxReference = Math.max(maxReference, Math.abs(reference[j]!))
    }
    if (!sameSelection(selected, expected, reference, current)) maxAbsError = Infinity
    const list = byPosition.get(query.position) ?? []
    list.push(selected)
    byPosition.set(query.position, list)
  })

  let excess = 0
  let maxExcess = 0
  let positions = 0
  for (const [, lists] of byPosition) {
    if (lists.length !== group) continue
    const current = lists[0]![lists[0]!.length - 1]!
    const spread = unionExcess(lists, current, topK)
    if (spread.maxExcess <= 0) continue
    excess += spread.excess
    maxExcess += spread.maxExcess
    positions++
  }
  return { maxAbsError, maxReference, measured: { [measuredKeys.excess]: excess, [measuredKeys.maxExcess]: maxExcess, [measuredKeys.positions]: positions } }
}

function rowSelection(selected: Float32Array, row: number, topK: number): number[] {
  return Array.from(selected.subarray(row * topK, (row + 1) * topK)).filter((block) => block >= 0)
}

/**
 * Tests two selections for agreement: equal, or different only in blocks whose
 * float64 scores are within nearTie of the last history block taken. Both must
 * end with the current block and hold no other block at or after it.
 */
function sameSelection(selected: ReadonlyArray<number>, expected: ReadonlyArray<number>, reference: ArrayLike<number>, current: number): boolean {
  if (selected.length !== expected.length || selected[selected.length - 1] !== current) return false
  if (selected.slice(0, -1).some((block) => block >= current)) return false
  const differing = selected.filter((block) => !expected.includes(block)).concat(expected.filter((block) => !selected.includes(block)))
  if (differing.length === 0) return true
  const history = expected.slice(0, -1)
  const threshold = Math.min(...history.map((block) => reference[block]!))
  return differing.every((block) => Math.abs(reference[block]! - threshold) <= nearTie * (1 + Math.abs(threshold)))
}

/**
 * Merge each query's partial states (one per task holding it) with the
 * log-sum-exp combine and compare with float64 attention over the keys the
 * tasks covered.
 */
function checkMerged(
  results: ReadonlyArray<AttentionTileResult>,
  taskRows: ReadonlyArray<ReadonlyArray<QueryRow>>,
  queries: ReadonlyArray<QueryRow>,
  headDimV: number,
  reference: (query: QueryRow) => Float64Array
): NumericCheck {
  const checks = queries.map((query) => {
    const states = taskRows.flatMap((rows, index) => {
      const row = rows.findIndex((q) => q.head === query.head && q.position === query.position)
      if (row < 0) return []
      const state = results[index]!.kernelState
      return [{ rowMax: [state.rowMax[row]!], rowSum: [state.rowSum[row]!], acc: state.acc.subarray(row * headDimV, (row + 1) * headDimV) }]
    })
    const merged = combineSplits(states.length > 0 ? states : [{ rowMax: [maskedScore], rowSum: [0], acc: new Float32Array(headDimV) }], 1, headDimV)
    return compareOutputs(merged, reference(query), headDimV)
  })
  return mergeChecks(checks)
}
