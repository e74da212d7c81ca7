import { Effect } from "effect"
import type { TileBatchResult } from "../exec/batch.js"
import { TilePool, type TileExecutionError, type TilePoolService } from "../exec/pool.js"
import type { Backend, TileResult, TileTask } from "../exec/task.js"
import type { PlannedBatch } from "./batching.js"
import { ContentionMeter, type ContentionSample } from "./contention.js"
import { referenceProbe } from "./probe-tasks.js"
import { kernelShapeKey, taskSteps } from "./task-terms.js"

/** Counted or priced totals over executed tasks. */
export interface CountTotals {
  readonly tensorFlops: number
  readonly expOps: number
  readonly loadBytes: number
}

/** Predicted and measured worker seconds of one executed task. */
export interface TaskTiming {
  readonly predictedSeconds: number
  readonly measuredSeconds: number
  readonly steps: number
}

/** One timed run of batches on the pool. */
export interface TimedRun {
  readonly wallSeconds: number
  readonly workers: number
  readonly batches: number
  readonly tasks: number
  readonly steps: number
  /** Σ of the batches' wall time inside workers. */
  readonly busySeconds: number
  /**
   * Σ over batches of the seconds workers were runnable but waiting for a CPU
   * (undefined off Linux): other processes, or this one's main thread, ran.
   */
  readonly waitSeconds: number | undefined
  /** busySeconds / (workers × wallSeconds): how busy the pool was kept. */
  readonly utilization: number
  /** Every task counted exactly the schedule's FLOPs, exp operations and loaded bytes. */
  readonly countsMatch: boolean
  readonly mismatchedTasks: number
  readonly counted: CountTotals
  readonly expected: CountTotals
  readonly taskTimings: ReadonlyArray<TaskTiming>
  readonly contention: ContentionSample
  readonly backends: ReadonlyArray<Backend>
}

/**
 * Run batches on the pool, all submitted at once in their order (the pool hands
 * each to the first free worker), and time the run from the first submission
 * to the last result. Every worker is warmed first with each tile shape, so no
 * kernel compiles inside the timed window. With `reference` false the workers
 * skip the float64 reference (timing runs); numerics are checked elsewhere.
 */
export function runBatches(batches: ReadonlyArray<PlannedBatch>, options: { readonly reference: boolean }): Effect.Effect<TimedRun, TileExecutionError, TilePool> {
  return Effect.gen(function* () {
    const pool = yield* TilePool
    yield* warmWorkers(pool, batches.flatMap((batch) => batch.tasks.map((t) => t.task)))

    const messages = batches.map((batch) => ({
      kind: "batch" as const,
      id: batch.id,
      tasks: batch.tasks.map((t) => (options.reference ? t.task : { ...t.task, reference: false }))
    }))
    const meter = new ContentionMeter()
    const started = performance.now()
    const results = yield* Effect.forEach(messages, (message) => pool.runBatch(message), { concurrency: "unbounded" })
    const wallSeconds = (performance.now() - started) / 1000
    const contention = meter.stop()

    return summarizeRun(batches, results, wallSeconds, pool.workers, contention)
  })
}

function summarizeRun(
  batches: ReadonlyArray<PlannedBatch>,
  batchResults: ReadonlyArray<TileBatchResult>,
  wallSeconds: number,
  workers: number,
  contention: ContentionSample
): TimedRun {
  const counted = { tensorFlops: 0, expOps: 0, loadBytes: 0 }
  const expected = { tensorFlops: 0, expOps: 0, loadBytes: 0 }
  const taskTimings: TaskTiming[] = []
  const backends = new Set<Backend>()
  let mismatchedTasks = 0
  let steps = 0

  batches.forEach((batch, b) => {
    batch.tasks.forEach((planned, t) => {
      const result = batchResults[b]!.results[t]!
      backends.add(result.backend)
      const c = result.counted
      const e = planned.expected
      counted.tensorFlops += c.tensorFlops
      counted.expOps += c.expOps
      counted.loadBytes += c.loadBytes
      expected.tensorFlops += e.tensorFlops
      expected.expOps += e.expOps
      expected.loadBytes += e.loadBytes
      steps += c.steps
      if (c.tensorFlops !== e.tensorFlops || c.expOps !== e.expOps || c.loadBytes !== e.loadBytes) mismatchedTasks++
      taskTimings.push({ predictedSeconds: planned.seconds, measuredSeconds: taskSeconds(result), steps: c.steps })
    })
  })

  const busySeconds = batchResults.reduce((sum, r) => sum + r.workerSeconds, 0)
  const waits = batchResults.map((r) => r.waitSeconds)
  const waitSeconds = waits.every((w): w is number => w !== undefined) ? waits.reduce((sum, w) => sum + w, 0) : undefined
  return {
    wallSeconds,
    workers,
    batches: batches.length,
    tasks: taskTimings.length,
    steps,
    busySeconds,
    waitSeconds,
    utilization: busySeconds / (workers * wallSeconds),
    countsMatch: mismatchedTasks === 0,
    mismatchedTasks,
    counted,
    expected,
    taskTimings,
    contention,
    backends: [...backends].sort()
  }
}

const warmedShapes = new WeakMap<TilePoolService, Set<string>>()


/**
 * Compile every tile shape in every worker before timing. One warm probe per
 * worker is sent at once; each waits at a barrier until all have arrived, so
 * the probes land on distinct workers. Each probe runs the shortest task of
 * each new shape (a copy: the originals keep their buffers).
 */
export function warmWorkers(pool: TilePoolService, tasks: ReadonlyArray<TileTask>): Effect.Effect<void, TileExecutionError> {
  const warmed = warmedShapes.get(pool) ?? new Set<string>()
  warmedShapes.set(pool, warmed)
  const shortest = new Map<string, TileTask>()
  for (const task of tasks) {
    const key = kernelShapeKey(task)
    if (warmed.has(key)) continue
    const known = shortest.get(key)
    if (!known || taskSteps(task) < taskSteps(known)) shortest.set(key, task)
  }
  if (shortest.size === 0) return Effect.void

  const arrivals = new SharedArrayBuffer(4)
  const warmTasks = [...shortest.values()].map((task) => ({ ...task, reference: false }))
  return Effect.forEach(
    Array.from({ length: pool.workers }, (_, index) => index),
    (index) => pool.runProbe({ kind: "probe-warm", id: `warm-${index}`, arrivals, parties: pool.workers, timeoutMs: 30_000, tasks: warmTasks }),
    { concurrency: "unbounded" }
  ).pipe(
    Effect.tap((results) =>
      results.every((r) => r.allArrived)
        ? Effect.void
        : Effect.logWarning("not every worker reached the warm-up barrier; the first timed tasks may include kernel compilation")
    ),
    Effect.map(() => {
      for (const key of shortest.keys()) warmed.add(key)
    })
  )
}

/** Return a task's measured seconds: the handler's wall time in the worker. */
export function taskSeconds(result: TileResult): number {
  const timing = result as { readonly workerSeconds?: number; readonly kernelSeconds: number }
  return timing.workerSeconds ?? timing.kernelSeconds
}

/** Tasks per worker in a speed reference measurement. */
const referenceTasksPerWorker = 3

/**
 * Measure the machine's current speed on a fixed workload: three 8-step
 * 64×64 attention tasks (head dim 128, data carried) per worker, all workers at
 * once. Calibration stores the seconds per task, and validation measures it
 * again before each case. So a change of the machine's speed since calibration
 * (a lower clock, other virtual machines on the host) shows as a ratio instead
 * of as model error.
 */
export function measureReferenceTask(pool: TilePoolService, backend: Backend): Effect.Effect<number, TileExecutionError> {
  return Effect.gen(function* () {
    const shape = referenceProbe()
    yield* warmWorkers(pool, [shape.build(1, backend, 0)])
    const batches = Array.from({ length: pool.workers }, (_, worker) => ({
      kind: "batch" as const,
      id: `reference-${worker}`,
      tasks: Array.from({ length: referenceTasksPerWorker }, (_, index) => shape.build(8, backend, worker * 10 + index))
    }))
    const results = yield* Effect.forEach(batches, (batch) => pool.runBatch(batch), { concurrency: "unbounded" })
    return results.reduce((sum, r) => sum + r.workerSeconds, 0) / (pool.workers * referenceTasksPerWorker)
  })
}

