import { Context, Data, Effect, Layer, Runtime } from "effect"
import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { join } from "node:path"
import { Piscina } from "piscina"
import { packageRoot } from "../paths.js"
import { batchTransferList, type TileBatch, type TileBatchResult } from "./batch.js"
import type { ProbeResult, ProbeTask } from "./probe.js"
import { taskTransferList, type Backend, type TileResult, type TileTask } from "./task.js"

/** A tile task failed in a worker; the worker's message is kept. */
export class TileExecutionError extends Data.TaggedError("TileExecutionError")<{
  readonly taskId: string
  readonly reason: string
}> {
  override get message(): string {
    return `tile task ${this.taskId} failed: ${this.reason}`
  }
}

/** The worker pool could not start. */
export class PoolStartError extends Data.TaggedError("PoolStartError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `the tile worker pool could not start: ${this.reason}`
  }
}

export interface TilePoolOptions {
  /** Worker threads; defaults to the machine's available parallelism. */
  readonly workers?: number | undefined
  readonly backend?: Backend | undefined
}

export interface TilePoolService {
  readonly workers: number
  /** The backend requested; each result says which one actually ran. */
  readonly backend: Backend
  run(task: TileTask): Effect.Effect<TileResult, TileExecutionError>
  /** Run several tasks in order on one worker, as one pool task. */
  runBatch(batch: TileBatch): Effect.Effect<TileBatchResult, TileExecutionError>
  /** Send a calibration probe; `transfer` moves the probe's payload instead of copying it. */
  runProbe<P extends ProbeTask>(probe: P, transfer?: ReadonlyArray<ArrayBuffer>): Effect.Effect<ProbeResult<P>, TileExecutionError>
}

export class TilePool extends Context.Tag("attnsim/TilePool")<TilePool, TilePoolService>() {}

export const workerPath = (): string => join(packageRoot(), "dist", "src", "exec", "worker.js")

/**
 * A Piscina pool of compiled JS workers, sized to the cores, destroyed when the
 * scope closes (normal exit, failure or interrupt). Headless GL loads in one
 * thread per process only, so the gl backend gets a single worker.
 */
export function tilePoolLayer(options: TilePoolOptions = {}): Layer.Layer<TilePool, PoolStartError> {
  return Layer.scoped(TilePool, acquirePool(options))
}

function acquirePool(options: TilePoolOptions) {
  const backend = options.backend ?? "webasm"
  const requested = options.workers ?? availableParallelism()
  const workers = backend === "gl" ? 1 : Math.max(1, requested)

  return Effect.acquireRelease(
    Effect.gen(function* () {
      const filename = workerPath()
      if (!existsSync(filename)) {
        return yield* Effect.fail(new PoolStartError({ reason: `${filename} is missing; run "npm run build" first` }))
      }
      const pool = new Piscina({ filename, minThreads: workers, maxThreads: workers, idleTimeout: 60_000 })
      // Without a listener, a worker that fails to load would crash the process.
      // The runtime carries the caller's logger, so the line goes where its other logs go (stderr in the CLI).
      const runtime = yield* Effect.runtime<never>()
      pool.on("error", (error: unknown) => {
        Runtime.runFork(runtime)(Effect.logError(`tile worker failed: ${(error instanceof Error ? error.message : String(error)).replace(/\s+/g, " ").slice(0, 400)}`))
      })
      yield* Effect.logDebug("tile pool started").pipe(Effect.annotateLogs({ workers, backend }))
      return { pool, open: { value: true } }
    }),
    ({ pool, open }) =>
      Effect.sync(() => {
        open.value = false
      }).pipe(
        Effect.zipRight(Effect.promise(() => pool.destroy())),
        Effect.tap(() => Effect.logDebug("tile pool closed").pipe(Effect.annotateLogs({ workers })))
      )
  ).pipe(
    Effect.map(
      ({ pool, open }): TilePoolService => ({
        workers,
        backend,
        run: (task) => runOnPool<TileResult>(pool, open, task, taskTransferList(task)),
        runBatch: (batch) => runOnPool<TileBatchResult>(pool, open, batch, batchTransferList(batch)),
        runProbe: <P extends ProbeTask>(probe: P, transfer: ReadonlyArray<ArrayBuffer> = []) => runOnPool<ProbeResult<P>>(pool, open, probe, [...transfer])
      })
    )
  )
}

function runOnPool<R>(pool: Piscina, open: { readonly value: boolean }, message: { readonly id: string }, transferList: ArrayBuffer[]): Effect.Effect<R, TileExecutionError> {
  if (!open.value) return Effect.fail(new TileExecutionError({ taskId: message.id, reason: "the tile pool is closed" }))
  return Effect.tryPromise({
    try: (signal) => pool.run(message, { transferList, signal }) as Promise<R>,
    catch: (error) => new TileExecutionError({ taskId: message.id, reason: error instanceof Error ? error.message : String(error) })
  })
}
