import { initialReferenceState, referenceOutput, referenceSteps } from "../variants/dense/reference.js"
import { maskedScore } from "../variants/dense/kernels.js"
import { attentionKernels } from "./backend.js"
import { fillRow, TensorId } from "./data.js"
import type { AttentionTileFill, AttentionTileResult, AttentionTileTask, SoftmaxState } from "./task.js"

/**
 * Run an attention tile task through the gpu.js kernels, step by step, then the
 * float64 reference on the same inputs and incoming state. Counts are taken from
 * what the kernels were launched over: every thread of the score and
 * accumulate kernels does headDim resp. blockN multiply-adds.
 */
export function runAttentionTile(carried: AttentionTileTask): AttentionTileResult {
  const fillStarted = performance.now()
  const task = carried.fill ? withGeneratedData(carried, carried.fill) : carried
  const fillSeconds = (performance.now() - fillStarted) / 1000
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
  const withReference = task.reference !== false
  const reference = withReference ? referenceSteps(task, initialReferenceState(rows, headDimV, task.state)) : emptyReference
  const output = withReference && task.finalize ? referenceOutput(task) : undefined
  const referenceSeconds = (performance.now() - referenceStarted) / 1000

  const kernelState: SoftmaxState = { rowMax, rowSum, acc }
  return {
    id: task.id,
    backend: kernels.actualBackend,
    kernelState,
    referenceRowMax: withReference ? reference.rowMax : new Float64Array(0),
    referenceRowSum: withReference ? reference.rowSum : new Float64Array(0),
    referenceAcc: withReference ? reference.acc : new Float64Array(0),
    referenceOutput: output,
    counted: { tensorFlops, expOps, loadBytes, steps },
    kernelSeconds,
    referenceSeconds,
    fillSeconds
  }
}

const emptyReference = { rowMax: new Float64Array(0), rowSum: new Float64Array(0), acc: new Float64Array(0) }

/**
 * Generate a task's Q, K and V from its fill coordinates, exactly as the main
 * thread would have: rows past realRows and keys past stepKeys stay zero.
 */
function withGeneratedData(task: AttentionTileTask, fill: AttentionTileFill): AttentionTileTask {
  const { rows, realRows, blockN, headDim: dk, headDimV: dv } = task
  const steps = task.stepStart.length
  const q = new Float32Array(rows * dk)
  for (let r = 0; r < realRows; r++) {
    fillRow(q, r * dk, dk, { seed: fill.seed, tensor: TensorId.query, batch: fill.batch, head: fill.queryHeads[r]!, position: fill.queryPositions[r]! }, fill.dtype)
  }

  const k = new Float32Array(steps * blockN * dk)
  const v = new Float32Array(steps * blockN * dv)
  for (let step = 0; step < steps; step++) {
    const first = fill.keyPositions ? fill.keyPositions[step]! : task.stepStart[step]!
    for (let j = 0; j < task.stepKeys[step]!; j++) {
      const row = step * blockN + j
      const at = { seed: fill.seed, batch: fill.batch, head: fill.kvHead, position: first + j }
      fillRow(k, row * dk, dk, { ...at, tensor: TensorId.key }, fill.dtype)
      if (task.valueInKey) v.set(k.subarray(row * dk, row * dk + dv), row * dv)
      else fillRow(v, row * dv, dv, { ...at, tensor: TensorId.value }, fill.dtype)
    }
  }
  return { ...task, q, k, v }
}

function flatten(rows: Float32Array[], width: number): Float32Array {
  const out = new Float32Array(rows.length * width)
  rows.forEach((row, index) => out.set(row, index * width))
  return out
}
