import type { Backend, TileTask } from "./task.js"

/**
 * Calibration probes: small messages the pool's workers reply to, so that the
 * pool itself can be measured (dispatch, transfer, kernel rates in a worker)
 * and every worker can be warmed up before a timed run.
 */

/**
 * A round trip: the worker returns `returnBytes` bytes and the `buffers` it
 * received. The payload and buffers travel to the worker moved or copied (by
 * the caller's transfer list); what comes back is moved when `moveBack`,
 * copied otherwise.
 */
export interface EchoProbe {
  readonly kind: "probe-echo"
  readonly id: string
  readonly payload: Uint8Array
  readonly returnBytes: number
  readonly moveBack: boolean
  readonly buffers?: ReadonlyArray<Uint8Array> | undefined
}

/**
 * Warm one worker: run `tasks` (compiling their kernels), then wait until
 * `parties` probes have arrived. Because a waiting worker takes no other task,
 * `parties` warm probes sent together land on `parties` different workers.
 */
export interface WarmProbe {
  readonly kind: "probe-warm"
  readonly id: string
  /** An Int32Array's buffer of one element, counting arrivals. */
  readonly arrivals: SharedArrayBuffer
  readonly parties: number
  readonly timeoutMs: number
  readonly tasks: ReadonlyArray<TileTask>
}

/**
 * A gpu.js microbenchmark run `repeats` times over `elements` outputs:
 * "copy" out[x] = a[x] (the argument upload and readback a tile kernel pays),
 * "exp" 16 exp per output, "fma" 128 multiply-adds per output in 4 chains,
 * "fill" deterministic tensor rows generated as tile data (no gpu.js).
 */
export interface KernelProbe {
  readonly kind: "probe-kernel"
  readonly id: string
  readonly bench: KernelProbeName
  readonly backend: Backend
  readonly elements: number
  readonly repeats: number
}

export type KernelProbeName = "copy" | "exp" | "fma" | "fill"

export type ProbeTask = EchoProbe | WarmProbe | KernelProbe

export interface EchoResult {
  readonly id: string
  readonly threadId: number
  readonly payload: Uint8Array
  readonly buffers: ReadonlyArray<Uint8Array>
}

export interface WarmResult {
  readonly id: string
  readonly threadId: number
  /** False when the wait timed out before every party arrived. */
  readonly allArrived: boolean
  readonly seconds: number
}

export interface KernelProbeResult {
  readonly id: string
  readonly threadId: number
  readonly backend: Backend
  /** Wall time of each repeat. */
  readonly seconds: ReadonlyArray<number>
  /** Each repeat's wall time less the time the thread waited for a CPU, where Linux reports it. */
  readonly runningSeconds?: ReadonlyArray<number> | undefined
  /** Work per repeat in the probe's unit: bytes moved (copy), exp operations, FLOPs (fma), elements (fill). */
  readonly work: number
}

export type ProbeResult<P extends ProbeTask> = P extends EchoProbe ? EchoResult : P extends WarmProbe ? WarmResult : KernelProbeResult

export const isProbe = (message: { readonly kind: string }): message is ProbeTask => message.kind.startsWith("probe-")
