/**
 * Float64 reference of causal linear attention with decay, straight from the
 * definition and sharing no code with the gpu.js kernels: no blocks, no
 * recurrence, no masks. For rows i = 0 … n − 1 after an incoming state S₀ that
 * summarizes the tokens before row 0 (S₀ = Σ_{j<0} λ^(−1−j)·k_jᵀv_j),
 *   o_i   = λ^(i+1)·(q_i · S₀) + Σ_{j ≤ i} λ^(i−j)·(q_i · k_j)·v_j
 *   S_out = λ^n·S₀ + Σ_{j<n} λ^(n−1−j)·k_jᵀ·v_j
 * which costs O(n²·(dk + dv)): it is for checking sampled blocks, not for speed.
 */

export interface ReferenceInputs {
  /** Rows, consecutive in sequence order. */
  readonly rows: number
  readonly headDim: number
  readonly valueWidth: number
  /** rows × headDim, row-major. */
  readonly q: ArrayLike<number>
  readonly k: ArrayLike<number>
  /** rows × valueWidth, row-major. */
  readonly v: ArrayLike<number>
  /** ln λ (negative). */
  readonly logDecay: number
  /** headDim × valueWidth; absent means zero. */
  readonly state?: ArrayLike<number> | undefined
}

export interface ReferenceResult {
  /** rows × valueWidth. */
  readonly output: Float64Array
  /** headDim × valueWidth. */
  readonly state: Float64Array
}

export function referenceLinearAttention(inputs: ReferenceInputs): ReferenceResult {
  const { rows: n, headDim: dk, valueWidth: e, q, k, v, state } = inputs
  const lambda = Math.exp(inputs.logDecay)
  const output = new Float64Array(n * e)

  for (let i = 0; i < n; i++) {
    if (state) {
      const weight = Math.pow(lambda, i + 1)
      for (let c = 0; c < e; c++) {
        let sum = 0
        for (let d = 0; d < dk; d++) sum += q[i * dk + d]! * state[d * e + c]!
        output[i * e + c] = weight * sum
      }
    }
    for (let j = 0; j <= i; j++) {
      let dot = 0
      for (let d = 0; d < dk; d++) dot += q[i * dk + d]! * k[j * dk + d]!
      const weight = Math.pow(lambda, i - j) * dot
      for (let c = 0; c < e; c++) output[i * e + c] = output[i * e + c]! + weight * v[j * e + c]!
    }
  }

  const outgoing = new Float64Array(dk * e)
  const carried = Math.pow(lambda, n)
  if (state) for (let index = 0; index < dk * e; index++) outgoing[index] = carried * state[index]!
  for (let j = 0; j < n; j++) {
    const weight = Math.pow(lambda, n - 1 - j)
    for (let d = 0; d < dk; d++) {
      const scaled = weight * k[j * dk + d]!
      for (let c = 0; c < e; c++) outgoing[d * e + c] = outgoing[d * e + c]! + scaled * v[j * e + c]!
    }
  }
  return { output, state: outgoing }
}
