import { Piscina } from "piscina"
import { handlers } from "./handlers.js"
import { resultTransferList, type TileResult, type TileTask } from "./task.js"

/**
 * Piscina worker entry: run one tile task and move its result buffers back.
 * Errors are re-thrown as plain objects with a tag, so the pool can rebuild
 * them as TileExecutionError on the main thread.
 */
export default function runTask(task: TileTask): TileResult {
  try {
    const result = dispatch(task)
    return Piscina.move(transferable(result, resultTransferList(result))) as unknown as TileResult
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    throw Object.assign(new Error(message), { tag: "TileExecutionError", taskId: task.id, kind: task.kind })
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

function dispatch(task: TileTask): TileResult {
  const handler = (handlers as Record<string, ((task: TileTask) => TileResult) | undefined>)[task.kind]
  if (!handler) throw new Error(`unknown tile task kind ${JSON.stringify((task as { kind?: unknown }).kind)}`)
  return handler(task)
}
