/**
 * The protocol between the main thread and tile workers. A task carries its
 * input tiles as Float32Arrays moved with a transfer list; the result carries
 * the kernel's output, the float64 reference output and what the kernel counted.
 */

export type Backend = "webasm" | "cpu" | "gl"

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
}

export type TileTask = AttentionTileTask
export type TileResult = AttentionTileResult

/** Buffers of a task to move (not copy) to the worker. */
export function taskTransferList(task: TileTask): ArrayBuffer[] {
  const arrays = [task.stepStart, task.stepKeys, task.q, task.k, task.v, task.rowLo, task.rowHi]
  if (task.state) arrays.push(task.state.rowMax, task.state.rowSum, task.state.acc)
  return uniqueBuffers(arrays)
}

export function resultTransferList(result: TileResult): ArrayBuffer[] {
  const { kernelState } = result
  const arrays = [kernelState.rowMax, kernelState.rowSum, kernelState.acc, result.referenceRowMax, result.referenceRowSum, result.referenceAcc]
  if (result.referenceOutput) arrays.push(result.referenceOutput)
  return uniqueBuffers(arrays)
}

function uniqueBuffers(arrays: ReadonlyArray<Float32Array | Float64Array>): ArrayBuffer[] {
  return [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))]
}
