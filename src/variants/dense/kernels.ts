/**
 * Tile kernels of one online-softmax attention step, written in the JavaScript
 * subset gpu.js compiles (no closures; `this.thread` is the output coordinate,
 * `this.constants` the compile-time sizes). The execution layer compiles them;
 * this file has no gpu.js import so planning code never loads it.
 *
 * Names follow the FlashAttention papers: S = Q·Kᵀ·scale, rowMax m, rowSum l,
 * P = exp(S − m), O += P·V with the old O rescaled by exp(m_old − m_new).
 * A masked score is `maskedScore`, a finite stand-in for −∞; a row whose max is
 * still `maskedScore` has seen no key, its rescale factor is 0, so its sum and
 * output stay exactly 0 and no NaN can appear.
 */

/** Finite stand-in for −∞ in FP32 (the FP32 maximum is 3.4e38). */
export const maskedScore = -1e30
/** Anything below this is treated as masked (half the sentinel, far above any real score). */
export const maskedThreshold = -5e29

export interface KernelThis {
  readonly thread: { readonly x: number; readonly y: number }
  readonly constants: Record<string, number>
}

/** S[r][j] for one key tile; output [blockN, rows]. Constants: headDim. */
export function scoreKernel(
  this: KernelThis,
  q: Float32Array,
  k: Float32Array,
  rowLo: Float32Array,
  rowHi: Float32Array,
  stepStart: number,
  stepKeys: number,
  scale: number
): number {
  const r = this.thread.y
  const j = this.thread.x
  const key = stepStart + j
  if (j >= stepKeys || key < rowLo[r]! || key >= rowHi[r]!) {
    return -1e30
  }
  let sum = 0
  for (let c = 0; c < this.constants.headDim!; c++) {
    sum += q[r * this.constants.headDim! + c]! * k[j * this.constants.headDim! + c]!
  }
  return sum * scale
}

/** m_new[r] = max(m_old[r], max_j S[r][j]); output [rows]. Constants: blockN. */
export function rowMaxKernel(this: KernelThis, scores: Float32Array[], rowMaxOld: Float32Array): number {
  const r = this.thread.x
  let m = rowMaxOld[r]!
  for (let j = 0; j < this.constants.blockN!; j++) {
    m = Math.max(m, scores[r]![j]!)
  }
  return m
}

/** P[r][j] = exp(S[r][j] − m_new[r]), 0 where masked; output [blockN, rows]. */
export function probabilityKernel(this: KernelThis, scores: Float32Array[], rowMaxNew: Float32Array): number {
  const r = this.thread.y
  const j = this.thread.x
  const s = scores[r]![j]!
  if (s < -5e29) {
    return 0
  }
  return Math.exp(s - rowMaxNew[r]!)
}

/** l_new[r] = exp(m_old − m_new)·l_old + Σ_j P[r][j]; output [rows]. Constants: blockN. */
export function rowSumKernel(this: KernelThis, p: Float32Array[], rowMaxOld: Float32Array, rowMaxNew: Float32Array, rowSumOld: Float32Array): number {
  const r = this.thread.x
  let alpha = 0
  if (rowMaxOld[r]! > -5e29) {
    alpha = Math.exp(rowMaxOld[r]! - rowMaxNew[r]!)
  }
  let l = alpha * rowSumOld[r]!
  for (let j = 0; j < this.constants.blockN!; j++) {
    l += p[r]![j]!
  }
  return l
}

/** O_new[r][c] = exp(m_old − m_new)·O_old[r][c] + Σ_j P[r][j]·V[j][c]; output [dv, rows]. Constants: blockN, headDimV. */
export function accumulateKernel(
  this: KernelThis,
  p: Float32Array[],
  v: Float32Array,
  acc: Float32Array,
  rowMaxOld: Float32Array,
  rowMaxNew: Float32Array
): number {
  const r = this.thread.y
  const c = this.thread.x
  let alpha = 0
  if (rowMaxOld[r]! > -5e29) {
    alpha = Math.exp(rowMaxOld[r]! - rowMaxNew[r]!)
  }
  let o = alpha * acc[r * this.constants.headDimV! + c]!
  for (let j = 0; j < this.constants.blockN!; j++) {
    o += p[r]![j]! * v[j * this.constants.headDimV! + c]!
  }
  return o
}
