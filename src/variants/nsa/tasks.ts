import { seededRandom } from "../../exec/data.js"
import type { AttentionTileResult, AttentionTileTask, Backend, SoftmaxState } from "../../exec/task.js"
import { compareOutputs, mergeChecks, type ExecUnit, type ExpectedCounts, type NumericCheck } from "../../exec/unit.js"
import { visibleKeys } from "../../workload/mask.js"
import { combineSplits } from "../dense/combine.js"
import { generations } from "../dense/generations.js"
import { maskedScore } from "../dense/kernels.js"
import { checkAttention } from "../dense/sample.js"
import { bytesPerElement, type TileStep } from "../dense/schedule.js"
import { compressedQueryRows, type CompressedWorkItem } from "./compressed-schedule.js"
import { nsaBranches, type AttendedBranch, type NsaBranch, type NsaData } from "./data.js"
import { visibleCompressed } from "./geometry.js"
import type { NsaPlan } from "./plan.js"
import { referencePosition, selectionAt } from "./reference.js"
import type { SelectionWorkItem } from "./selection-schedule.js"

/** One real query row of a task: whose query it is and the keys it sees in the task's key space. */
interface RowSpec {
  readonly batch: number
  readonly head: number
  readonly position: number
  readonly lo: number
  readonly hi: number
}

interface TaskSpec {
  readonly id: string
  readonly rows: number
  readonly blockN: number
  readonly steps: ReadonlyArray<TileStep>
  readonly queryRows: ReadonlyArray<RowSpec>
  /** K and V rows of key `key` of the task's key space. */
  readonly keyRow: (key: number) => { k: Float32Array; v: Float32Array }
  readonly seededState: boolean
  readonly finalize: boolean
}

/** Per-tile work as the worker counts it: rows × blockN scores (padding included), K and V of the tile's real keys. */
function tileCounts(rows: number, blockN: number, steps: ReadonlyArray<TileStep>, dk: number, dv: number, elementBytes: number): ExpectedCounts {
  return steps.reduce(
    (sum, step) => ({
      tensorFlops: sum.tensorFlops + 2 * rows * blockN * (dk + dv),
      expOps: sum.expOps + rows * blockN,
      loadBytes: sum.loadBytes + (step.end - step.start) * (dk + dv) * elementBytes
    }),
    { tensorFlops: 0, expOps: 0, loadBytes: 0 }
  )
}

/**
 * Builds the tile tasks of an NSA plan's three branches from one NsaData, so
 * every task of a sample sees the same tensors. Step units run one tile from
 * a seeded online-softmax state; gated units run every tile the three
 * branches process for one (position, KV-head group) and check the gated sum.
 */
export class NsaTaskBuilder {
  private readonly plan: NsaPlan
  private readonly data: NsaData
  private readonly backend: Backend
  private readonly random: () => number
  private serial = 0

  constructor(plan: NsaPlan, data: NsaData, backend: Backend, seed: number) {
    this.plan = plan
    this.data = data
    this.backend = backend
    this.random = seededRandom(seed ^ 0x2545f491)
  }

  private get shape() {
    return this.plan.request.shape
  }

  private get group(): number {
    return this.shape.heads / this.shape.kvHeads
  }

  /** Builds a unit of one compressed-token tile of a schedule item, from a seeded state unless it is the item's first tile. */
  compressedStep(item: CompressedWorkItem, index: number, reason: string): ExecUnit {
    const schedule = this.plan.compressed!.schedule
    const step = schedule.steps(item)[index]!
    const queriesPerHead = item.queryEnd - item.queryStart
    const queryRows = Array.from({ length: compressedQueryRows(item) }, (_, r): RowSpec => {
      const query = item.queryStart + (r % queriesPerHead)
      return { batch: item.batch, head: item.heads[Math.floor(r / queriesPerHead)]!, position: query + schedule.offset, lo: 0, hi: schedule.visible(query) }
    })
    const task = this.task({
      id: `nsa-compressed-${item.index}-${step.start}`,
      rows: item.rows,
      blockN: schedule.tiling.blockN,
      steps: [step],
      queryRows,
      keyRow: this.compressedRow(item.batch, item.kvHead),
      seededState: index > 0,
      finalize: false
    })
    return this.stepUnit("compressed-step", reason, item.index, task, schedule.stepCounts(item, step))
  }

  /** Builds a unit of one key tile of a selection item (its blocks chosen from the data), from a seeded state unless it is the first. */
  selectedStep(item: SelectionWorkItem, index: number, reason: string): ExecUnit | undefined {
    const schedule = this.plan.selection.schedule
    const blocks = this.selection(item.batch, item.kvHead, item.position)
    const step = schedule.steps(item, blocks)[index]
    if (!step) return undefined
    const task = this.task({
      id: `nsa-selected-${item.index}-${step.start}`,
      rows: item.rows,
      blockN: schedule.tiling.blockN,
      steps: [step],
      queryRows: this.groupRows(item.batch, item.kvHead, item.position, 0, item.position + 1),
      keyRow: this.branchRow("selected", item.batch, item.kvHead),
      seededState: index > 0,
      finalize: false
    })
    return this.stepUnit("selected-step", reason, item.index, task, schedule.stepCounts(item, step))
  }

  private readonly selections = new Map<string, ReadonlyArray<number>>()

  /** Returns the blocks a position selects, computed once per (batch, KV head, position). */
  private selection(batch: number, kvHead: number, position: number): ReadonlyArray<number> {
    const key = `${batch}:${kvHead}:${position}`
    let blocks = this.selections.get(key)
    if (!blocks) {
      blocks = selectionAt(this.data, this.plan.geometry, { batch, kvHead, position, group: this.group }).blocks
      this.selections.set(key, blocks)
    }
    return blocks
  }

  /** Number of tiles a gated unit at (batch, kvHead, query) runs, without building it. */
  gatedSteps(query: number): number {
    const { compressed, selection, window } = this.plan
    const position = query + selection.schedule.offset
    let steps = 0
    if (compressed) for (const item of compressed.schedule.forwardItemsAt(0, 0, query)) steps += compressed.schedule.forwardStepSummary(item).steps
    for (let split = 0; split < selection.tiling.splits; split++) steps += selection.schedule.summary(position, split, selection.tiling.splits).steps
    for (const item of window.schedule.forwardItemsAt(0, 0, query)) steps += window.schedule.forwardStepSummary(item).steps
    return steps
  }

  /**
   * Builds a unit of every tile the three branches run for the G query heads
   * of one KV-head group at one query. The selection branch runs its kernel's
   * own items (all splits). The compressed and window branches run the key
   * tiles of the schedule items that contain these rows, with just these G
   * rows. The check compares each branch with the worker's float64. It also
   * compares each branch and the gated sum with the independent float64
   * pipeline, and a NaN anywhere fails it.
   */
  gated(batch: number, kvHead: number, query: number, reason: string): ExecUnit {
    const { compressed, selection, window, geometry } = this.plan
    const { shape } = this
    const dk = shape.headDim
    const dv = shape.headDimV
    const s = bytesPerElement(shape)
    const position = query + selection.schedule.offset
    const reference = referencePosition(this.data, geometry, { batch, kvHead, position, group: this.group })
    const tasks: AttentionTileTask[] = []
    const expected: ExpectedCounts[] = []
    const branchTasks: Record<NsaBranch, { first: number; count: number; rows: number }> = {
      compressed: { first: 0, count: 0, rows: 0 },
      selected: { first: 0, count: 0, rows: 0 },
      window: { first: 0, count: 0, rows: 0 }
    }
    const add = (branch: NsaBranch, task: AttentionTileTask): void => {
      if (branchTasks[branch].count === 0) branchTasks[branch] = { first: tasks.length, count: 0, rows: task.rows }
      branchTasks[branch].count++
      tasks.push(task)
      expected.push(tileCounts(task.rows, task.blockN, stepsOf(task), dk, dv, s))
    }

    if (compressed) {
      const rows = padRows(this.group, generations[compressed.tiling.kernel].mmaRows)
      for (const item of compressed.schedule.forwardItemsAt(batch, kvHead * this.group, query)) {
        const steps = compressed.schedule.steps(item)
        add("compressed", this.task({
          id: `nsa-gated-compressed-${item.index}-${query}`,
          rows,
          blockN: compressed.tiling.blockN,
          steps,
          queryRows: this.groupRows(batch, kvHead, position, 0, visibleCompressed(geometry, position)),
          keyRow: this.compressedRow(batch, kvHead),
          seededState: false,
          finalize: false
        }))
      }
    }
    for (let split = 0; split < selection.tiling.splits; split++) {
      const item = selection.schedule.item(selection.schedule.forwardIndex(batch, kvHead, query, split))
      add("selected", this.task({
        id: `nsa-gated-selected-${item.index}`,
        rows: item.rows,
        blockN: selection.tiling.blockN,
        steps: selection.schedule.steps(item, reference.selectedBlocks),
        queryRows: this.groupRows(batch, kvHead, position, 0, position + 1),
        keyRow: this.branchRow("selected", batch, kvHead),
        seededState: false,
        finalize: false
      }))
    }
    const windowShape = window.schedule.shape
    const visible = visibleKeys(windowShape, query)
    const windowRows = padRows(this.group, generations[window.tiling.kernel].mmaRows)
    for (const item of window.schedule.forwardItemsAt(batch, kvHead * this.group, query)) {
      add("window", this.task({
        id: `nsa-gated-window-${item.index}-${query}`,
        rows: windowRows,
        blockN: window.tiling.blockN,
        steps: window.schedule.steps(item),
        queryRows: this.groupRows(batch, kvHead, position, visible.lo, visible.hi),
        keyRow: this.branchRow("window", batch, kvHead),
        seededState: false,
        finalize: false
      }))
    }

    const group = this.group
    const gates = reference.heads.map((head) => nsaBranches.map((branch) => this.data.gate(batch, head, position, branch)))
    return {
      kind: "gated",
      reason,
      itemIndices: [selection.schedule.forwardIndex(batch, kvHead, query, 0)],
      tasks,
      expected,
      check: (results) => {
        const checks: NumericCheck[] = []
        const gatedOutput = new Float64Array(group * dv)
        nsaBranches.forEach((branch, b) => {
          const { first, count, rows } = branchTasks[branch]
          const slice = (results as ReadonlyArray<AttentionTileResult>).slice(first, first + count)
          const kernel = count > 0 ? combineSplits(slice.map((r) => r.kernelState), rows, dv) : new Float64Array(group * dv)
          if (count > 0) {
            const workerReference = combineSplits(slice.map((r) => ({ rowMax: r.referenceRowMax, rowSum: r.referenceRowSum, acc: r.referenceAcc })), rows, dv)
            checks.push(compareOutputs(kernel, workerReference, rows * dv, group * dv))
          }
          checks.push(compareOutputs(kernel, reference.branches[branch], group * dv))
          for (let r = 0; r < group; r++) {
            for (let c = 0; c < dv; c++) gatedOutput[r * dv + c] = gatedOutput[r * dv + c]! + gates[r]![b]! * kernel[r * dv + c]!
          }
        })
        checks.push(compareOutputs(gatedOutput, reference.output, group * dv))
        return mergeChecks(checks)
      }
    }
  }

  private groupRows(batch: number, kvHead: number, position: number, lo: number, hi: number): RowSpec[] {
    return Array.from({ length: this.group }, (_, k) => ({ batch, head: kvHead * this.group + k, position, lo, hi }))
  }

  private compressedRow(batch: number, kvHead: number) {
    return (key: number) => ({ k: this.data.compressedKey(batch, kvHead, key), v: this.data.compressedValue(batch, kvHead, key) })
  }

  private branchRow(branch: AttendedBranch, batch: number, kvHead: number) {
    return (key: number) => ({ k: this.data.key(branch, batch, kvHead, key), v: this.data.value(branch, batch, kvHead, key) })
  }

  private stepUnit(kind: string, reason: string, itemIndex: number, task: AttentionTileTask, counts: ExpectedCounts): ExecUnit {
    const rows = task.rows
    const realRows = task.realRows
    const dv = task.headDimV
    return {
      kind,
      reason,
      itemIndices: [itemIndex],
      tasks: [task],
      expected: [counts],
      check: (results) => checkAttention("step", results as ReadonlyArray<AttentionTileResult>, rows, realRows, dv)
    }
  }

  private task(spec: TaskSpec): AttentionTileTask {
    const { shape } = this
    const dk = shape.headDim
    const dv = shape.headDimV
    const q = new Float32Array(spec.rows * dk)
    const rowLo = new Float32Array(spec.rows)
    const rowHi = new Float32Array(spec.rows)
    spec.queryRows.forEach((row, r) => {
      q.set(this.data.query(row.batch, row.head, row.position), r * dk)
      rowLo[r] = row.lo
      rowHi[r] = row.hi
    })

    const k = new Float32Array(spec.steps.length * spec.blockN * dk)
    const v = new Float32Array(spec.steps.length * spec.blockN * dv)
    const stepStart = new Float32Array(spec.steps.length)
    const stepKeys = new Float32Array(spec.steps.length)
    spec.steps.forEach((step, index) => {
      stepStart[index] = step.start
      stepKeys[index] = step.end - step.start
      for (let key = step.start; key < step.end; key++) {
        const row = index * spec.blockN + (key - step.start)
        const { k: keyRow, v: valueRow } = spec.keyRow(key)
        k.set(keyRow, row * dk)
        v.set(valueRow, row * dv)
      }
    })

    return {
      kind: "attention-forward",
      id: `${spec.id}-${this.serial++}`,
      backend: this.backend,
      rows: spec.rows,
      realRows: spec.queryRows.length,
      blockN: spec.blockN,
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
      state: spec.seededState && spec.steps.length > 0 ? this.seededState(spec.rows, dv, rowLo, rowHi, spec.steps[0]!.start) : undefined,
      finalize: spec.finalize
    }
  }

  /**
   * Builds a plausible state for rows entering a mid-row tile: a running max near the
   * scale of real scores, a running sum, an output of that sum times values in
   * [-1, 1]. Rows that see no key before the tile start empty.
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

const padRows = (rows: number, mmaRows: number): number => Math.ceil(rows / mmaRows) * mmaRows

function stepsOf(task: AttentionTileTask): TileStep[] {
  return Array.from(task.stepStart, (start, index) => ({ start, end: start + task.stepKeys[index]!, partial: true }))
}
