import { initialReferenceState, referenceOutput, referenceSteps } from "../variants/dense/reference.js"
import { maskedScore } from "../variants/dense/kernels.js"
import { attentionKernels } from "./backend.js"
import type { AttentionTileResult, AttentionTileTask, SoftmaxState } from "./task.js"

/**
 * Run an attention tile task through the gpu.js kernels, step by step, then the
 * float64 reference on the same inputs and incoming state. Counts are taken from
 * what the kernels were launched over: every thread of the score and
 * accumulate kernels does headDim resp. blockN multiply-adds.
 */
export function runAttentionTile(task: AttentionTileTask): AttentionTileResult {
  const { rows, blockN, headDim, headDimV } = task
  const kernels = attentionKernels(task.backend, { rows, blockN, headDim, headDimV })
  const steps = task.stepStart.length

  const started = performance.now()
  let rowMax: Float32Array = task.state ? Float32Array.from(task.state.rowMax) : new Float32Array(rows).fill(maskedScore)
  let rowSum: Float32Array = task.state ? Float32Array.from(task.state.rowSum) : new Float32Array(rows)
  let acc: Float32Array = task.state ? Float32Array.from(task.state.acc) : new Float32Array(rows * headDimV)
  let tensorFlops = 0
  let expOps = 0
  let loadBytes = 0

  for (let step = 0; step < steps; step++) {
    const k = task.k.subarray(step * blockN * headDim, (step + 1) * blockN * headDim)
    const v = task.v.subarray(step * blockN * headDimV, (step + 1) * blockN * headDimV)
    const scores = kernels.scores(task.q, k, task.rowLo, task.rowHi, task.stepStart[step]!, task.stepKeys[step]!, task.scale) as Float32Array[]
    const rowMaxNew = kernels.rowMax(scores, rowMax) as Float32Array
    const probabilities = kernels.probabilities(scores, rowMaxNew) as Float32Array[]
    const rowSumNew = kernels.rowSum(probabilities, rowMax, rowMaxNew, rowSum) as Float32Array
    const accNew = kernels.accumulate(probabilities, v, acc, rowMax, rowMaxNew) as Float32Array[]

    tensorFlops += 2 * rows * blockN * headDim + 2 * rows * headDimV * blockN
    expOps += rows * blockN
    loadBytes += task.stepKeys[step]! * (task.valueInKey ? headDim : headDim + headDimV) * task.elementBytes
    rowMax = Float32Array.from(rowMaxNew)
    rowSum = Float32Array.from(rowSumNew)
    acc = flatten(accNew, headDimV)
  }
  const kernelSeconds = (performance.now() - started) / 1000

  const referenceStarted = performance.now()
  const reference = referenceSteps(task, initialReferenceState(rows, headDimV, task.state))
  const output = task.finalize ? referenceOutput(task) : undefined
  const referenceSeconds = (performance.now() - referenceStarted) / 1000

  const kernelState: SoftmaxState = { rowMax, rowSum, acc }
  return {
    id: task.id,
    backend: kernels.actualBackend,
    kernelState,
    referenceRowMax: reference.rowMax,
    referenceRowSum: reference.rowSum,
    referenceAcc: reference.acc,
    referenceOutput: output,
    counted: { tensorFlops, expOps, loadBytes, steps },
    kernelSeconds,
    referenceSeconds
  }
}

function flatten(rows: Float32Array[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width)
  rows.forEach((row, index) => out.set(row, index * width))
  return out
}
