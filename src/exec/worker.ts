import { Piscina } from "piscina"
import { threadId } from "node:worker_threads"
import type { TileBatch, TileBatchResult } from "./batch.js"
import { handlers } from "./handlers.js"
import { isProbe, type EchoResult, type ProbeTask } from "./probe.js"
import { runProbe } from "./probe-run.js"
import { resultTransferList, type TileResult, type TileTask } from "./task.js"
import { runQueueWaitSeconds, waitBetween } from "./thread-time.js"

/**
 * Piscina worker entry: run one tile task, a batch of them, or a calibration
 * probe, and move the result buffers back. Each tile result carries the
 * handler's wall time, the part of it the thread waited for a CPU where Linux
 * reports it (thread-time.ts), and this worker's thread id. Errors are re-thrown as
 * plain objects with a tag, so the pool can rebuild them as TileExecutionError
 * on the main thread.
 */
export default function runTask(message: TileTask | TileBatch | ProbeTask): unknown {
  try {
    if (message.kind === "batch") return runBatch(message as TileBatch)
    if (isProbe(message)) return runProbeMessage(message)
    const result = timedDispatch(message as TileTask)
    return Piscina.move(transferable(result, resultTransferList(result))) as unknown
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw Object.assign(new Error(reason), { tag: "TileExecutionError", taskId: message.id, kind: message.kind })
  }
}

/** Wrap a value so that Piscina moves `buffers` with it instead of copying them. */
export function transferable<T>(value: T, buffers: ReadonlyArray<ArrayBuffer>): Parameters<typeof Piscina.move>[0] {
  return {
    get [Piscina.transferableSymbol]() {
      return buffers
    },
    get [Piscina.valueSymbol]() {
      return value
    }
  } as unknown as Parameters<typeof Piscina.move>[0]
}

function runBatch(batch: TileBatch): unknown {
  const startedAtMs = performance.timeOrigin + performance.now()
  const started = performance.now()
  const waitStart = runQueueWaitSeconds()
  const results = batch.tasks.map((task) => timedDispatch(task))
  const result: TileBatchResult = {
    id: batch.id,
    results,
    workerSeconds: (performance.now() - started) / 1000,
    waitSeconds: waitBetween(waitStart, runQueueWaitSeconds()),
    threadId,
    startedAtMs,
    endedAtMs: performance.timeOrigin + performance.now()
  }
  const buffers = [...new Set(results.flatMap((r) => resultTransferList(r)))]
  return Piscina.move(transferable(result, buffers)) as unknown
}

function runProbeMessage(probe: ProbeTask): unknown {
  const result = runProbe(probe, dispatch)
  if (probe.kind === "probe-echo" && probe.moveBack) {
    const echo = result as EchoResult
    return Piscina.move(transferable(result, [echo.payload, ...echo.buffers].map((array) => array.buffer as ArrayBuffer))) as unknown
  }
  return result
}

function timedDispatch(task: TileTask): TileResult {
  const started = performance.now()
  const waitStart = runQueueWaitSeconds()
  const result = dispatch(task)
  return { ...result, workerSeconds: (performance.now() - started) / 1000, waitSeconds: waitBetween(waitStart, runQueueWaitSeconds()), threadId }
}

function dispatch(task: TileTask): TileResult {
  const handler = (handlers as Record<string, ((task: TileTask) => TileResult) | undefined>)[task.kind]
  if (!handler) throw new Error(`unknown tile task kind ${JSON.stringify((task as { kind?: unknown }).kind)}`)
  return handler(task)
}
