import { maskedThreshold } from "./kernels.js"

/**
 * Host-side combine step of split-KV (flash-decoding): merge the FP32 partial
 * states that the splits of the same rows produced. Each split's output is
 * rescaled by exp(m_split − m_total) and the sums are added; rows no split saw
 * come out as zeros.
 */
export function combineSplits(
  states: ReadonlyArray<{ rowMax: ArrayLike<number>; rowSum: ArrayLike<number>; acc: ArrayLike<number> }>,
  rows: number,
  headDimV: number
): Float64Array {
  const out = new Float64Array(rows * headDimV)
  for (let r = 0; r < rows; r++) {
    const maxes = states.map((s) => (s.rowMax[r]! < maskedThreshold ? -Infinity : s.rowMax[r]!))
    const total = Math.max(...maxes)
    if (total === -Infinity) continue
    let sum = 0
    const row = new Float64Array(headDimV)
    states.forEach((s, index) => {
      if (maxes[index] === -Infinity) return
      const weight = Math.exp(maxes[index]! - total)
      sum += weight * s.rowSum[r]!
      for (let c = 0; c < headDimV; c++) row[c] = row[c]! + weight * s.acc[r * headDimV + c]!
    })
    for (let c = 0; c < headDimV; c++) out[r * headDimV + c] = sum > 0 ? row[c]! / sum : 0
  }
  return out
}
