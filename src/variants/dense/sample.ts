import { fillRow, seededRandom, TensorId } from "../../exec/data.js"
import type { AttentionTileResult, AttentionTileTask, Backend, SoftmaxState } from "../../exec/task.js"
import { compareOutputs, type ExecUnit, type ExpectedCounts, type NumericCheck } from "../../exec/unit.js"
import { visibleKeys } from "../../workload/mask.js"
import { combineSplits } from "./combine.js"
import { maskedScore } from "./kernels.js"
import { normalizedOutput } from "./reference.js"
import { bytesPerElement, itemQueryRows, type DenseSchedule, type DenseWorkItem, type TileStep } from "./schedule.js"

/**
 * Why a unit was picked: the schedule's first and last tiles, a diagonal
 * (partly masked) tile, an interior (unmasked, mid-row) tile, a whole work item,
 * the splits of one row group combined on the host, or a seeded random tile.
 */
export type SampleReason = "first" | "last" | "diagonal" | "interior" | "whole-item" | "split-combine" | "random"

/**
 * A dense unit. "step" units run one key tile from a seeded online-softmax
 * state; "item" units run a whole work item from a fresh state and compare the
 * final output with a two-pass float64 softmax; "splits" units run splits of one
 * row group and combine them on the host.
 */
export interface SampledUnit extends ExecUnit {
  readonly kind: "step" | "item" | "splits"
  readonly reason: SampleReason
  readonly tasks: ReadonlyArray<AttentionTileTask>
  readonly expected: ReadonlyArray<ExpectedCounts>
  readonly rows: number
  readonly headDimV: number
}

export interface SampleOptions {
  readonly seed: number
  /** Most key tiles to execute across all units. */
  readonly budgetSteps: number
  /** Items with at most this many key tiles may be executed whole. */
  readonly wholeItemMaxSteps: number
  readonly backend: Backend
  /** Workers generate Q, K and V from the task's fill coordinates instead of receiving them. */
  readonly dataInWorker?: boolean | undefined
}

export const defaultSampleOptions: SampleOptions = { seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" }

/**
 * Pick a seeded, representative sample of a dense schedule's forward tiles:
 * always the first and the last tile, a diagonal and an interior tile where they
 * exist, whole items and a split-KV combine where they fit the budget, then
 * random tiles until the budget is spent. Backward items are priced, not executed.
 */
export function sampleDense(schedule: DenseSchedule, options: SampleOptions = defaultSampleOptions): ReadonlyArray<SampledUnit> {
  const random = seededRandom(options.seed)
  const builder = new TaskBuilder(schedule, options)
  const units: SampledUnit[] = []
  let budget = options.budgetSteps
  const take = (unit: SampledUnit | undefined): void => {
    if (!unit) return
    const steps = unit.tasks.reduce((sum, task) => sum + task.stepStart.length, 0)
    if (steps > budget && units.length >= 2) return
    units.push(unit)
    budget -= steps
  }

  const forwardItems = schedule.forwardItems
  const randomItem = (): DenseWorkItem => schedule.item(Math.floor(random() * forwardItems))
  const first = schedule.item(0)
  const last = schedule.item(forwardItems - 1)
  const firstSteps = schedule.steps(first)
  const lastSteps = schedule.steps(last)
  if (firstSteps.length > 0) take(builder.step(first, 0, "first"))
  if (lastSteps.length > 0) take(builder.step(last, lastSteps.length - 1, "last"))

  const diagonal = findStep(schedule, randomItem, (step) => step.partial)
  if (diagonal) take(builder.step(diagonal.item, diagonal.index, "diagonal"))
  const interior = findStep(schedule, randomItem, (step, index, all) => !step.partial && index > 0 && index < all.length - 1)
  if (interior) take(builder.step(interior.item, interior.index, "interior"))

  if (schedule.tiling.splits > 1) {
    take(builder.splits(randomItem()))
  } else {
    // Prefer the longest item that still fits, so the whole-row check chains several
    // tiles; under a causal mask the early query tiles are the short ones.
    const early = Array.from({ length: Math.min(forwardItems, 256) }, (_, index) => schedule.item(index))
    const candidates = [last, ...early, ...Array.from({ length: 8 }, randomItem)]
      .map((item) => ({ item, count: schedule.steps(item).length }))
      .filter((c) => c.count > 0 && c.count <= options.wholeItemMaxSteps)
      .sort((a, b) => b.count - a.count)
    if (candidates[0]) take(builder.item(candidates[0].item, "whole-item"))
  }

  for (let attempt = 0; attempt < 64 && budget > 0; attempt++) {
    const item = randomItem()
    const steps = schedule.steps(item)
    if (steps.length === 0) continue
    take(builder.step(item, Math.floor(random() * steps.length), "random"))
  }
  return units
}

/** Every forward item of the schedule as a whole-item unit (split items combined per row group). */
export function fullDenseUnits(schedule: DenseSchedule, options: Omit<SampleOptions, "budgetSteps" | "wholeItemMaxSteps">): ReadonlyArray<SampledUnit> {
  const builder = new TaskBuilder(schedule, { ...options, budgetSteps: Number.POSITIVE_INFINITY, wholeItemMaxSteps: Number.POSITIVE_INFINITY })
  const units: SampledUnit[] = []
  for (let index = 0; index < schedule.forwardItems; index++) {
    const item = schedule.item(index)
    if (schedule.steps(item).length === 0) continue
    if (schedule.tiling.splits > 1) {
      if (item.split !== 0) continue
      const unit = builder.splits(item)
      if (unit) units.push(unit)
    } else {
      units.push(builder.item(item, "whole-item"))
    }
  }
  return units
}

function findStep(
  schedule: DenseSchedule,
  randomItem: () => DenseWorkItem,
  accept: (step: TileStep, index: number, all: ReadonlyArray<TileStep>) => boolean
): { item: DenseWorkItem; index: number } | undefined {
  for (let attempt = 0; attempt < 32; attempt++) {
    const item = randomItem()
    const steps = schedule.steps(item)
    const index = steps.findIndex(accept)
    if (index >= 0) return { item, index }
  }
  return undefined
}

/** Builds tile tasks for items of one schedule, with deterministic data. */
class TaskBuilder {
  private readonly schedule: DenseSchedule
  private readonly options: SampleOptions
  private readonly random: () => number
  private serial = 0

  constructor(schedule: DenseSchedule, options: SampleOptions) {
    this.schedule = schedule
    this.options = options
    this.random = seededRandom(options.seed ^ 0x5bd1e995)
  }

  step(item: DenseWorkItem, index: number, reason: SampleReason): SampledUnit {
    const steps = this.schedule.steps(item)
    const task = this.task(item, [steps[index]!], index > 0, false)
    return this.unit("step", reason, [item], [task], [[steps[index]!]])
  }

  item(item: DenseWorkItem, reason: SampleReason): SampledUnit {
    const steps = this.schedule.steps(item)
    return this.unit("item", reason, [item], [this.task(item, steps, false, true)], [steps])
  }

  /**
   * Splits of the row group `member` belongs to, run from a fresh state and
   * combined on the host. All splits run whole when they fit the budget (less
   * four tiles for the first, last, diagonal and interior checks). Otherwise up
   * to four splits run their leading tiles: combining states over any disjoint
   * key subsets is exact, so the check still covers the combine step.
   */
  splits(member: DenseWorkItem): SampledUnit | undefined {
    const splits = this.schedule.tiling.splits
    const firstIndex = member.index - member.split
    const allow = this.options.budgetSteps - 4
    const items = Array.from({ length: splits }, (_, split) => this.schedule.item(firstIndex + split))
    const stepLists = items.map((item) => this.schedule.steps(item)).filter((steps) => steps.length > 0)
    const total = stepLists.reduce((sum, steps) => sum + steps.length, 0)

    let chosen = items.filter((item) => this.schedule.steps(item).length > 0)
    let chosenSteps = stepLists
    if (total > allow) {
      const count = Math.min(4, chosen.length)
      const perSplit = Math.floor(allow / count)
      if (count < 2 || perSplit < 1) return undefined
      chosen = chosen.slice(0, count)
      chosenSteps = stepLists.slice(0, count).map((steps) => steps.slice(0, perSplit))
    }
    if (chosen.length < 2) return undefined
    const tasks = chosen.map((item, index) => this.task(item, chosenSteps[index]!, false, false))
    return this.unit("splits", "split-combine", chosen, tasks, chosenSteps)
  }

  private unit(
    kind: SampledUnit["kind"],
    reason: SampleReason,
    items: ReadonlyArray<DenseWorkItem>,
    tasks: ReadonlyArray<AttentionTileTask>,
    stepLists: ReadonlyArray<ReadonlyArray<TileStep>>
  ): SampledUnit {
    const expected = items.map((item, index) =>
      stepLists[index]!.reduce(
        (sum, step) => {
          const counts = this.schedule.stepCounts(item, step)
          return { tensorFlops: sum.tensorFlops + counts.tensorFlops, expOps: sum.expOps + counts.expOps, loadBytes: sum.loadBytes + counts.loadBytes }
        },
        { tensorFlops: 0, expOps: 0, loadBytes: 0 }
      )
    )
    const rows = items[0]!.rows
    const headDimV = this.schedule.shape.headDimV
    const realRows = tasks[0]!.realRows
    return {
      kind,
      reason,
      itemIndices: items.map((item) => item.index),
      tasks,
      expected,
      rows,
      headDimV,
      check: (results) => checkAttention(kind, results as ReadonlyArray<AttentionTileResult>, rows, realRows, headDimV)
    }
  }

  private task(item: DenseWorkItem, steps: ReadonlyArray<TileStep>, seededState: boolean, finalize: boolean): AttentionTileTask {
    const { shape, tiling } = this.schedule
    const { seed } = this.options
    const dk = shape.headDim
    const dv = shape.headDimV
    const rows = item.rows
    const realRows = itemQueryRows(item)
    const queriesPerHead = item.queryEnd - item.queryStart

    const inWorker = this.options.dataInWorker === true
    const q = new Float32Array(inWorker ? 0 : rows * dk)
    const rowLo = new Float32Array(rows)
    const rowHi = new Float32Array(rows)
    const queryHeads = new Float32Array(realRows)
    const queryPositions = new Float32Array(realRows)
    for (let r = 0; r < realRows; r++) {
      const head = item.heads[Math.floor(r / queriesPerHead)]!
      const query = item.queryStart + (r % queriesPerHead)
      queryHeads[r] = head
      queryPositions[r] = query
      if (!inWorker) fillRow(q, r * dk, dk, { seed, tensor: TensorId.query, batch: item.batch, head, position: query }, shape.dtype)
      const visible = visibleKeys(shape, query)
      rowLo[r] = visible.lo
      rowHi[r] = visible.hi
    }

    const k = new Float32Array(inWorker ? 0 : steps.length * tiling.blockN * dk)
    const v = new Float32Array(inWorker ? 0 : steps.length * tiling.blockN * dv)
    const stepStart = new Float32Array(steps.length)
    const stepKeys = new Float32Array(steps.length)
    steps.forEach((step, index) => {
      stepStart[index] = step.start
      stepKeys[index] = step.end - step.start
      if (inWorker) return
      for (let key = step.start; key < step.end; key++) {
        const row = index * tiling.blockN + (key - step.start)
        const at = { seed, batch: item.batch, head: item.kvHead, position: key }
        fillRow(k, row * dk, dk, { ...at, tensor: TensorId.key }, shape.dtype)
        if (shape.sharedKV) v.set(k.subarray(row * dk, row * dk + dv), row * dv)
        else fillRow(v, row * dv, dv, { ...at, tensor: TensorId.value }, shape.dtype)
      }
    })

    return {
      kind: "attention-forward",
      id: `dense-${item.index}-${steps[0]?.start ?? 0}-${this.serial++}`,
      backend: this.options.backend,
      rows,
      realRows,
      blockN: tiling.blockN,
      headDim: dk,
      headDimV: dv,
      elementBytes: bytesPerElement(shape),
      valueInKey: shape.sharedKV === true,
      scale: 1 / Math.sqrt(dk),
      stepStart,
      stepKeys,
      q,
      k,
      v,
      rowLo,
      rowHi,
      state: seededState ? this.seededState(rows, dv, rowLo, rowHi, steps[0]!.start) : undefined,
      finalize,
      fill: inWorker ? { seed, dtype: shape.dtype, batch: item.batch, kvHead: item.kvHead, queryHeads, queryPositions } : undefined
    }
  }

  /**
   * A plausible state for a row entering a mid-row tile: a running max near the
   * scale of real scores, a running sum of earlier exp weights, an unnormalized
   * output of that sum times values in [-1, 1]. Rows with no visible key before
   * the tile start empty, as they would in a real run.
   */
  private seededState(rows: number, dv: number, rowLo: Float32Array, rowHi: Float32Array, tileStart: number): SoftmaxState {
    const rowMax = new Float32Array(rows).fill(maskedScore)
    const rowSum = new Float32Array(rows)
    const acc = new Float32Array(rows * dv)
    for (let r = 0; r < rows; r++) {
      const earlierKeys = Math.min(rowHi[r]!, tileStart) - rowLo[r]!
      if (earlierKeys <= 0) continue
      rowMax[r] = 0.5 + this.random()
      rowSum[r] = 1 + this.random() * earlierKeys * 0.5
      for (let c = 0; c < dv; c++) acc[r * dv + c] = rowSum[r]! * (2 * this.random() - 1)
    }
    return { rowMax, rowSum, acc }
  }
}

/**
 * Compare attention results with float64: the normalized output of one task
 * (against the two-pass softmax when the task covered whole rows), or the host
 * combine of several split tasks against the combine of their float64 states.
 */
export function checkAttention(
  kind: string,
  results: ReadonlyArray<AttentionTileResult>,
  rows: number,
  realRows: number,
  headDimV: number
): NumericCheck {
  if (kind === "splits") {
    const kernel = combineSplits(results.map((r) => r.kernelState), rows, headDimV)
    const reference = combineSplits(results.map((r) => ({ rowMax: r.referenceRowMax, rowSum: r.referenceRowSum, acc: r.referenceAcc })), rows, headDimV)
    return compareOutputs(kernel, reference, rows * headDimV, realRows * headDimV)
  }
  const result = results[0]!
  const kernel = normalizedOutput(result.kernelState, rows, headDimV)
  const reference = result.referenceOutput ?? normalizedOutput({ rowSum: result.referenceRowSum, acc: result.referenceAcc }, rows, headDimV)
  return compareOutputs(kernel, reference, rows * headDimV, realRows * headDimV)
}


