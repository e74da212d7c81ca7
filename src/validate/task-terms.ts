import type { AttentionTileTask, TileTask } from "../exec/task.js"
import type { LightningTileTask } from "../exec/lightning-task.js"
import type { ExpectedCounts } from "../exec/unit.js"
import { gatingCandidates, type MobaGatingTask } from "../variants/moba/gating-task.js"

/**
 * The terms of the host's per-task time model, per kind of task. A task's
 * worker time is Σ over terms of (seconds per unit, fitted by calibrate) ×
 * (units the task has). The units are the schedule's counts for the task
 * (ExpectedCounts: tensor FLOPs, exp operations) and its tile shape (steps,
 * rows, elements the kernels write). Each kind's terms follow the kernels it
 * launches, so a term is a cost a kernel really pays.
 */
export interface TaskTerms {
  /** The model's key: a task kind, or a kind and layout whose kernels differ. */
  readonly model: string
  readonly counts: Readonly<Record<string, number>>
  /** For tasks that generate their data: bytes per element, to add key elements once the loaded bytes are known. */
  readonly fillBytesPerElement?: number | undefined
}

export interface TermModel {
  readonly model: string
  readonly terms: ReadonlyArray<string>
  /** The formula with its units, printed with the calibration. */
  readonly form: string
}

export const termModels: Readonly<Record<string, TermModel>> = {
  "attention-forward": {
    model: "attention-forward",
    terms: ["task", "step", "rowStep", "flop", "score", "fill"],
    form:
      "task + step·steps + rowStep·rows·steps + flop·tensorFlops + score·expOps + fill·elements generated in the worker (five kernel calls per step: scores, row max, probabilities, row sum, accumulate; fill only for tasks with fill coordinates)"
  },
  "lightning-forward": {
    model: "lightning-forward",
    terms: ["task", "block", "flop", "exp", "element"],
    form: "task + block·blocks + flop·tensorFlops + exp·expOps + element·(b² + 2·b·e + 2·dk·e)·blocks (b block rows, e value columns)"
  },
  "moba-gating": {
    model: "moba-gating",
    terms: ["task", "step", "flop", "element", "elementStep"],
    form:
      "task + step·steps + flop·tensorFlops + element·rows·candidates + elementStep·rows·candidates·steps (one score-kernel call per step; scores gathered and top-k selected per row in the worker; the float64 reference looks up each block's mean by scanning the steps)"
  },
  "lightning-decode": {
    model: "lightning-decode",
    terms: ["task", "element"],
    form: "task + element·(dk·e + e) (one state update and one output row per task)"
  }
}

/** Count a task's terms from its shape and the counts the schedule prices for it. */
export function taskTerms(task: TileTask, expected: ExpectedCounts): TaskTerms {
  switch (task.kind) {
    case "attention-forward":
      return attentionTerms(task, expected)
    case "lightning-forward":
      return lightningTerms(task, expected)
    case "moba-gating":
      return mobaGatingTerms(task, expected)
  }
  // A kind added without terms here: calibrate cannot fit it, so validation reports it as not modeled.
  const kind = (task as { readonly kind: string }).kind
  return { model: kind, counts: { task: 1, flop: expected.tensorFlops, exp: expected.expOps } }
}

function mobaGatingTerms(task: MobaGatingTask, expected: ExpectedCounts): TaskTerms {
  return {
    model: "moba-gating",
    counts: {
      task: 1,
      step: task.stepStart.length,
      flop: expected.tensorFlops,
      element: task.rows * gatingCandidates(task),
      elementStep: task.rows * gatingCandidates(task) * task.stepStart.length
    }
  }
}

function attentionTerms(task: AttentionTileTask, expected: ExpectedCounts): TaskTerms {
  const steps = task.stepStart.length
  return {
    model: "attention-forward",
    counts: { task: 1, step: steps, rowStep: task.rows * steps, flop: expected.tensorFlops, score: expected.expOps, fill: filledElements(task, expected) },
    fillBytesPerElement: task.fill ? task.elementBytes : undefined
  }
}

function lightningTerms(task: LightningTileTask, expected: ExpectedCounts): TaskTerms {
  const e = task.valueWidth
  const dk = task.headDim
  if (task.layout === "decode") return { model: "lightning-decode", counts: { task: 1, element: dk * e + e } }
  const b = task.blockSize
  const blocks = task.stepRows.length
  return {
    model: "lightning-forward",
    counts: { task: 1, block: blocks, flop: expected.tensorFlops, exp: expected.expOps, element: (b * b + 2 * b * e + 2 * dk * e) * blocks }
  }
}

/** Terms whose units are the schedule's counts rather than the tile shape. */
const countedTerms: Readonly<Record<string, keyof ExpectedCounts>> = { flop: "tensorFlops", score: "expOps", exp: "expOps" }

/**
 * Replace the counted terms of `terms` with `expected`: for term counts read
 * from a task before it is sent (sending detaches its arrays) and completed
 * with what the worker counted.
 */
export function withCounts(terms: TaskTerms, expected: ExpectedCounts): TaskTerms {
  const counts = Object.fromEntries(
    Object.entries(terms.counts).map(([term, count]) => {
      if (countedTerms[term]) return [term, expected[countedTerms[term]!]]
      // A generated task's key elements are its loaded bytes over the element size (see filledElements).
      if (term === "fill" && count > 0 && terms.fillBytesPerElement) return [term, count + expected.loadBytes / terms.fillBytesPerElement]
      return [term, count]
    })
  )
  return { model: terms.model, counts, fillBytesPerElement: terms.fillBytesPerElement }
}

export const noCounts: ExpectedCounts = { tensorFlops: 0, expOps: 0, loadBytes: 0 }

/** Elements the worker generates from fill coordinates (0 when the task carries its data). */
export function filledElements(task: TileTask, expected: ExpectedCounts): number {
  if (task.kind !== "attention-forward" || !task.fill) return 0
  return task.realRows * task.headDim + expected.loadBytes / task.elementBytes
}

/** Kernel steps of a task (key tiles or blocks). */
export function taskSteps(task: TileTask): number {
  return task.kind === "lightning-forward" ? task.stepRows.length : task.stepStart.length
}

/** Rows of a task's tiles (block rows for lightning). */
export function taskRows(task: TileTask): number {
  return task.kind === "lightning-forward" ? task.blockSize : task.rows
}

/** Name the compiled kernels a task needs, so warm-up compiles each once per worker. */
export function kernelShapeKey(task: TileTask): string {
  if (task.kind === "lightning-forward") return `${task.kind}:${task.layout}:${task.backend}:${task.blockSize}:${task.headDim}/${task.valueWidth}`
  if (task.kind === "moba-gating") return `${task.kind}:${task.backend}:${task.rows}×${task.blockTile}:${task.headDim}`
  return `${task.kind}:${task.backend}:${task.rows}×${task.blockN}:${task.headDim}/${task.headDimV}`
}
