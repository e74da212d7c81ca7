import gpujs from "gpu.js"
import type { IKernelRunShortcut } from "gpu.js"
import { accumulateKernel, probabilityKernel, rowMaxKernel, rowSumKernel, scoreKernel } from "../variants/dense/kernels.js"
import type { Backend } from "./task.js"

const { GPU } = gpujs

/**
 * gpu.js modes per backend. "gl" asks for headless WebGL; when the optional `gl`
 * package did not build, gpu.js falls back to WebAssembly without an error, so
 * callers read `actualBackend` instead of trusting the request.
 */
const modes: Record<Backend, "webasm" | "cpu" | "headlessgl"> = { webasm: "webasm", cpu: "cpu", gl: "headlessgl" }

const kernelClassBackend: Record<string, Backend> = {
  WebAssemblyKernel: "webasm",
  CPUKernel: "cpu",
  HeadlessGLKernel: "gl"
}

export interface AttentionKernels {
  readonly scores: IKernelRunShortcut
  readonly rowMax: IKernelRunShortcut
  readonly probabilities: IKernelRunShortcut
  readonly rowSum: IKernelRunShortcut
  readonly accumulate: IKernelRunShortcut
  readonly actualBackend: Backend
}

export interface TileDims {
  readonly rows: number
  readonly blockN: number
  readonly headDim: number
  readonly headDimV: number
}

const instances = new Map<Backend, InstanceType<typeof GPU>>()
const cache = new Map<string, AttentionKernels>()

/** The gpu.js instance of a backend in this thread, created on first use. */
export function gpuFor(backend: Backend): InstanceType<typeof GPU> {
  let gpu = instances.get(backend)
  if (!gpu) {
    if (backend === "gl" && !isHeadlessGlAvailable()) {
      throw new Error(
        "the gl backend needs headless WebGL: the optional `gl` package must have built (apt packages " +
          "libxi-dev libglu1-mesa-dev libglew-dev pkg-config, then npm install) and a display must exist (run under `xvfb-run -a`)"
      )
    }
    gpu = new GPU({ mode: modes[backend] })
    instances.set(backend, gpu)
  }
  return gpu
}

/** Compile (once per backend and tile size) the five kernels of an online-softmax step. */
export function attentionKernels(backend: Backend, dims: TileDims): AttentionKernels {
  const key = `${backend}:${dims.rows}:${dims.blockN}:${dims.headDim}:${dims.headDimV}`
  const cached = cache.get(key)
  if (cached) return cached

  const gpu = gpuFor(backend)
  const settings = { precision: "single" as const, tactic: "precision" as const }
  const constants = { headDim: dims.headDim, headDimV: dims.headDimV, blockN: dims.blockN }
  const scores = gpu.createKernel(scoreKernel as never, { ...settings, constants, output: [dims.blockN, dims.rows] })
  const kernels: AttentionKernels = {
    scores,
    rowMax: gpu.createKernel(rowMaxKernel as never, { ...settings, constants, output: [dims.rows] }),
    probabilities: gpu.createKernel(probabilityKernel as never, { ...settings, constants, output: [dims.blockN, dims.rows] }),
    rowSum: gpu.createKernel(rowSumKernel as never, { ...settings, constants, output: [dims.rows] }),
    accumulate: gpu.createKernel(accumulateKernel as never, { ...settings, constants, output: [dims.headDimV, dims.rows] }),
    get actualBackend(): Backend {
      return detectBackend(scores, backend)
    }
  }
  cache.set(key, kernels)
  return kernels
}

/** The backend a compiled kernel really runs on (known after its first call). */
export function detectBackend(kernel: IKernelRunShortcut, requested: Backend): Backend {
  const inner = (kernel as unknown as { kernel?: { constructor?: { name?: string } } }).kernel
  const name = inner?.constructor?.name
  return (name && kernelClassBackend[name]) || requested
}

/** Whether headless WebGL can be loaded in this thread (the optional `gl` package built). */
export function isHeadlessGlAvailable(): boolean {
  return Boolean((GPU as unknown as { isHeadlessGLSupported?: boolean }).isHeadlessGLSupported)
}
