import { describe, expect, it } from "vitest"
import { runLightningTile } from "../../../src/exec/lightning-step.js"
import type { LightningTileTask } from "../../../src/exec/lightning-task.js"
import { referenceLinearAttention } from "../../../src/variants/lightning/reference.js"
import { makeLightningTask, maxAbsDifference } from "./helpers.js"

const tolerance = 1e-3

/** The geometric rule's fastest head at 64 heads, layer 0: λ = exp(−2^(−1/8)) ≈ 0.40. */
const fastestLogDecay = -Math.pow(2, -1 / 8) * (1 + 1e-5)
/** Its slowest head: λ = exp(−2^(−8)) ≈ 0.996. */
const slowestLogDecay = -Math.pow(2, -8) * (1 + 1e-5)

function realOutputs(task: LightningTileTask): number {
  return Array.from(task.stepRows).reduce((sum, rows) => sum + rows, 0) * task.valueWidth
}

describe("lightning block kernels", () => {
  for (const layout of ["fused", "split"] as const) {
    it(`${layout}: chained blocks match float64`, () => {
      const task = makeLightningTask({ blockSize: 32, headDim: 32, valueWidth: 16, stepRows: [32, 32, 19], logDecay: -0.05, layout, state: (i) => Math.sin(i) })

      const result = runLightningTile(task)

      expect(maxAbsDifference(result.output, result.referenceOutput)).toBeLessThan(tolerance)
      expect(maxAbsDifference(result.state, result.referenceState)).toBeLessThan(tolerance)
      expect(result.output.slice(realOutputs(task)).every((x) => x === 0)).toBe(true)
    })
  }

  it("fastest head, full 256-row block", () => {
    const task = makeLightningTask({ blockSize: 256, headDim: 128, valueWidth: 128, stepRows: [256], logDecay: fastestLogDecay, state: (i) => Math.cos(i) })

    const result = runLightningTile(task)

    expect(result.output.every(Number.isFinite)).toBe(true)
    expect(result.state.every(Number.isFinite)).toBe(true)
    expect(maxAbsDifference(result.output, result.referenceOutput)).toBeLessThan(tolerance)
    expect(maxAbsDifference(result.state, result.referenceState)).toBeLessThan(tolerance)
  })

  it("slowest head, full 256-row block", () => {
    const task = makeLightningTask({ blockSize: 256, headDim: 128, valueWidth: 64, stepRows: [256], logDecay: slowestLogDecay, state: (i) => 5 * Math.sin(i) })

    const result = runLightningTile(task)

    expect(maxAbsDifference(result.output, result.referenceOutput)).toBeLessThan(tolerance)
    expect(maxAbsDifference(result.state, result.referenceState)).toBeLessThan(tolerance)
  })

  it("unmasked exponent would overflow FP32", () => {
    // What the kernels avoid: λ^(−255) for the fastest head is e^234, past the FP32
    // maximum, and 0 × Infinity is NaN. Masking before exp never forms it.
    const overflow = Math.fround(Math.exp(-255 * Math.fround(fastestLogDecay)))

    expect(overflow).toBe(Infinity)
    expect(0 * overflow).toBeNaN()
  })

  it("decode step matches float64", () => {
    const task = { ...makeLightningTask({ blockSize: 1, headDim: 64, valueWidth: 32, stepRows: [1], logDecay: -0.3, state: (i) => Math.sin(i) }), layout: "decode" as const }

    const result = runLightningTile(task)

    expect(result.counted.tensorFlops).toBe(0)
    expect(maxAbsDifference(result.output, result.referenceOutput)).toBeLessThan(tolerance)
    expect(maxAbsDifference(result.state, result.referenceState)).toBeLessThan(tolerance)
  })

  it("counts follow the launches", () => {
    // Fused: mask and query decays once (16² + 16), key decays for the full and the
    // partial block length (2 × 16), block decay once per block (2).
    const task = makeLightningTask({ blockSize: 16, headDim: 8, valueWidth: 4, stepRows: [16, 5], logDecay: -0.1, state: () => 1 })

    const result = runLightningTile(task)

    expect(result.counted.tensorFlops).toBe(2 * (2 * 16 * 16 * 8 + 2 * 16 * 16 * 4 + 4 * 16 * 8 * 4))
    expect(result.counted.expOps).toBe(16 * 16 + 16 + 2 * 16 + 2)
    expect(result.counted.loadBytes).toBe(8 * 4 * 4 + (16 + 5) * (2 * 8 + 4) * 2)
    expect(result.counted.steps).toBe(2)
  })

  it("bf16 state loses accuracy", () => {
    const options = { blockSize: 32, headDim: 32, valueWidth: 32, stepRows: [32, 32, 32], logDecay: slowestLogDecay, layout: "split" as const, state: (i: number) => 10 * Math.sin(i) }
    const fp32 = runLightningTile(makeLightningTask(options))
    const bf16 = runLightningTile(makeLightningTask({ ...options, stateDtype: "bf16" }))

    const fp32Error = maxAbsDifference(fp32.output, fp32.referenceOutput)
    const bf16Error = maxAbsDifference(bf16.output, bf16.referenceOutput)

    expect(fp32Error).toBeLessThan(tolerance)
    expect(bf16Error).toBeGreaterThan(10 * fp32Error)
  })
})

describe("lightning causality", () => {
  /** Change q, k and v of every row after position `p`; rows up to `p` stay as they were. */
  function perturbAfter(task: LightningTileTask, p: number): LightningTileTask {
    const q = Float32Array.from(task.q)
    const k = Float32Array.from(task.k)
    const v = Float32Array.from(task.v)
    for (let row = p + 1; row < task.stepRows.length * task.blockSize; row++) {
      for (let d = 0; d < task.headDim; d++) {
        q[row * task.headDim + d] = q[row * task.headDim + d]! + 0.5
        k[row * task.headDim + d] = -k[row * task.headDim + d]! + 0.25
      }
      for (let c = 0; c < task.valueWidth; c++) v[row * task.valueWidth + c] = 3 - v[row * task.valueWidth + c]!
    }
    return { ...task, q, k, v }
  }

  for (const layout of ["fused", "split"] as const) {
    it(`${layout}: later tokens never leak back`, () => {
      const task = makeLightningTask({ blockSize: 16, headDim: 16, valueWidth: 8, stepRows: [16, 16, 16], logDecay: -0.02, layout, state: (i) => Math.cos(i) })
      for (const p of [0, 9, 15, 16, 30]) {
        const perturbed = perturbAfter(task, p)

        const before = runLightningTile({ ...task, q: Float32Array.from(task.q), k: Float32Array.from(task.k), v: Float32Array.from(task.v) })
        const after = runLightningTile(perturbed)

        const upTo = (p + 1) * task.valueWidth
        expect(Array.from(after.output.slice(0, upTo))).toEqual(Array.from(before.output.slice(0, upTo)))
        expect(Array.from(after.referenceOutput.slice(0, upTo))).toEqual(Array.from(before.referenceOutput.slice(0, upTo)))
        // The probe has teeth: the row right after p does change.
        expect(after.output[upTo]).not.toBe(before.output[upTo])
      }
    })
  }
})

describe("lightning float64 reference", () => {
  /** Runs the recurrence S ← λ·S + kᵀv, o = q·S one token at a time: a second oracle. */
  function recurrence(task: LightningTileTask, rows: number): { output: Float64Array; state: Float64Array } {
    const { headDim: dk, valueWidth: e } = task
    const lambda = Math.exp(task.logDecay)
    const state = Float64Array.from(task.state ?? new Float32Array(dk * e))
    const output = new Float64Array(rows * e)
    for (let i = 0; i < rows; i++) {
      for (let d = 0; d < dk; d++) {
        for (let c = 0; c < e; c++) state[d * e + c] = lambda * state[d * e + c]! + task.k[i * dk + d]! * task.v[i * e + c]!
      }
      for (let c = 0; c < e; c++) {
        let sum = 0
        for (let d = 0; d < dk; d++) sum += task.q[i * dk + d]! * state[d * e + c]!
        output[i * e + c] = sum
      }
    }
    return { output, state }
  }

  it("matches the token recurrence", () => {
    const task = makeLightningTask({ blockSize: 40, headDim: 12, valueWidth: 6, stepRows: [40], logDecay: -0.2, state: (i) => Math.sin(3 * i) })

    const reference = referenceLinearAttention({ ...task, rows: 40, state: task.state })
    const oracle = recurrence(task, 40)

    expect(maxAbsDifference(reference.output, oracle.output)).toBeLessThan(1e-10)
    expect(maxAbsDifference(reference.state, oracle.state)).toBeLessThan(1e-10)
  })

  it("splits at any row through the state", () => {
    const task = makeLightningTask({ blockSize: 30, headDim: 8, valueWidth: 8, stepRows: [30], logDecay: -0.1 })
    const whole = referenceLinearAttention({ ...task, rows: 30 })
    const head = referenceLinearAttention({ ...task, rows: 11 })

    const tail = referenceLinearAttention({
      ...task,
      rows: 19,
      q: task.q.subarray(11 * 8),
      k: task.k.subarray(11 * 8),
      v: task.v.subarray(11 * 8),
      state: head.state
    })

    expect(maxAbsDifference(tail.output, whole.output.subarray(11 * 8))).toBeLessThan(1e-10)
    expect(maxAbsDifference(tail.state, whole.state)).toBeLessThan(1e-10)
  })
})
