import { maskedThreshold } from "./kernels.js"

/**
 * Float64 references for attention tiles. They share no code with the gpu.js
 * kernels: plain loops in double precision, −∞ as a real −∞.
 */

export interface ReferenceState {
  readonly rowMax: Float64Array
  readonly rowSum: Float64Array
  readonly acc: Float64Array
}

export interface TileInputs {
  readonly rows: number
  readonly headDim: number
  readonly headDimV: number
  readonly blockN: number
  readonly scale: number
  readonly stepStart: ArrayLike<number>
  readonly stepKeys: ArrayLike<number>
  readonly q: ArrayLike<number>
  readonly k: ArrayLike<number>
  readonly v: ArrayLike<number>
  readonly rowLo: ArrayLike<number>
  readonly rowHi: ArrayLike<number>
}

/** A fresh state, or the given FP32 state widened (a sentinel max becomes −∞). */
export function initialReferenceState(rows: number, headDimV: number, state?: { rowMax: ArrayLike<number>; rowSum: ArrayLike<number>; acc: ArrayLike<number> }): ReferenceState {
  const rowMax = new Float64Array(rows).fill(-Infinity)
  const rowSum = new Float64Array(rows)
  const acc = new Float64Array(rows * headDimV)
  if (state) {
    for (let r = 0; r < rows; r++) {
      rowMax[r] = state.rowMax[r]! < maskedThreshold ? -Infinity : state.rowMax[r]!
      rowSum[r] = state.rowSum[r]!
    }
    for (let i = 0; i < rows * headDimV; i++) acc[i] = state.acc[i]!
  }
  return { rowMax, rowSum, acc }
}

/** Apply every step of a tile task to a state in float64, one key at a time. */
export function referenceSteps(inputs: TileInputs, state: ReferenceState): ReferenceState {
  const { rows, headDim, headDimV, blockN, scale } = inputs
  const rowMax = Float64Array.from(state.rowMax)
  const rowSum = Float64Array.from(state.rowSum)
  const acc = Float64Array.from(state.acc)

  for (let step = 0; step < inputs.stepStart.length; step++) {
    const start = inputs.stepStart[step]!
    const keys = inputs.stepKeys[step]!
    for (let r = 0; r < rows; r++) {
      const scores: number[] = []
      const keyIndex: number[] = []
      for (let j = 0; j < keys; j++) {
        const key = start + j
        if (key < inputs.rowLo[r]! || key >= inputs.rowHi[r]!) continue
        let dot = 0
        for (let c = 0; c < headDim; c++) dot += inputs.q[r * headDim + c]! * inputs.k[(step * blockN + j) * headDim + c]!
        scores.push(dot * scale)
        keyIndex.push(step * blockN + j)
      }
      if (scores.length === 0) continue

      const newMax = Math.max(rowMax[r]!, ...scores)
      const alpha = rowMax[r] === -Infinity ? 0 : Math.exp(rowMax[r]! - newMax)
      let sum = alpha * rowSum[r]!
      for (let c = 0; c < headDimV; c++) acc[r * headDimV + c] = alpha * acc[r * headDimV + c]!
      scores.forEach((score, index) => {
        const p = Math.exp(score - newMax)
        sum += p
        const row = keyIndex[index]!
        for (let c = 0; c < headDimV; c++) acc[r * headDimV + c] = acc[r * headDimV + c]! + p * inputs.v[row * headDimV + c]!
      })
      rowMax[r] = newMax
      rowSum[r] = sum
    }
  }
  return { rowMax, rowSum, acc }
}

/**
 * Attention output of every row over all the task's keys, by the textbook
 * two-pass softmax (max, then normalized weights), with no online rescaling.
 * Rows that see no key give zeros.
 */
export function referenceOutput(inputs: TileInputs): Float64Array {
  const { rows, headDim, headDimV, blockN, scale } = inputs
  const out = new Float64Array(rows * headDimV)
  for (let r = 0; r < rows; r++) {
    const weights: Array<{ row: number; score: number }> = []
    for (let step = 0; step < inputs.stepStart.length; step++) {
      for (let j = 0; j < inputs.stepKeys[step]!; j++) {
        const key = inputs.stepStart[step]! + j
        if (key < inputs.rowLo[r]! || key >= inputs.rowHi[r]!) continue
        let dot = 0
        for (let c = 0; c < headDim; c++) dot += inputs.q[r * headDim + c]! * inputs.k[(step * blockN + j) * headDim + c]!
        weights.push({ row: step * blockN + j, score: dot * scale })
      }
    }
    if (weights.length === 0) continue
    const max = Math.max(...weights.map((w) => w.score))
    const total = weights.reduce((sum, w) => sum + Math.exp(w.score - max), 0)
    for (const w of weights) {
      const p = Math.exp(w.score - max) / total
      for (let c = 0; c < headDimV; c++) out[r * headDimV + c] = out[r * headDimV + c]! + p * inputs.v[w.row * headDimV + c]!
    }
  }
  return out
}

/** Normalized output acc / rowSum of a state (zero where the row saw nothing). */
export function normalizedOutput(state: { rowSum: ArrayLike<number>; acc: ArrayLike<number> }, rows: number, headDimV: number): Float64Array {
  const out = new Float64Array(rows * headDimV)
  for (let r = 0; r < rows; r++) {
    const sum = state.rowSum[r]!
    if (sum <= 0) continue
    for (let c = 0; c < headDimV; c++) out[r * headDimV + c] = state.acc[r * headDimV + c]! / sum
  }
  return out
}
