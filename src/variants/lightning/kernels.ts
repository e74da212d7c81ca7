/**
 * Tile kernels of lightning attention, written in the JavaScript subset gpu.js
 * compiles (no closures; `this.thread` is the output coordinate, `this.constants`
 * the compile-time sizes). The execution layer compiles them; this file has no
 * gpu.js import so planning code never loads it.
 *
 * Names follow Lightning Attention-2 (arXiv 2401.04658): a block of B rows with
 * queries Q, keys K, values V (B × dk, B × dk, B × e) and the incoming state KV
 * (dk × e) gives
 *   O  = [(Q·Kᵀ) ⊙ M]·V + (Q·KV) ⊙ λ^(i+1)          (intra + inter)
 *   KV ← λ^L·KV + (K ⊙ λ^(L−1−b))ᵀ·V                (state update)
 * with M[i][j] = λ^(i−j) for j ≤ i and 0 above the diagonal, L the block's real
 * rows. The decay λ enters as ln λ < 0, and every exponent is a distance that is
 * never negative: the mask and key decays test the index before calling exp, so
 * no lane evaluates λ^(negative), which overflows FP32 for fast-decaying heads
 * (λ = 0.4 and a distance of 255 give e^234). λ^(large) underflows to 0 harmlessly.
 */

export interface KernelThis {
  readonly thread: { readonly x: number; readonly y: number }
  readonly constants: Record<string, number>
}

/** M[i][j] = λ^(i−j) for j ≤ i, else 0; output [B, B]. */
export function decayMaskKernel(this: KernelThis, logDecay: number): number {
  const i = this.thread.y
  const j = this.thread.x
  if (j > i) {
    return 0
  }
  return Math.exp((i - j) * logDecay)
}

/** λ^(i+1): decay from the state entering the block to row i; output [B]. */
export function queryDecayKernel(this: KernelThis, logDecay: number): number {
  return Math.exp((this.thread.x + 1) * logDecay)
}

/** λ^(L−1−b): decay from row b to the block's last real row, 0 for padding rows; output [B]. */
export function keyDecayKernel(this: KernelThis, logDecay: number, blockRows: number): number {
  const b = this.thread.x
  if (b >= blockRows) {
    return 0
  }
  return Math.exp((blockRows - 1 - b) * logDecay)
}

/** λ^L, the state's decay across the block; output [1]. */
export function blockDecayKernel(logDecay: number, blockRows: number): number {
  return Math.exp(blockRows * logDecay)
}

/** S[i][j] = (q_i · k_j)·M[i][j] for j ≤ i, 0 above the diagonal; output [B, B]. Constants: headDim. */
export function maskedScoreKernel(this: KernelThis, q: Float32Array, k: Float32Array, mask: Float32Array[]): number {
  const i = this.thread.y
  const j = this.thread.x
  if (j > i) {
    return 0
  }
  let sum = 0
  for (let d = 0; d < this.constants.headDim!; d++) {
    sum += q[i * this.constants.headDim! + d]! * k[j * this.constants.headDim! + d]!
  }
  return sum * mask[i]![j]!
}

/** Intra-block output Σ_{j ≤ i} S[i][j]·V[j][c]; output [e, B]. Constants: blockSize, valueWidth. */
export function intraOutputKernel(this: KernelThis, scores: Float32Array[], v: Float32Array): number {
  const i = this.thread.y
  const c = this.thread.x
  let sum = 0
  for (let j = 0; j < this.constants.blockSize!; j++) {
    if (j <= i) {
      sum += scores[i]![j]! * v[j * this.constants.valueWidth! + c]!
    }
  }
  return sum
}

/** O[i][c] = intra[i][c] + λ^(i+1)·Σ_d Q[i][d]·KV[d][c]; output [e, B]. Constants: headDim, valueWidth. */
export function interOutputKernel(this: KernelThis, q: Float32Array, state: Float32Array, queryDecay: Float32Array, intra: Float32Array[]): number {
  const i = this.thread.y
  const c = this.thread.x
  let sum = 0
  for (let d = 0; d < this.constants.headDim!; d++) {
    sum += q[i * this.constants.headDim! + d]! * state[d * this.constants.valueWidth! + c]!
  }
  return intra[i]![c]! + queryDecay[i]! * sum
}

/** The block's own state contribution Σ_b λ^(L−1−b)·K[b][d]·V[b][c]; output [e, dk]. Constants: blockSize, headDim, valueWidth. */
export function blockStateKernel(this: KernelThis, k: Float32Array, v: Float32Array, keyDecay: Float32Array): number {
  const d = this.thread.y
  const c = this.thread.x
  let sum = 0
  for (let b = 0; b < this.constants.blockSize!; b++) {
    sum += keyDecay[b]! * k[b * this.constants.headDim! + d]! * v[b * this.constants.valueWidth! + c]!
  }
  return sum
}

/** KV ← λ^L·KV + local; output [e, dk]. Constants: valueWidth. */
export function stateScanKernel(this: KernelThis, state: Float32Array, local: Float32Array[], blockDecay: Float32Array): number {
  const d = this.thread.y
  const c = this.thread.x
  return blockDecay[0]! * state[d * this.constants.valueWidth! + c]! + local[d]![c]!
}

/** Decode: S ← λ·S + k·vᵀ; output [e, dk]. Constants: valueWidth. */
export function decodeStateKernel(this: KernelThis, state: Float32Array, k: Float32Array, v: Float32Array, decay: number): number {
  const d = this.thread.y
  const c = this.thread.x
  return decay * state[d * this.constants.valueWidth! + c]! + k[d]! * v[c]!
}

/** Decode: o[c] = Σ_d q[d]·S[d][c] with the updated state; output [e]. Constants: headDim. */
export function decodeOutputKernel(this: KernelThis, q: Float32Array, state: Float32Array[]): number {
  const c = this.thread.x
  let sum = 0
  for (let d = 0; d < this.constants.headDim!; d++) {
    sum += q[d]! * state[d]![c]!
  }
  return sum
}
