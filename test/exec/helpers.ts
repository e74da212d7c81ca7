import { fillRow, TensorId } from "../../src/exec/data.js"
import type { AttentionTileTask, Backend } from "../../src/exec/task.js"

/**
 * A tile task over `steps` key tiles of blockN keys, with seeded data. Row r's
 * visible key range is given by `visible(r)`; padded rows see nothing.
 */
export function makeTask(options: {
  rows: number
  realRows?: number
  blockN: number
  headDim: number
  headDimV: number
  steps: number
  backend?: Backend
  lastStepKeys?: number
  visible: (row: number) => { lo: number; hi: number }
  finalize?: boolean
}): AttentionTileTask {
  const { rows, blockN, headDim, headDimV, steps } = options
  const realRows = options.realRows ?? rows
  const q = new Float32Array(rows * headDim)
  const rowLo = new Float32Array(rows)
  const rowHi = new Float32Array(rows)
  for (let r = 0; r < realRows; r++) {
    fillRow(q, r * headDim, headDim, { seed: 7, tensor: TensorId.query, batch: 0, head: 0, position: r }, "bf16")
    const range = options.visible(r)
    rowLo[r] = range.lo
    rowHi[r] = range.hi
  }
  const k = new Float32Array(steps * blockN * headDim)
  const v = new Float32Array(steps * blockN * headDimV)
  const stepStart = new Float32Array(steps)
  const stepKeys = new Float32Array(steps)
  for (let s = 0; s < steps; s++) {
    stepStart[s] = s * blockN
    stepKeys[s] = s === steps - 1 && options.lastStepKeys !== undefined ? options.lastStepKeys : blockN
    for (let j = 0; j < stepKeys[s]!; j++) {
      const at = { seed: 7, batch: 0, head: 0, position: s * blockN + j }
      fillRow(k, (s * blockN + j) * headDim, headDim, { ...at, tensor: TensorId.key }, "bf16")
      fillRow(v, (s * blockN + j) * headDimV, headDimV, { ...at, tensor: TensorId.value }, "bf16")
    }
  }
  return {
    kind: "attention-forward",
    id: "test",
    backend: options.backend ?? "webasm",
    rows,
    realRows,
    blockN,
    headDim,
    headDimV,
    elementBytes: 2,
    scale: 1 / Math.sqrt(headDim),
    stepStart,
    stepKeys,
    q,
    k,
    v,
    rowLo,
    rowHi,
    finalize: options.finalize ?? true
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
