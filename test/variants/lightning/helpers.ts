import { fillRow, TensorId } from "../../../src/exec/data.js"
import type { LightningLayout, LightningStateDtype, LightningTileTask } from "../../../src/exec/lightning-task.js"
import { deviceRates, type DeviceRates } from "../../../src/hardware/device.js"
import { loadProfile } from "../../../src/hardware/load.js"
import type { AttentionShape } from "../../../src/workload/shape.js"

/** Returns the shape of one MiniMax-Text-01 lightning layer: 64 heads × head dim 128, no GQA. */
export function minimaxShape(seqLenQ: number, seqLenKV = seqLenQ, batch = 1): AttentionShape {
  return { batch, heads: 64, kvHeads: 64, headDim: 128, headDimV: 128, seqLenQ, seqLenKV, causal: true, dtype: "bf16" }
}

const deviceCache = new Map<string, DeviceRates>()

export function device(id: string): DeviceRates {
  let rates = deviceCache.get(id)
  if (!rates) {
    rates = deviceRates(loadProfile(id), "bf16")
    deviceCache.set(id, rates)
  }
  return rates
}

export interface TaskOptions {
  readonly blockSize: number
  readonly headDim: number
  readonly valueWidth: number
  /** Real rows of each block. */
  readonly stepRows: ReadonlyArray<number>
  readonly logDecay: number
  readonly layout?: LightningLayout
  readonly stateDtype?: LightningStateDtype
  /** Incoming state entries; absent means zero. */
  readonly state?: (index: number) => number
  readonly seed?: number
}

/** Builds a lightning task with seeded bf16 data. Row r of block s is sequence position s·blockSize + r. */
export function makeLightningTask(options: TaskOptions): LightningTileTask {
  const { blockSize: b, headDim: dk, valueWidth: e, stepRows } = options
  const steps = stepRows.length
  const seed = options.seed ?? 11
  const q = new Float32Array(steps * b * dk)
  const k = new Float32Array(steps * b * dk)
  const v = new Float32Array(steps * b * e)
  stepRows.forEach((rows, step) => {
    for (let r = 0; r < rows; r++) {
      const row = step * b + r
      const at = { seed, batch: 0, head: 0, position: row }
      fillRow(q, row * dk, dk, { ...at, tensor: TensorId.query }, "bf16")
      fillRow(k, row * dk, dk, { ...at, tensor: TensorId.key }, "bf16")
      fillRow(v, row * e, e, { ...at, tensor: TensorId.value }, "bf16")
    }
  })
  const state = options.state ? Float32Array.from({ length: dk * e }, (_, index) => options.state!(index)) : undefined
  return {
    kind: "lightning-forward",
    id: "test",
    backend: "webasm",
    layout: options.layout ?? "fused",
    blockSize: b,
    headDim: dk,
    valueWidth: e,
    elementBytes: 2,
    stateDtype: options.stateDtype ?? "fp32",
    logDecay: Math.fround(options.logDecay),
    stepRows: Float32Array.from(stepRows),
    q,
    k,
    v,
    state,
    loadsState: state !== undefined
  }
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!)
    max = Number.isNaN(d) ? Infinity : Math.max(max, d)
  }
  return max
}
