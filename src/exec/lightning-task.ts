import type { Backend, CountedWork } from "./task.js"

/**
 * Kernel layout a lightning task runs as, which decides what it loads from
 * global memory. In "fused" one CTA walks the blocks with the state on chip. In
 * "split" each block has an intra CTA, a scan step and an inter CTA, which
 * exchange partial outputs and states through memory. "decode" is one token's state update.
 */
export type LightningLayout = "fused" | "split" | "decode"

/** Element type of a state kept in memory. */
export type LightningStateDtype = "fp32" | "bf16" | "fp16"

/**
 * One lightning-attention task: `stepRows.length` consecutive blocks of one
 * (batch, head, value slice) lane from an incoming state, or one decode step
 * (blockSize 1). Q and K hold blockSize × headDim values per block and V holds
 * blockSize × valueWidth, zero past each block's real rows. Only the last block
 * may be partial.
 */
export interface LightningTileTask {
  readonly kind: "lightning-forward"
  readonly id: string
  readonly backend: Backend
  readonly layout: LightningLayout
  readonly blockSize: number
  readonly headDim: number
  /** Value columns of this lane (a slice of the head's dv when values are split). */
  readonly valueWidth: number
  /** Bytes per element of Q, K, V and O at the modeled dtype, for counting loads. */
  readonly elementBytes: number
  /** Stored states (incoming, block prefixes, outgoing) are rounded to this type. */
  readonly stateDtype: LightningStateDtype
  /** ln λ of the lane's head; negative. */
  readonly logDecay: number
  /** Real rows of each block. */
  readonly stepRows: Float32Array
  readonly q: Float32Array
  readonly k: Float32Array
  readonly v: Float32Array
  /** Incoming state, headDim × valueWidth row-major; absent means zero. */
  readonly state?: Float32Array | undefined
  /** The incoming state is loaded from global memory (counted) rather than carried on chip. */
  readonly loadsState: boolean
  /**
   * Compute the float64 reference (O(rows²)); absent means true. Timing runs
   * set false, and the result's reference arrays are then empty.
   */
  readonly reference?: boolean | undefined
}

export interface LightningTileResult {
  readonly kind: "lightning-forward"
  readonly id: string
  /** The gpu.js backend that actually ran, which may differ from the one requested. */
  readonly backend: Backend
  /** Kernel output, laid out as the task's V (padding rows zero). */
  readonly output: Float32Array
  /** Outgoing state as stored (rounded to the task's state dtype). */
  readonly state: Float32Array
  readonly referenceOutput: Float64Array
  readonly referenceState: Float64Array
  readonly counted: CountedWork
  readonly kernelSeconds: number
  readonly referenceSeconds: number
  /** Set by the worker entry: the handler's wall time and the worker's thread id. */
  readonly workerSeconds?: number | undefined
  readonly threadId?: number | undefined
}

export function lightningTaskArrays(task: LightningTileTask): Float32Array[] {
  return [task.stepRows, task.q, task.k, task.v, ...(task.state ? [task.state] : [])]
}

export function lightningResultArrays(result: LightningTileResult): Array<Float32Array | Float64Array> {
  return [result.output, result.state, result.referenceOutput, result.referenceState]
}

export function isLightningResult(result: object): result is LightningTileResult {
  return "kind" in result && result.kind === "lightning-forward"
}
