import type { TileTask } from "../exec/task.js"
import type { ExpectedCounts } from "../exec/unit.js"
import { batchOverheadSeconds, listScheduleMakespan, predictTaskSeconds, taskWork, type HostModel, type TaskWork } from "./host-model.js"

/** A task with the schedule's counts for it and the host model's prediction. */
export interface PlannedTask {
  readonly task: TileTask
  readonly expected: ExpectedCounts
  readonly work: TaskWork
  /** Predicted worker seconds. */
  readonly seconds: number
}

/** Tasks sent to one worker together, with the predicted wall time of the batch (overhead included). */
export interface PlannedBatch {
  readonly id: string
  readonly tasks: ReadonlyArray<PlannedTask>
  readonly seconds: number
}

export interface BatchingOptions {
  /** A batch is closed once its predicted worker time reaches this, so dispatch stays a small share. */
  readonly minBatchSeconds: number
  /** At least this many batches per worker where the work allows, so the last ones balance the load. */
  readonly batchesPerWorker: number
}

/** Close batches at 40 dispatch round trips: the pool's overhead stays near 2.5 % of a batch. */
export const defaultBatching = (model: HostModel): BatchingOptions => ({ minBatchSeconds: 40 * model.dispatchSeconds, batchesPerWorker: 4 })

/** Price every task; throws when the calibration has no model for a task's kind. */
export function planTasks(model: HostModel, tasks: ReadonlyArray<{ readonly task: TileTask; readonly expected: ExpectedCounts }>): PlannedTask[] {
  return tasks.map(({ task, expected }) => {
    const work = taskWork(task, expected)
    const seconds = predictTaskSeconds(model, work)
    if (seconds === undefined) {
      throw new RangeError(`the host calibration has no time model for "${work.model}" tasks (it has ${Object.keys(model.stepModels).join(", ")}); rerun attnsim calibrate`)
    }
    return { task, expected, work, seconds }
  })
}

/**
 * Group tasks into batches, largest first: tasks sorted by predicted time,
 * each batch closed once it reaches the target time, batches submitted longest
 * first. The target is the smaller of minBatchSeconds and the work divided by
 * batchesPerWorker × workers, so small schedules still spread over every worker.
 */
export function groupIntoBatches(model: HostModel, tasks: ReadonlyArray<PlannedTask>, workers: number, options: BatchingOptions = defaultBatching(model)): PlannedBatch[] {
  const ordered = tasks.map((task, index) => ({ task, index })).sort((a, b) => b.task.seconds - a.task.seconds || a.index - b.index)
  const total = ordered.reduce((sum, entry) => sum + entry.task.seconds, 0)
  const target = Math.min(options.minBatchSeconds, total / (options.batchesPerWorker * workers))

  const groups: PlannedTask[][] = []
  let current: PlannedTask[] = []
  let currentSeconds = 0
  for (const { task } of ordered) {
    current.push(task)
    currentSeconds += task.seconds
    if (currentSeconds >= target) {
      groups.push(current)
      current = []
      currentSeconds = 0
    }
  }
  if (current.length > 0) groups.push(current)

  return groups
    .map((group, index) => ({
      id: `batch-${index}`,
      tasks: group,
      seconds: batchOverheadSeconds(model, group.map((t) => t.work)) + group.reduce((sum, t) => sum + t.seconds, 0)
    }))
    .sort((a, b) => b.seconds - a.seconds)
}

/** Predicted wall time of running the batches on `workers` workers. */
export const predictMakespan = (batches: ReadonlyArray<PlannedBatch>, workers: number): number =>
  listScheduleMakespan(batches.map((batch) => batch.seconds), workers)
