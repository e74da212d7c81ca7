import type { IKernelRunShortcut } from "gpu.js"
import {
  blockDecayKernel,
  blockStateKernel,
  decayMaskKernel,
  decodeOutputKernel,
  decodeStateKernel,
  interOutputKernel,
  intraOutputKernel,
  keyDecayKernel,
  maskedScoreKernel,
  queryDecayKernel,
  stateScanKernel
} from "../variants/lightning/kernels.js"
import { referenceLinearAttention } from "../variants/lightning/reference.js"
import { detectBackend, gpuFor } from "./backend.js"
import { roundMantissa } from "./data.js"
import type { LightningStateDtype, LightningTileResult, LightningTileTask } from "./lightning-task.js"
import type { Backend } from "./task.js"

interface BlockKernels {
  readonly mask: IKernelRunShortcut
  readonly queryDecay: IKernelRunShortcut
  readonly keyDecay: IKernelRunShortcut
  readonly blockDecay: IKernelRunShortcut
  readonly scores: IKernelRunShortcut
  readonly intra: IKernelRunShortcut
  readonly inter: IKernelRunShortcut
  readonly blockState: IKernelRunShortcut
  readonly scan: IKernelRunShortcut
}

interface DecodeKernels {
  readonly state: IKernelRunShortcut
  readonly output: IKernelRunShortcut
}

const blockCache = new Map<string, BlockKernels>()
const decodeCache = new Map<string, DecodeKernels>()
const settings = { precision: "single" as const, tactic: "precision" as const }

/** Compile (once per backend and size) the kernels of one lightning block. */
function blockKernels(backend: Backend, blockSize: number, headDim: number, valueWidth: number): BlockKernels {
  const key = `${backend}:${blockSize}:${headDim}:${valueWidth}`
  const cached = blockCache.get(key)
  if (cached) return cached
  const gpu = gpuFor(backend)
  const constants = { blockSize, headDim, valueWidth }
  const create = (source: unknown, output: number[]) => gpu.createKernel(source as never, { ...settings, constants, output })
  const kernels: BlockKernels = {
    mask: create(decayMaskKernel, [blockSize, blockSize]),
    queryDecay: create(queryDecayKernel, [blockSize]),
    keyDecay: create(keyDecayKernel, [blockSize]),
    blockDecay: create(blockDecayKernel, [1]),
    scores: create(maskedScoreKernel, [blockSize, blockSize]),
    intra: create(intraOutputKernel, [valueWidth, blockSize]),
    inter: create(interOutputKernel, [valueWidth, blockSize]),
    blockState: create(blockStateKernel, [valueWidth, headDim]),
    scan: create(stateScanKernel, [valueWidth, headDim])
  }
  blockCache.set(key, kernels)
  return kernels
}

function decodeKernels(backend: Backend, headDim: number, valueWidth: number): DecodeKernels {
  const key = `${backend}:${headDim}:${valueWidth}`
  const cached = decodeCache.get(key)
  if (cached) return cached
  const gpu = gpuFor(backend)
  const constants = { headDim, valueWidth }
  const kernels: DecodeKernels = {
    state: gpu.createKernel(decodeStateKernel as never, { ...settings, constants, output: [valueWidth, headDim] }),
    output: gpu.createKernel(decodeOutputKernel as never, { ...settings, constants, output: [valueWidth] })
  }
  decodeCache.set(key, kernels)
  return kernels
}

const stateBytesOf: Record<LightningStateDtype, number> = { fp32: 4, bf16: 2, fp16: 2 }
const stateMantissaBits: Record<LightningStateDtype, number> = { fp32: 23, bf16: 7, fp16: 10 }

/**
 * Rounds a state to what reads back after a store at `dtype`.
 * NOTE: fp16 rounding keeps 10 mantissa bits but not fp16's range (entries above 65504 stay finite).
 */
function stored(state: Float32Array, dtype: LightningStateDtype): Float32Array {
  if (dtype === "fp32") return state
  const bits = stateMantissaBits[dtype]
  return state.map((value) => roundMantissa(value, bits))
}

function flatten(rows: ArrayLike<ArrayLike<number>>, width: number): Float32Array {
  const out = new Float32Array(rows.length * width)
  for (let r = 0; r < rows.length; r++) out.set(rows[r]!, r * width)
  return out
}

/**
 * Run a lightning task through the gpu.js kernels, then the float64 reference
 * on the same inputs and incoming state. Counts are taken from what the kernels
 * were launched over. Each thread of a product kernel does its inner length in
 * multiply-adds, the score kernel's masked threads included. Each thread of a
 * decay kernel does one exp. Loads are the global-memory reads the task's
 * layout makes, at the modeled element sizes.
 */
export function runLightningTile(task: LightningTileTask): LightningTileResult {
  const started = performance.now()
  const kernel = task.layout === "decode" ? runDecode(task) : runBlocks(task)
  const kernelSeconds = (performance.now() - started) / 1000

  const referenceStarted = performance.now()
  const rows = Array.from(task.stepRows).reduce((sum, rows) => sum + rows, 0)
  const reference = task.reference === false ? { output: new Float64Array(0), state: new Float64Array(0) } : referenceLinearAttention({
    rows,
    headDim: task.headDim,
    valueWidth: task.valueWidth,
    q: task.q,
    k: task.k,
    v: task.v,
    logDecay: task.logDecay,
    state: task.state
  })
  const referenceOutput = new Float64Array(task.reference === false ? 0 : task.v.length)
  referenceOutput.set(reference.output)
  const referenceSeconds = (performance.now() - referenceStarted) / 1000

  return {
    kind: "lightning-forward",
    id: task.id,
    backend: kernel.backend,
    output: kernel.output,
    state: kernel.state,
    referenceOutput,
    referenceState: reference.state,
    counted: kernel.counted,
    kernelSeconds,
    referenceSeconds
  }
}

type KernelRun = Pick<LightningTileResult, "backend" | "output" | "state" | "counted">

function runBlocks(task: LightningTileTask): KernelRun {
  const { blockSize: b, headDim: dk, valueWidth: e, elementBytes: s, logDecay } = task
  const stateBytes = stateBytesOf[task.stateDtype]
  const split = task.layout === "split"
  const kernels = blockKernels(task.backend, b, dk, e)
  const steps = task.stepRows.length
  const output = new Float32Array(steps * b * e)
  let state: Float32Array = task.state ? Float32Array.from(task.state) : new Float32Array(dk * e)
  let tensorFlops = 0
  let expOps = 0
  let loadBytes = task.loadsState ? dk * e * stateBytes : 0

  // The fused walk computes the mask and query decays once, and key decays once
  // per block length. The split layout's intra and inter CTAs compute theirs per block.
  let mask: Float32Array[] | undefined
  let queryDecay: Float32Array | undefined
  let keyDecay: Float32Array | undefined
  let keyDecayRows = -1
  for (let step = 0; step < steps; step++) {
    const rows = task.stepRows[step]!
    const q = task.q.subarray(step * b * dk, (step + 1) * b * dk)
    const k = task.k.subarray(step * b * dk, (step + 1) * b * dk)
    const v = task.v.subarray(step * b * e, (step + 1) * b * e)
    if (split || !mask) {
      mask = kernels.mask(logDecay) as Float32Array[]
      queryDecay = kernels.queryDecay(logDecay) as Float32Array
      expOps += b * b + b
    }
    if (split || rows !== keyDecayRows) {
      keyDecay = kernels.keyDecay(logDecay, rows) as Float32Array
      keyDecayRows = rows
      expOps += b
    }
    const blockDecay = kernels.blockDecay(logDecay, rows) as Float32Array
    expOps += 1

    const scores = kernels.scores(q, k, mask) as Float32Array[]
    const intra = kernels.intra(scores, v) as Float32Array[]
    // The split layout's inter CTA reads the prefix and partial output back from memory.
    const prefix = split ? stored(state, task.stateDtype) : state
    const blockOutput = kernels.inter(q, prefix, queryDecay, intra) as Float32Array[]
    // The split layout stores the block's local state for the scan to read back.
    const local = kernels.blockState(k, v, keyDecay) as Float32Array[]
    const scanned = split ? unflatten(stored(flatten(local, e), task.stateDtype), e) : local
    state = flatten(kernels.scan(state, scanned, blockDecay) as Float32Array[], e)
    output.set(flatten(blockOutput, e), step * b * e)

    tensorFlops += 2 * b * b * dk + 2 * b * e * b + 2 * b * e * dk + 2 * dk * e * b
    loadBytes += rows * (2 * dk + e) * s
    if (split) {
      // Scan: the block's local state. Inter: Q again, the prefix, the FP32 partial output.
      loadBytes += dk * e * stateBytes + rows * dk * s + dk * e * stateBytes + rows * e * 4
    }
  }
  return {
    backend: detectBackend(kernels.scores, task.backend),
    output,
    state: stored(state, task.stateDtype),
    counted: { tensorFlops, expOps, loadBytes, steps }
  }
}

function unflatten(values: Float32Array, width: number): Float32Array[] {
  return Array.from({ length: values.length / width }, (_, row) => values.subarray(row * width, (row + 1) * width))
}

/**
 * Runs one decode step on the FP32 pipes, with no tensor-core work and no exp.
 * A real kernel reads λ from the per-head rate table, so the host takes this exp uncounted.
 */
function runDecode(task: LightningTileTask): KernelRun {
  const { headDim: dk, valueWidth: e, elementBytes: s } = task
  const kernels = decodeKernels(task.backend, dk, e)
  const incoming = task.state ? task.state : new Float32Array(dk * e)
  const decay = Math.fround(Math.exp(task.logDecay))
  const updated = kernels.state(incoming, task.k, task.v, decay) as Float32Array[]
  const output = Float32Array.from(kernels.output(task.q, updated) as Float32Array)
  const state = stored(flatten(updated, e), task.stateDtype)
  return {
    backend: detectBackend(kernels.state, task.backend),
    output,
    state,
    counted: { tensorFlops: 0, expOps: 0, loadBytes: dk * e * stateBytesOf[task.stateDtype] + 2 * dk * s + e * s, steps: 1 }
  }
}
