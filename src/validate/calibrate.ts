import { Effect } from "effect"
import type { KernelProbeName } from "../exec/probe.js"
import { TilePool, type TileExecutionError, type TilePoolService } from "../exec/pool.js"
import type { Backend, TileResult } from "../exec/task.js"
import { ContentionMeter, retryWhileContended } from "./contention.js"
import { fitNonNegativeRelative } from "./least-squares.js"
import { cacheLineBytes, cpuCaches, currentMachine, fingerprint, type CacheLevel, type MachineIdentity } from "./machine.js"
import { measureLevel, type LevelMeasurement } from "./memory-probe.js"
import { attentionProbes, lightningProbes, mobaGatingProbes, type ProbeShape } from "./probe-tasks.js"
import { warmWorkers } from "./run-schedule.js"
import { noCounts, taskTerms, termModels, withCounts } from "./task-terms.js"
import { median, spreadPct } from "./stats.js"

/**
 * `attnsim calibrate`: measure the host as a device. Tile tasks of every kind
 * run on the pool over a grid of shapes (all workers busy, as in validation),
 * and each kind's per-task time model is fitted to them; the pool's dispatch
 * and transfer costs, gpu.js kernel rates and the memory levels are measured
 * with microbenchmarks. Every figure is the median of `repeats` repeats and
 * carries their spread.
 */

/** A measured figure: the median of its repeats and their spread. */
export interface Measured {
  readonly value: number
  readonly spreadPct: number
  readonly repeats: number
}

export interface FittedStepModel {
  readonly model: string
  readonly form: string
  readonly terms: Readonly<Record<string, Measured>>
  readonly fittedTo: string
  readonly measurements: number
  readonly residualMedianPct: number
  readonly residualMaxPct: number
}

export interface MemoryLevelResult {
  readonly cache: CacheLevel | undefined
  readonly measurement: LevelMeasurement
}

export interface CalibrationRun {
  readonly identity: MachineIdentity
  readonly fingerprint: string
  readonly measuredAt: string
  readonly backend: Backend
  readonly workers: number
  readonly repeats: number
  readonly stepModels: ReadonlyArray<FittedStepModel>
  readonly dispatchSeconds: Measured
  readonly transferMovedBytesPerSecond: Measured
  readonly transferCopiedBytesPerSecond: Measured
  readonly kernels: Readonly<Record<KernelProbeName, Measured>>
  readonly caches: ReadonlyArray<CacheLevel>
  readonly lineBytes: number
  readonly memory: ReadonlyArray<MemoryLevelResult>
  /** Largest average number of cores other processes used during a measured phase. */
  readonly maxOtherCores: number | undefined
  readonly seconds: number
}

export interface CalibrateOptions {
  readonly backend: Backend
  readonly repeats: number
  /** The tile-shape grid's probes; all kinds by default. */
  readonly probes?: ReadonlyArray<ProbeShape> | undefined
  /** Target worker time of the longer probe of each shape, in seconds. */
  readonly probeSeconds?: number | undefined
}

export const allProbes = (): ReadonlyArray<ProbeShape> => [...attentionProbes(), ...lightningProbes(), ...mobaGatingProbes()]

export function calibrate(options: CalibrateOptions): Effect.Effect<CalibrationRun, TileExecutionError, TilePool> {
  return Effect.gen(function* () {
    const started = performance.now()
    const pool = yield* TilePool
    const identity = currentMachine()
    const others: Array<number | undefined> = []
    yield* Effect.logInfo("calibration started").pipe(Effect.annotateLogs({ backend: options.backend, workers: pool.workers, repeats: options.repeats }))

    const probes = options.probes ?? allProbes()
    const stepModels = yield* fitStepModels(pool, probes, options, others)
    const dispatchSeconds = yield* measureDispatch(pool, options.repeats, others)
    const transfer = yield* measureTransfer(pool, options.repeats, dispatchSeconds.value, others)
    const kernels = yield* measureKernels(pool, options, others)

    const caches = cpuCaches()
    const memory = measureMemoryLevels(caches, options.repeats)
    const measuredOthers = others.filter((o): o is number => o !== undefined)
    const run: CalibrationRun = {
      identity,
      fingerprint: fingerprint(identity),
      measuredAt: new Date().toISOString(),
      backend: options.backend,
      workers: pool.workers,
      repeats: options.repeats,
      stepModels,
      dispatchSeconds,
      transferMovedBytesPerSecond: transfer.moved,
      transferCopiedBytesPerSecond: transfer.copied,
      kernels,
      caches,
      lineBytes: cacheLineBytes(),
      memory,
      maxOtherCores: measuredOthers.length > 0 ? Math.max(...measuredOthers) : undefined,
      seconds: (performance.now() - started) / 1000
    }
    yield* Effect.logInfo("calibration finished").pipe(Effect.annotateLogs({ seconds: run.seconds.toFixed(1), fingerprint: run.fingerprint }))
    return run
  })
}

/** One measured task: its model's term counts and the worker time it took. */
interface ProbeMeasurement {
  readonly shape: string
  readonly model: string
  readonly repeat: number
  readonly counts: Readonly<Record<string, number>>
  readonly seconds: number
}

/**
 * Run every probe shape with one step and with enough steps for about
 * probeSeconds, `repeats` times, all tasks of a repeat submitted at once in a
 * seeded shuffled order so every worker stays busy. Each model is fitted to
 * the medians over repeats; fitting each repeat on its own gives the spread.
 */
function fitStepModels(pool: TilePoolService, probes: ReadonlyArray<ProbeShape>, options: CalibrateOptions, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const probeSeconds = options.probeSeconds ?? 0.02
    // A rough rate that sizes the long probes; the fit does not depend on it.
    const sizingFlopsPerSecond = options.backend === "cpu" ? 0.8e9 : 1.4e9
    const plan = probes.flatMap((shape) => {
      const long = Math.min(shape.maxSteps, Math.max(2, Math.round((probeSeconds * sizingFlopsPerSecond) / shape.flopsPerStep)))
      return shape.maxSteps === 1 ? [{ shape, steps: 1 }] : [{ shape, steps: 1 }, { shape, steps: long }]
    })

    let serial = 0
    yield* warmWorkers(pool, plan.map(({ shape, steps }) => shape.build(Math.min(steps, 1), options.backend, serial++)))

    const runRepeat = (repeat: number) =>
      Effect.gen(function* () {
        const order = shuffled(plan.length, repeat + 1)
        const tasks = order.map((index) => {
          const task = plan[index]!.shape.build(plan[index]!.steps, options.backend, serial++)
          // Read the shape terms now: sending the task detaches its arrays.
          return { entry: plan[index]!, task, terms: taskTerms(task, noCounts) }
        })
        const meter = new ContentionMeter()
        const results = yield* Effect.forEach(tasks, ({ task }) => pool.run(task), { concurrency: "unbounded" })
        const otherCores = meter.stop().otherCores
        const measurements = tasks.map(({ entry, terms }, index): ProbeMeasurement => {
          const result = results[index]!
          return {
            shape: `${entry.shape.label} ×${entry.steps}`,
            model: entry.shape.model,
            repeat,
            counts: withCounts(terms, countedAsExpected(result)).counts,
            seconds: result.workerSeconds ?? result.kernelSeconds
          }
        })
        return { measurements, otherCores }
      })

    const measurements: ProbeMeasurement[] = []
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const attempt = yield* retryWhileContended(() => runRepeat(repeat), `tile probes, repeat ${repeat + 1}`)
      others.push(attempt.otherCores)
      measurements.push(...attempt.measurements)
    }
    const models = [...new Set(probes.map((p) => p.model))]
    return models.map((model) => fitModel(model, measurements.filter((m) => m.model === model), options.repeats))
  })
}

/** The worker's own counts stand in for the schedule's: a probe has no schedule, and in validation the two are checked equal. */
const countedAsExpected = (result: TileResult) => ({ tensorFlops: result.counted.tensorFlops, expOps: result.counted.expOps, loadBytes: result.counted.loadBytes })

function fitModel(model: string, measurements: ReadonlyArray<ProbeMeasurement>, repeats: number): FittedStepModel {
  const termModel = termModels[model]
  if (!termModel) throw new RangeError(`no term model for calibration probes of "${model}"`)
  const terms = termModel.terms
  const byShape = new Map<string, ProbeMeasurement[]>()
  for (const m of measurements) byShape.set(m.shape, [...(byShape.get(m.shape) ?? []), m])

  const rowsOf = (list: ReadonlyArray<ProbeMeasurement>) => list.map((m) => terms.map((term) => m.counts[term] ?? 0))
  const medians = [...byShape.values()].map((list) => ({ counts: list[0]!.counts, seconds: median(list.map((m) => m.seconds)) }))
  const fit = fitNonNegativeRelative(
    medians.map((m) => terms.map((term) => m.counts[term] ?? 0)),
    medians.map((m) => m.seconds)
  )

  const perRepeat = Array.from({ length: repeats }, (_, repeat) => {
    const own = measurements.filter((m) => m.repeat === repeat)
    return fitNonNegativeRelative(rowsOf(own), own.map((m) => m.seconds)).coefficients
  })
  const residuals = fit.relativeResiduals.map((r) => Math.abs(r) * 100)
  return {
    model,
    form: termModel.form,
    terms: Object.fromEntries(
      terms.map((term, index) => [term, { value: fit.coefficients[index]!, spreadPct: spreadPct(perRepeat.map((c) => c[index]!)), repeats }])
    ),
    fittedTo: `${byShape.size} measured tasks of ${model} (median of ${repeats} repeats each, all workers busy): ${[...byShape.keys()].join(", ")}`,
    measurements: measurements.length,
    residualMedianPct: median(residuals),
    residualMaxPct: Math.max(...residuals)
  }
}

/** Round trips of an empty probe, one at a time: the gap a worker sees between two tasks. */
function measureDispatch(pool: TilePoolService, repeats: number, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const perRepeat: number[] = []
    for (let repeat = 0; repeat < repeats; repeat++) {
      const meter = new ContentionMeter()
      const times: number[] = []
      for (let trip = 0; trip < 60; trip++) {
        const started = performance.now()
        yield* pool.runProbe({ kind: "probe-echo", id: `echo-${trip}`, payload: new Uint8Array(0), returnBytes: 0, moveBack: true })
        times.push((performance.now() - started) / 1000)
      }
      others.push(meter.stop().otherCores)
      perRepeat.push(median(times))
    }
    return measured(perRepeat)
  })
}

/**
 * Round trips carrying 16 MiB each way, moved with transfer lists and copied by
 * structured clone; the time beyond an empty round trip gives each bandwidth.
 */
function measureTransfer(pool: TilePoolService, repeats: number, emptySeconds: number, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const bytes = 16 * 2 ** 20
    const trip = (move: boolean) =>
      Effect.gen(function* () {
        const payload = new Uint8Array(bytes)
        const started = performance.now()
        yield* pool.runProbe({ kind: "probe-echo", id: "transfer", payload, returnBytes: bytes, moveBack: move }, move ? [payload.buffer as ArrayBuffer] : [])
        return (performance.now() - started) / 1000
      })
    const moved: number[] = []
    const copied: number[] = []
    const meter = new ContentionMeter()
    for (let repeat = 0; repeat < repeats; repeat++) {
      moved.push(rate(2 * bytes, median([yield* trip(true), yield* trip(true), yield* trip(true)]) - emptySeconds))
      copied.push(rate(2 * bytes, median([yield* trip(false), yield* trip(false), yield* trip(false)]) - emptySeconds))
    }
    others.push(meter.stop().otherCores)
    return { moved: measured(moved), copied: measured(copied) }
  })
}

/** Bytes per second, with the extra time floored at 1 µs: moving a buffer costs about nothing beyond the round trip. */
const rate = (bytes: number, seconds: number): number => bytes / Math.max(seconds, 1e-6)

/** gpu.js microbenchmarks run on every worker at once; each worker's repeats are the samples. */
function measureKernels(pool: TilePoolService, options: CalibrateOptions, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const sizes: Record<KernelProbeName, number> = { copy: 65536, exp: 65536, fma: 65536, fill: 1 << 20 }
    const out: Partial<Record<KernelProbeName, Measured>> = {}
    for (const bench of ["copy", "exp", "fma", "fill"] as const) {
      const meter = new ContentionMeter()
      const results = yield* Effect.forEach(
        Array.from({ length: pool.workers }, (_, index) => index),
        (index) => pool.runProbe({ kind: "probe-kernel", id: `${bench}-${index}`, bench, backend: options.backend, elements: sizes[bench], repeats: options.repeats }),
        { concurrency: "unbounded" }
      )
      others.push(meter.stop().otherCores)
      out[bench] = measured(results.flatMap((r) => r.seconds.map((s) => r.work / s)))
    }
    return out as Record<KernelProbeName, Measured>
  })
}

/**
 * Copy bandwidth and load latency at a working set inside each cache level
 * (half of L1 and L2, a quarter of the last level, which other cores share)
 * and one past the last level for main memory.
 */
function measureMemoryLevels(caches: ReadonlyArray<CacheLevel>, repeats: number): ReadonlyArray<MemoryLevelResult> {
  const levels: MemoryLevelResult[] = caches.map((cache, index) => ({
    cache,
    measurement: measureLevel(index === caches.length - 1 && index > 0 ? cache.bytes / 4 : cache.bytes / 2, repeats)
  }))
  const last = caches.at(-1)?.bytes ?? 32 * 2 ** 20
  levels.push({ cache: undefined, measurement: measureLevel(Math.max(4 * last, 64 * 2 ** 20), repeats) })
  return levels
}

export function measured(values: ReadonlyArray<number>): Measured {
  return { value: median(values), spreadPct: spreadPct(values), repeats: values.length }
}

/** A permutation of 0 … n − 1, seeded (Fisher–Yates with a linear congruential generator). */
function shuffled(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, index) => index)
  let state = seed >>> 0
  for (let index = n - 1; index > 0; index--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    const other = state % (index + 1)
    ;[order[index], order[other]] = [order[other]!, order[index]!]
  }
  return order
}
