import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import { join } from "node:path"
import { planOperation } from "../src/estimate.js"
import { clearDensePlanMemo } from "../src/variants/dense/plan.js"
import { runAttentionTile } from "../src/exec/attention-step.js"
import { isHeadlessGlAvailable } from "../src/exec/backend.js"
import { fillRow, TensorId } from "../src/exec/data.js"
import { TilePool, tilePoolLayer } from "../src/exec/pool.js"
import type { AttentionTileTask, Backend } from "../src/exec/task.js"
import { loadProfile, shippedProfileIds } from "../src/hardware/load.js"
import { ContentionMeter } from "../src/validate/contention.js"
import { warmWorkers } from "../src/validate/run-schedule.js"
import { packageRoot } from "../src/paths.js"
import type { AttentionShape, Phase } from "../src/workload/shape.js"

// Benchmarks for attnsim. Writes bench-results/results.json and results.md.
// Every ratio is measured within this one run, since machines here are shared.

const llama: Omit<AttentionShape, "seqLenQ" | "seqLenKV" | "batch"> = { heads: 32, kvHeads: 8, headDim: 128, headDimV: 128, causal: true, dtype: "bf16" }

/** Repeat `work` for about `seconds`, return calls per second. */
function rate(work: () => void, seconds = 1.5): { perSecond: number; calls: number } {
  work()
  const started = performance.now()
  let calls = 0
  while (performance.now() - started < seconds * 1000) {
    work()
    calls++
  }
  return { perSecond: calls / ((performance.now() - started) / 1000), calls }
}

function shapeFor(phase: Phase, seqLen: number): AttentionShape {
  return { ...llama, batch: phase === "decode" ? 8 : 1, seqLenQ: phase === "decode" ? 1 : seqLen, seqLenKV: seqLen }
}

/** Estimates per second with the planner's memo cleared before each, so every call searches. */
function benchEstimates() {
  const h100 = loadProfile("h100-sxm")
  const uncached = (run: () => void) => () => {
    clearDensePlanMemo()
    run()
  }
  const single = {
    prefill32k: rate(uncached(() => planOperation({ variant: "dense", shape: shapeFor("prefill", 32768), phase: "prefill" }, h100))),
    decode128k: rate(uncached(() => planOperation({ variant: "dense", shape: shapeFor("decode", 131072), phase: "decode" }, h100))),
    train8k: rate(uncached(() => planOperation({ variant: "dense", shape: shapeFor("train", 8192), phase: "train" }, h100)))
  }

  const profiles = shippedProfileIds().map((id) => loadProfile(id))
  const phases: Phase[] = ["prefill", "decode", "train"]
  const seqLens = [4096, 8192, 16384, 32768, 65536, 131072]
  const sweepSize = profiles.length * phases.length * seqLens.length
  const sweep = rate(() => {
    clearDensePlanMemo()
    for (const profile of profiles) {
      for (const phase of phases) {
        for (const seqLen of seqLens) {
          const dtype = profile.compute.tensor.bf16 ? "bf16" : "fp16"
          planOperation({ variant: "dense", shape: { ...shapeFor(phase, seqLen), dtype }, phase }, profile)
        }
      }
    }
  }, 3)
  return {
    singleEstimatesPerSecond: Object.fromEntries(Object.entries(single).map(([k, v]) => [k, Number(v.perSecond.toFixed(1))])),
    sweep: { estimates: sweepSize, sweepsPerSecond: Number(sweep.perSecond.toFixed(3)), estimatesPerSecond: Number((sweep.perSecond * sweepSize).toFixed(1)) }
  }
}

function tileTask(backend: Backend, steps: number): AttentionTileTask {
  const rows = 128
  const blockN = 64
  const dim = 128
  const q = new Float32Array(rows * dim)
  const k = new Float32Array(steps * blockN * dim)
  const v = new Float32Array(steps * blockN * dim)
  for (let r = 0; r < rows; r++) fillRow(q, r * dim, dim, { seed: 1, tensor: TensorId.query, batch: 0, head: 0, position: r }, "bf16")
  for (let j = 0; j < steps * blockN; j++) {
    fillRow(k, j * dim, dim, { seed: 1, tensor: TensorId.key, batch: 0, head: 0, position: j }, "bf16")
    fillRow(v, j * dim, dim, { seed: 1, tensor: TensorId.value, batch: 0, head: 0, position: j }, "bf16")
  }
  return {
    kind: "attention-forward",
    id: "bench",
    backend,
    rows,
    realRows: rows,
    blockN,
    headDim: dim,
    headDimV: dim,
    elementBytes: 2,
    scale: 1 / Math.sqrt(dim),
    stepStart: Float32Array.from({ length: steps }, (_, s) => s * blockN),
    stepKeys: new Float32Array(steps).fill(blockN),
    q,
    k,
    v,
    rowLo: new Float32Array(rows),
    rowHi: new Float32Array(rows).fill(steps * blockN),
    finalize: false
  }
}

/** GFLOP/s of the gpu.js tile kernels alone (the float64 reference is timed apart). */
function benchKernels() {
  const backends: Backend[] = ["webasm", "cpu", ...(isHeadlessGlAvailable() ? (["gl"] as Backend[]) : [])]
  const results: Record<string, { gflopsPerSecond: number; stepsTimed: number; ranOn: string }> = {}
  for (const backend of backends) {
    runAttentionTile(tileTask(backend, 1))
    let flops = 0
    let seconds = 0
    let steps = 0
    let ranOn = backend as string
    while (seconds < 2) {
      const result = runAttentionTile(tileTask(backend, 4))
      flops += result.counted.tensorFlops
      seconds += result.kernelSeconds
      steps += result.counted.steps
      ranOn = result.backend
    }
    results[backend] = { gflopsPerSecond: Number((flops / seconds / 1e9).toFixed(3)), stepsTimed: steps, ranOn }
  }
  return { tile: "128 query rows × 64 keys, head dim 128, online softmax (5 kernels per tile)", backends: results }
}

/**
 * Wall time of a fixed batch of tile tasks on 1 worker and on 2 workers. Every
 * worker compiles the tile kernels before the timed window: warmWorkers puts
 * one warm-up on each worker with a barrier, because warm-up tasks sent
 * together can all land on one worker and leave another to compile inside the
 * window. Tasks are built before the window, and the CPU other processes took
 * during it is reported.
 */
async function benchPool() {
  const tasks = 24
  const time = (workers: number) =>
    Effect.runPromise(
      Effect.gen(function* () {
        const pool = yield* TilePool
        yield* warmWorkers(pool, [tileTask("webasm", 1)])
        // Timing tasks skip the float64 reference, as validation's timed runs do: its
        // allocation-heavy loops bring garbage-collector threads onto the same 2 cores.
        const batch = Array.from({ length: tasks }, () => ({ ...tileTask("webasm", 4), reference: false }))
        const meter = new ContentionMeter()
        const started = performance.now()
        yield* Effect.forEach(batch, (task) => pool.run(task), { concurrency: "unbounded" })
        return { seconds: (performance.now() - started) / 1000, otherCores: meter.stop().otherCores }
      }).pipe(Effect.provide(tilePoolLayer({ workers })))
    )
  const one = await time(1)
  const two = await time(2)
  return {
    tasks,
    stepsPerTask: 4,
    oneWorkerSeconds: Number(one.seconds.toFixed(3)),
    twoWorkerSeconds: Number(two.seconds.toFixed(3)),
    speedup: Number((one.seconds / two.seconds).toFixed(2)),
    otherProcessCores: [one.otherCores, two.otherCores].map((cores) => (cores === undefined ? null : Number(cores.toFixed(2))))
  }
}

async function main(): Promise<void> {
  const machine = { cpu: cpus()[0]?.model ?? "unknown", logicalCores: cpus().length, node: process.version, date: new Date().toISOString() }
  console.log("benchmarking estimates…")
  const estimates = benchEstimates()
  console.log("benchmarking tile kernels…")
  const kernels = benchKernels()
  console.log("benchmarking the worker pool…")
  const pool = await benchPool()
  const results = { machine, estimates, kernels, pool }

  const dir = join(packageRoot(), "bench-results")
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, "results.json"), JSON.stringify(results, null, 2) + "\n")
  writeFileSync(join(dir, "results.md"), renderMarkdown(results))
  console.log(JSON.stringify(results, null, 2))
  console.log(`wrote ${join("bench-results", "results.json")} and results.md`)
}

function renderMarkdown(results: { machine: Record<string, unknown>; estimates: ReturnType<typeof benchEstimates>; kernels: ReturnType<typeof benchKernels>; pool: Awaited<ReturnType<typeof benchPool>> }): string {
  const { machine, estimates, kernels, pool } = results
  return [
    "# attnsim benchmark results",
    "",
    `Measured by \`npm run bench\` on ${machine.cpu}, ${machine.logicalCores} logical cores, Node ${machine.node}, ${machine.date}. Ratios come from this one run.`,
    "",
    "## Estimates (cost model, planner included)",
    "",
    "| operation | estimates/s |",
    "|---|---:|",
    ...Object.entries(estimates.singleEstimatesPerSecond).map(([name, value]) => `| ${name} | ${value} |`),
    `| sweep of ${estimates.sweep.estimates} (9 profiles × 3 phases × 6 lengths) | ${estimates.sweep.estimatesPerSecond} |`,
    "",
    `## Tile kernels (${kernels.tile})`,
    "",
    "| backend | GFLOP/s | tiles timed | ran on |",
    "|---|---:|---:|---|",
    ...Object.entries(kernels.backends).map(([name, value]) => `| ${name} | ${value.gflopsPerSecond} | ${value.stepsTimed} | ${value.ranOn} |`),
    "",
    "## Worker pool",
    "",
    `${pool.tasks} tasks of ${pool.stepsPerTask} tiles: ${pool.oneWorkerSeconds} s on 1 worker, ${pool.twoWorkerSeconds} s on 2 workers, speedup ${pool.speedup}×. ` +
      `Other processes kept ${pool.otherProcessCores.map((cores) => (cores === null ? "n/a" : cores)).join(" and ")} cores busy during the two runs; a speedup measured while they do is not the pool's.`,
    ""
  ].join("\n")
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
