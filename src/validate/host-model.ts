import type { Backend, TileTask } from "../exec/task.js"
import type { ExpectedCounts } from "../exec/unit.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import { taskTerms } from "./task-terms.js"

/**
 * The host cost model: the time of a tile schedule on the worker pool, from the
 * counts the schedule prices for each task (ExpectedCounts), each task's tile
 * shape, and the pool costs `attnsim calibrate` measured. A worker runs one
 * task at a time; batches go to the first free worker in submission order.
 */

/** Seconds per unit of each term of one task model (see task-terms.ts). */
export type StepModel = Readonly<Record<string, number>>

export interface HostModel {
  readonly backend: Backend
  /** Workers the calibration ran with (its rates were measured with all of them busy). */
  readonly workers: number
  /** A worker's time outside its batches per batch, with every worker busy. */
  readonly dispatchSeconds: number
  /** Dispatch cost each task of a batch adds. */
  readonly dispatchPerTaskSeconds: number
  /** Seconds per task of the speed reference workload at calibration, where recorded. */
  readonly referenceTaskSeconds: number | undefined
  readonly stepModels: Readonly<Record<string, StepModel>>
}

/** The host model's inputs from one task: its model and term counts. */
export interface TaskWork {
  readonly model: string
  readonly counts: Readonly<Record<string, number>>
}

/** Read the host model a calibrated profile describes; undefined without a calibration. */
export function hostModelOf(profile: HardwareProfile): HostModel | undefined {
  const host = profile.host
  const calibration = host?.calibration
  if (!host || !calibration) return undefined
  const stepModels: Record<string, StepModel> = {}
  for (const [model, fitted] of Object.entries(calibration.stepModels)) {
    stepModels[model] = Object.fromEntries(Object.entries(fitted.terms).map(([term, figure]) => [term, figure.value]))
  }
  return {
    backend: host.backend,
    workers: host.workers,
    dispatchSeconds: calibration.dispatch.value,
    dispatchPerTaskSeconds: calibration.dispatchPerTask.value,
    referenceTaskSeconds: calibration.referenceTask?.value,
    stepModels
  }
}

/** Read the host model's inputs from a task and the counts its schedule prices for it. */
export function taskWork(task: TileTask, expected: ExpectedCounts): TaskWork {
  const terms = taskTerms(task, expected)
  return { model: terms.model, counts: terms.counts }
}

/** Worker seconds of one task; undefined when the calibration has no model for it. */
export function predictTaskSeconds(model: HostModel, work: TaskWork): number | undefined {
  const step = model.stepModels[work.model]
  if (!step) return undefined
  let seconds = 0
  for (const [term, count] of Object.entries(work.counts)) seconds += (step[term] ?? 0) * count
  return seconds
}

/** Price one batch beyond its tasks' worker seconds: dispatch per batch and per task. */
export function batchOverheadSeconds(model: HostModel, works: ReadonlyArray<TaskWork>): number {
  return model.dispatchSeconds + model.dispatchPerTaskSeconds * works.length
}

/**
 * Finish time of the last worker when batches of the given durations are handed
 * out in order, each to the worker that frees up first (what the pool does when
 * every batch is submitted at once).
 */
export function listScheduleMakespan(durations: ReadonlyArray<number>, workers: number): number {
  if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError(`listScheduleMakespan needs a whole number of workers, at least 1; got ${workers}`)
  const free = new Array<number>(workers).fill(0)
  for (const duration of durations) {
    let earliest = 0
    for (let worker = 1; worker < workers; worker++) if (free[worker]! < free[earliest]!) earliest = worker
    free[earliest]! += duration
  }
  return Math.max(...free)
}
