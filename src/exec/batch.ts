import { taskTransferList, type TileResult, type TileTask } from "./task.js"

/**
 * Several tile tasks sent to one worker as one pool task and run there in
 * order, so that the per-task dispatch cost of the pool is paid once for the
 * group. Results come back in the order of `tasks`.
 */
export interface TileBatch {
  readonly kind: "batch"
  readonly id: string
  readonly tasks: ReadonlyArray<TileTask>
}

export interface TileBatchResult {
  readonly id: string
  readonly results: ReadonlyArray<TileResult>
  /** Wall time of the whole batch in the worker. */
  readonly workerSeconds: number
  /** Seconds of workerSeconds the thread waited for a CPU while other processes ran (Linux only). */
  readonly waitSeconds?: number | undefined
  readonly threadId: number
  /** Wall-clock start and end in the worker, in milliseconds since the Unix epoch (fractional). */
  readonly startedAtMs: number
  readonly endedAtMs: number
}

export function batchTransferList(batch: TileBatch): ArrayBuffer[] {
  return [...new Set(batch.tasks.flatMap((task) => taskTransferList(task)))]
}
