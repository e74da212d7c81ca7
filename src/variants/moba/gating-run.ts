import type { IKernelRunShortcut } from "gpu.js"
import { detectBackend, gpuFor } from "../../exec/backend.js"
import type { Backend } from "../../exec/task.js"
import { maskedThreshold, scoreKernel } from "../dense/kernels.js"
import { selectBlocks } from "./gating.js"
import { gatingCandidates, type MobaGatingResult, type MobaGatingTask } from "./gating-task.js"

/**
 * Worker side of MoBA gating, loaded by the tile worker only. The gate scores
 * run through the dense score kernel with block means in place of keys, the
 * blocks before each row's current block as its visible range, and a scale of
 * 1. Top-k runs on the host over the kernel's scores and, separately, over
 * float64 scores computed from the float64 means.
 */

const compiled = new Map<string, IKernelRunShortcut>()

function gateKernel(backend: Backend, rows: number, blockTile: number, headDim: number): IKernelRunShortcut {
  const key = `${backend}:${rows}:${blockTile}:${headDim}`
  let kernel = compiled.get(key)
  if (!kernel) {
    kernel = gpuFor(backend).createKernel(scoreKernel as never, {
      precision: "single",
      tactic: "precision",
      constants: { headDim },
      output: [blockTile, rows]
    })
    compiled.set(key, kernel)
  }
  return kernel
}

export function runMobaGating(task: MobaGatingTask): MobaGatingResult {
  const { rows, blockTile, headDim } = task
  const candidates = gatingCandidates(task)
  const kernel = gateKernel(task.backend, rows, blockTile, headDim)
  const rowLo = new Float32Array(rows)
  const rowHi = Float32Array.from(task.currentBlock)

  const started = performance.now()
  const scores = new Float32Array(rows * candidates)
  let tensorFlops = 0
  let loadBytes = 0
  for (let step = 0; step < task.stepStart.length; step++) {
    const means = task.means.subarray(step * blockTile * headDim, (step + 1) * blockTile * headDim)
    const first = task.stepStart[step]!
    const blocks = task.stepBlocks[step]!
    const out = kernel(task.q, means, rowLo, rowHi, first, blocks, 1) as Float32Array[]
    for (let r = 0; r < rows; r++) for (let j = 0; j < blocks; j++) scores[r * candidates + first + j] = out[r]![j]!
    tensorFlops += 2 * rows * blockTile * headDim
    loadBytes += blocks * headDim * task.elementBytes
  }
  const selected = selections(task, (r, j) => (scores[r * candidates + j]! < maskedThreshold ? -Infinity : scores[r * candidates + j]!))
  const kernelSeconds = (performance.now() - started) / 1000

  const referenceStarted = performance.now()
  const referenceScores = new Float64Array(rows * candidates).fill(-Infinity)
  for (let r = 0; r < task.realRows; r++) {
    for (let j = 0; j < Math.min(candidates, task.currentBlock[r]!); j++) {
      let dot = 0
      for (let c = 0; c < headDim; c++) dot += task.q[r * headDim + c]! * task.meansReference[meanOffset(task, j) + c]!
      referenceScores[r * candidates + j] = dot
    }
  }
  const referenceSelected = selections(task, (r, j) => referenceScores[r * candidates + j]!)
  const referenceSeconds = (performance.now() - referenceStarted) / 1000

  return {
    kind: "moba-gating",
    id: task.id,
    backend: detectBackend(kernel, task.backend),
    scores,
    referenceScores,
    selected,
    referenceSelected,
    counted: { tensorFlops, expOps: 0, loadBytes, steps: task.stepStart.length },
    kernelSeconds,
    referenceSeconds
  }
}

/** Offset of block j's mean in the task's step-major mean layout. */
function meanOffset(task: MobaGatingTask, block: number): number {
  for (let step = 0; step < task.stepStart.length; step++) {
    const first = task.stepStart[step]!
    if (block >= first && block < first + task.stepBlocks[step]!) return (step * task.blockTile + (block - first)) * task.headDim
  }
  throw new RangeError(`block ${block} is outside the gating task's steps`)
}

function selections(task: MobaGatingTask, score: (row: number, block: number) => number): Float32Array {
  const out = new Float32Array(task.rows * task.topK).fill(-1)
  for (let r = 0; r < task.realRows; r++) {
    const current = task.currentBlock[r]!
    const rowScores = Array.from({ length: current }, (_, j) => score(r, j))
    selectBlocks(rowScores, current, task.topK).forEach((block, slot) => {
      out[r * task.topK + slot] = block
    })
  }
  return out
}
