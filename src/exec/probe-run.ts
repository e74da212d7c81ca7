import type { IKernelRunShortcut } from "gpu.js"
import { threadId } from "node:worker_threads"
import { gpuFor } from "./backend.js"
import { fillRow, TensorId } from "./data.js"
import type { EchoProbe, EchoResult, KernelProbe, KernelProbeResult, ProbeTask, WarmProbe, WarmResult } from "./probe.js"
import type { Backend, TileResult, TileTask } from "./task.js"
import { runQueueWaitSeconds, waitBetween } from "./thread-time.js"

/** Worker side of the calibration probes; `runTile` runs a warm probe's tile tasks. */
export function runProbe(probe: ProbeTask, runTile: (task: TileTask) => TileResult): EchoResult | WarmResult | KernelProbeResult {
  switch (probe.kind) {
    case "probe-echo":
      return echo(probe)
    case "probe-warm":
      return warm(probe, runTile)
    case "probe-kernel":
      return kernelProbe(probe)
  }
}

function echo(probe: EchoProbe): EchoResult {
  return { id: probe.id, threadId, payload: new Uint8Array(probe.returnBytes), buffers: probe.buffers ?? [] }
}

function warm(probe: WarmProbe, runTile: (task: TileTask) => TileResult): WarmResult {
  const started = performance.now()
  for (const task of probe.tasks) runTile(task)

  const arrivals = new Int32Array(probe.arrivals)
  Atomics.add(arrivals, 0, 1)
  Atomics.notify(arrivals, 0)
  const deadline = started + probe.timeoutMs
  let arrived = Atomics.load(arrivals, 0)
  while (arrived < probe.parties) {
    const left = deadline - performance.now()
    if (left <= 0) break
    Atomics.wait(arrivals, 0, arrived, left)
    arrived = Atomics.load(arrivals, 0)
  }
  return { id: probe.id, threadId, allArrived: arrived >= probe.parties, seconds: (performance.now() - started) / 1000 }
}

function kernelProbe(probe: KernelProbe): KernelProbeResult {
  const input = new Float32Array(probe.elements)
  for (let i = 0; i < input.length; i++) input[i] = ((i * 2654435761) % 1000) / 1000 - 0.5

  const run = probe.bench === "fill" ? fillBench(probe.elements) : gpuBench(probe.bench, probe.backend, probe.elements, input)
  run()
  const seconds: number[] = []
  const running: number[] = []
  for (let repeat = 0; repeat < probe.repeats; repeat++) {
    const started = performance.now()
    const waitStart = runQueueWaitSeconds()
    run()
    const wall = (performance.now() - started) / 1000
    const wait = waitBetween(waitStart, runQueueWaitSeconds())
    seconds.push(wall)
    if (wait !== undefined) running.push(wall - wait)
  }
  return {
    id: probe.id,
    threadId,
    backend: probe.backend,
    seconds,
    runningSeconds: running.length === seconds.length ? running : undefined,
    work: probeWork(probe.bench, probe.elements)
  }
}

const expPerOutput = 16
const fmaPerOutput = 128

/** Work per repeat: bytes moved in and out (copy), exp operations, FLOPs at 2 per multiply-add, elements written. */
function probeWork(bench: KernelProbe["bench"], elements: number): number {
  switch (bench) {
    case "copy":
      return 2 * 4 * elements
    case "exp":
      return expPerOutput * elements
    case "fma":
      return 2 * fmaPerOutput * elements
    case "fill":
      return elements
  }
}

/** Generate `elements` values as rows of 128, the way tile data is made. */
function fillBench(elements: number): () => void {
  const dims = 128
  const out = new Float32Array(elements)
  return () => {
    for (let row = 0; row * dims < elements; row++) {
      fillRow(out, row * dims, Math.min(dims, elements - row * dims), { seed: 1, tensor: TensorId.key, batch: 0, head: 0, position: row }, "bf16")
    }
  }
}

function gpuBench(bench: "copy" | "exp" | "fma", backend: Backend, elements: number, input: Float32Array): () => void {
  const gpu = gpuFor(backend)
  const settings = { precision: "single" as const, tactic: "precision" as const, output: [elements] }
  const kernels: Record<typeof bench, () => IKernelRunShortcut> = {
    copy: () => gpu.createKernel(copyKernel as never, settings),
    exp: () => gpu.createKernel(expKernel as never, settings),
    fma: () => gpu.createKernel(fmaKernel as never, settings)
  }
  const kernel = kernels[bench]()
  return () => {
    kernel(input)
  }
}

// Kernels in the subset gpu.js compiles: no closures, `this.thread.x` is the output index.

function copyKernel(this: { thread: { x: number } }, a: Float32Array): number {
  return a[this.thread.x]!
}

function expKernel(this: { thread: { x: number } }, a: Float32Array): number {
  const x = a[this.thread.x]!
  let sum = 0
  for (let i = 0; i < 16; i++) {
    sum += Math.exp(x * 0.0625 * i)
  }
  return sum
}

function fmaKernel(this: { thread: { x: number } }, a: Float32Array): number {
  const x = a[this.thread.x]!
  let c0 = x
  let c1 = x + 0.25
  let c2 = x + 0.5
  let c3 = x + 0.75
  for (let i = 0; i < 32; i++) {
    c0 = c0 * 0.999 + 0.001
    c1 = c1 * 0.999 + 0.001
    c2 = c2 * 0.999 + 0.001
    c3 = c3 * 0.999 + 0.001
  }
  return c0 + c1 + c2 + c3
}
