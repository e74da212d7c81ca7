import type { Dtype } from "../hardware/profile-schema.js"
import { isLightningResult, lightningResultArrays, lightningTaskArrays, type LightningTileResult, type LightningTileTask } from "./lightning-task.js"
import { isMobaGatingResult, mobaGatingResultArrays, mobaGatingTaskArrays, type MobaGatingResult, type MobaGatingTask } from "../variants/moba/gating-task.js"

/**
 * The protocol between the main thread and tile workers. A task carries its
 * input tiles as Float32Arrays moved with a transfer list, or the coordinates
 * the worker generates them from. The result carries the kernel's output, the
 * float64 reference output and what the kernel counted.
 */

export type Backend = "webasm" | "cpu" | "gl"

/**
 * Coordinates of a task's Q, K and V in the deterministic full-size tensors
 * (src/exec/data.ts), for a worker to generate them instead of receiving them.
 * Query row r < realRows is (batch, queryHeads[r], queryPositions[r]); the keys
 * of step s are the consecutive positions keyPositions[s] .. + stepKeys[s] − 1
 * of (batch, kvHead). V is the first headDimV columns of K when the task's
 * valueInKey is set.
 */
export interface AttentionTileFill {
  readonly seed: number
  readonly dtype: Dtype
  readonly batch: number
  readonly kvHead: number
  readonly queryHeads: Float32Array
  readonly queryPositions: Float32Array
  /** Sequence position of each step's first key; absent means stepStart (the task's key space is the sequence). */
  readonly keyPositions?: Float32Array | undefined
}

/** Online-softmax state per row: running max, running sum and the unnormalized output. */
export interface SoftmaxState {
  readonly rowMax: Float32Array
  readonly rowSum: Float32Array
  /** rows × dv, row-major. */
  readonly acc: Float32Array
}

/**
 * One forward attention tile task: `rows` query rows against the key/value tiles
 * of its steps. Step s covers keys stepStart[s] .. stepStart[s] + stepKeys[s] − 1
 * of the task's key space; K and V hold blockN rows per step (zero-padded). Row r
 * sees keys in [rowLo[r], rowHi[r]) of the same key space; a row with
 * rowLo >= rowHi sees nothing and must come out as zeros.
 */
export interface AttentionTileTask {
  readonly kind: "attention-forward"
  readonly id: string
  readonly backend: Backend
  readonly rows: number
  /** Rows that hold real queries; the rest are MMA padding (counted, not loaded). */
  readonly realRows: number
  readonly blockN: number
  readonly headDim: number
  readonly headDimV: number
  /** Bytes per element of the modeled dtype, for counting loads. */
  readonly elementBytes: number
  /** V is the first headDimV columns of each K row (MLA latent), so a key row loads headDim elements. */
  readonly valueInKey?: boolean | undefined
  readonly scale: number
  readonly stepStart: Float32Array
  readonly stepKeys: Float32Array
  readonly q: Float32Array
  readonly k: Float32Array
  readonly v: Float32Array
  readonly rowLo: Float32Array
  readonly rowHi: Float32Array
  /** Incoming state; absent means a fresh row (max −∞, sum 0, output 0). */
  readonly state?: SoftmaxState | undefined
  /**
   * The task covers every key its rows see (a whole work item): the worker also
   * computes the two-pass float64 output for comparison with the normalized state.
   */
  readonly finalize: boolean
  /**
   * Compute the float64 reference; absent means true. Timing runs set false,
   * and the result's reference arrays are then empty.
   */
  readonly reference?: boolean | undefined
  /** Generate q, k and v in the worker from these coordinates; q, k and v are then empty arrays. */
  readonly fill?: AttentionTileFill | undefined
}

/** What a kernel run counted while executing, in the cost model's units. */
export interface CountedWork {
  readonly tensorFlops: number
  readonly expOps: number
  /** Global-memory bytes loaded per step (for attention: K and V of the real keys), at the modeled dtype. */
  readonly loadBytes: number
  readonly steps: number
}

export interface AttentionTileResult {
  readonly id: string
  /** The gpu.js backend that actually ran, which may differ from the one requested. */
  readonly backend: Backend
  readonly kernelState: SoftmaxState
  readonly referenceRowMax: Float64Array
  readonly referenceRowSum: Float64Array
  readonly referenceAcc: Float64Array
  /** Two-pass float64 output, rows × dv, for finalized tasks. */
  readonly referenceOutput?: Float64Array | undefined
  readonly counted: CountedWork
  readonly kernelSeconds: number
  readonly referenceSeconds: number
  /** Seconds the worker spent generating q, k and v from the task's fill coordinates (0 without). */
  readonly fillSeconds?: number | undefined
  /** Set by the worker entry: the handler's wall time and the worker's thread id. */
  readonly workerSeconds?: number | undefined
  readonly threadId?: number | undefined
  /** Set by the worker entry where Linux reports it: seconds of workerSeconds the thread waited for a CPU. */
  readonly waitSeconds?: number | undefined
}

export type TileTask = AttentionTileTask | LightningTileTask | MobaGatingTask
export type TileResult = AttentionTileResult | LightningTileResult | MobaGatingResult

/** Buffers of a task to move (not copy) to the worker. */
export function taskTransferList(task: TileTask): ArrayBuffer[] {
  if (task.kind === "lightning-forward") return uniqueBuffers(lightningTaskArrays(task))
  if (task.kind === "moba-gating") return uniqueBuffers(mobaGatingTaskArrays(task))
  const arrays = [task.stepStart, task.stepKeys, task.q, task.k, task.v, task.rowLo, task.rowHi]
  if (task.state) arrays.push(task.state.rowMax, task.state.rowSum, task.state.acc)
  if (task.fill) {
    arrays.push(task.fill.queryHeads, task.fill.queryPositions)
    if (task.fill.keyPositions) arrays.push(task.fill.keyPositions)
  }
  return uniqueBuffers(arrays)
}

export function resultTransferList(result: TileResult): ArrayBuffer[] {
  if (isLightningResult(result)) return uniqueBuffers(lightningResultArrays(result))
  if (isMobaGatingResult(result)) return uniqueBuffers(mobaGatingResultArrays(result))
  const { kernelState } = result
  const arrays = [kernelState.rowMax, kernelState.rowSum, kernelState.acc, result.referenceRowMax, result.referenceRowSum, result.referenceAcc]
  if (result.referenceOutput) arrays.push(result.referenceOutput)
  return uniqueBuffers(arrays)
}

function uniqueBuffers(arrays: ReadonlyArray<Float32Array | Float64Array>): ArrayBuffer[] {
  return [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))]
}
