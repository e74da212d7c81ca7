import { Effect } from "effect"
import type { KernelProbeName } from "../exec/probe.js"
import { TilePool, type TileExecutionError, type TilePoolService } from "../exec/pool.js"
import type { Backend, TileResult } from "../exec/task.js"
import { ContentionMeter, retryWhileContended } from "./contention.js"
import { fitNonNegativeRelative } from "./least-squares.js"
import { cacheLineBytes, cpuCaches, currentMachine, fingerprint, type CacheLevel, type MachineIdentity } from "./machine.js"
import { measureLevel, type LevelMeasurement } from "./memory-probe.js"
import { attentionProbes, lightningProbes, mobaGatingProbes, type ProbeShape } from "./probe-tasks.js"
import { measureReferenceTask, warmWorkers } from "./run-schedule.js"
import { noCounts, taskTerms, termModels, withCounts } from "./task-terms.js"
import { median, spreadPct } from "./stats.js"

/**
 * `attnsim calibrate`: measure the host as a device. Tile tasks of every kind
 * run on the pool over a grid of shapes, with all workers busy as in
 * validation, and each kind's per-task time model is fitted to them.
 * Microbenchmarks measure the pool's dispatch and transfer costs, gpu.js
 * kernel rates and the memory levels. Every figure is the median of `repeats`
 * repeats and carries their spread.
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
  readonly residualMedianPct: number
  readonly residualMaxPct: number
  /**
   * Spread of the predictions over the per-repeat fits, median over shapes.
   * Terms trade off against each other, so this shows how stable the model is
   * better than any one term's spread.
   */
  readonly predictionSpreadPct: number
  readonly shapes: ReadonlyArray<ShapeMeasurement>
}

/** One probe shape: its term counts, the median worker seconds of its repeats and their spread. */
export interface ShapeMeasurement {
  readonly shape: string
  readonly counts: Readonly<Record<string, number>>
  readonly seconds: number
  readonly spreadPct: number
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
  /** Workers' time per batch outside the batch, with every worker busy. */
  readonly dispatchSeconds: Measured
  /** Dispatch cost each task of a batch adds. */
  readonly dispatchPerTaskSeconds: Measured
  /** Round trip of an empty probe, one at a time. */
  readonly roundTripSeconds: Measured
  readonly transferCopiedBytesPerSecond: Measured
  readonly kernels: Readonly<Record<KernelProbeName, Measured>>
  /** Seconds per task of the speed reference workload (run-schedule.ts measureReferenceTask). */
  readonly referenceTaskSeconds: Measured
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
    const dispatch = yield* measureDispatch(pool, options, others)
    const transferCopied = yield* measureTransfer(pool, options.repeats, dispatch.roundTrip.value, others)
    const kernels = yield* measureKernels(pool, options, others)
    const referenceTaskSeconds: number[] = []
    for (let repeat = 0; repeat < options.repeats; repeat++) referenceTaskSeconds.push(yield* measureReferenceTask(pool, options.backend))

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
      dispatchSeconds: dispatch.perBatch,
      dispatchPerTaskSeconds: dispatch.perTask,
      roundTripSeconds: dispatch.roundTrip,
      transferCopiedBytesPerSecond: transferCopied,
      kernels,
      referenceTaskSeconds: measured(referenceTaskSeconds),
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
      // Short probes get a middle step count too, so per-task and per-step terms separate.
      let counts = [1, long]
      if (shape.maxSteps === 1) counts = [1]
      else if (long <= 4) counts = [1, 2, long]
      return [...new Set(counts)].map((steps) => ({ shape, steps }))
    })

    let serial = 0
    yield* warmWorkers(pool, plan.map(({ shape, steps }) => shape.build(Math.min(steps, 1), options.backend, serial++)))

    // Each measurement is a batch of copies of one task, run back to back on one
    // worker as validation batches run. Its time per task is the batch's wall
    // time in the worker divided by the copies.
    const copiesOf = (shape: ProbeShape, steps: number): number => {
      const seconds = (shape.flopsPerStep * steps) / sizingFlopsPerSecond
      if (seconds < 0.002) return 6
      if (seconds < 0.01) return 3
      return 2
    }
    const runRepeat = (repeat: number) =>
      Effect.gen(function* () {
        const order = shuffled(plan.length, repeat + 1)
        const batches = order.map((index) => {
          const entry = plan[index]!
          const tasks = Array.from({ length: copiesOf(entry.shape, entry.steps) }, () => entry.shape.build(entry.steps, options.backend, serial++))
          // Read the shape terms now: sending the tasks detaches their arrays.
          return { entry, tasks, terms: taskTerms(tasks[0]!, noCounts) }
        })
        const meter = new ContentionMeter()
        const results = yield* Effect.forEach(batches, ({ tasks }, index) => pool.runBatch({ kind: "batch", id: `probe-${repeat}-${index}`, tasks }), { concurrency: "unbounded" })
        const otherCores = meter.stop().otherCores
        const measurements = batches.map(({ entry, tasks, terms }, index): ProbeMeasurement => {
          const result = results[index]!
          return {
            shape: `${entry.shape.label} ×${entry.steps}`,
            model: entry.shape.model,
            repeat,
            counts: withCounts(terms, countedAsExpected(result.results[0]!)).counts,
            seconds: result.workerSeconds / tasks.length
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

  const rowOf = (counts: Readonly<Record<string, number>>) => terms.map((term) => counts[term] ?? 0)
  const shapes: ShapeMeasurement[] = [...byShape.entries()].map(([shape, list]) => ({
    shape,
    counts: list[0]!.counts,
    seconds: median(list.map((m) => m.seconds)),
    spreadPct: spreadPct(list.map((m) => m.seconds))
  }))
  const fit = fitNonNegativeRelative(
    shapes.map((m) => rowOf(m.counts)),
    shapes.map((m) => m.seconds)
  )

  const perRepeat = Array.from({ length: repeats }, (_, repeat) => measurements.filter((m) => m.repeat === repeat))
    .filter((own) => own.length >= terms.length)
    .map((own) => fitNonNegativeRelative(own.map((m) => rowOf(m.counts)), own.map((m) => m.seconds)).coefficients)
  const predict = (coefficients: ReadonlyArray<number>, counts: Readonly<Record<string, number>>) =>
    rowOf(counts).reduce((sum, count, index) => sum + count * coefficients[index]!, 0)
  const predictionSpreads = shapes.map((m) => spreadPct(perRepeat.map((coefficients) => predict(coefficients, m.counts))))
  const residuals = fit.relativeResiduals.map((r) => Math.abs(r) * 100)
  return {
    model,
    form: termModel.form,
    terms: Object.fromEntries(
      terms.map((term, index) => [term, { value: fit.coefficients[index]!, spreadPct: spreadPct(perRepeat.map((c) => c[index]!)), repeats }])
    ),
    fittedTo: `${byShape.size} measured task shapes of ${model} (median of ${repeats} repeats each, all workers busy): ${[...byShape.keys()].join(", ")}`,
    residualMedianPct: median(residuals),
    residualMaxPct: Math.max(...residuals),
    predictionSpreadPct: median(predictionSpreads),
    shapes
  }
}

/** Tasks per batch in the second pipelined dispatch measurement, which separates the per-task part. */
const tasksPerLargeBatch = 8

/**
 * Measure the pool's costs per batch and per task as validation runs see them.
 * Batches of one short attention task, and of eight, are sent at once to every
 * worker. The workers' time outside their batches (workers × wall − Σ batch
 * time) is the dispatch cost: the messages both ways, the main thread handling
 * results (which takes a CPU the workers then wait for) and the pool's
 * bookkeeping. Each is measured with N and 2N batches and the difference is
 * divided by N, so the run's start and its last, unbalanced batches cancel.
 * The two batch sizes separate the part each task adds. Round trips of an
 * empty probe, one at a time, give the bare latency.
 */
function measureDispatch(pool: TilePoolService, options: CalibrateOptions, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const roundTrips = Effect.gen(function* () {
      const meter = new ContentionMeter()
      const times: number[] = []
      for (let trip = 0; trip < 150; trip++) {
        const started = performance.now()
        yield* pool.runProbe({ kind: "probe-echo", id: "echo", payload: new Uint8Array(0), returnBytes: 0, moveBack: true })
        times.push((performance.now() - started) / 1000)
      }
      return { seconds: median(times), otherCores: meter.stop().otherCores }
    })

    const shortTask = attentionProbes()[0]!
    yield* warmWorkers(pool, [shortTask.build(1, options.backend, 0)])
    const outside = (batchCount: number, tasksPerBatch: number) =>
      Effect.gen(function* () {
        const batches = Array.from({ length: batchCount }, (_, index) => ({
          kind: "batch" as const,
          id: `dispatch-${index}`,
          tasks: Array.from({ length: tasksPerBatch }, (_, task) => shortTask.build(1, options.backend, index * tasksPerBatch + task))
        }))
        const started = performance.now()
        const results = yield* Effect.forEach(batches, (batch) => pool.runBatch(batch), { concurrency: "unbounded" })
        const wall = (performance.now() - started) / 1000
        return pool.workers * wall - results.reduce((sum, r) => sum + r.workerSeconds, 0)
      })
    const perBatchOf = (batchCount: number, tasksPerBatch: number) =>
      Effect.gen(function* () {
        const meter = new ContentionMeter()
        const once = yield* outside(batchCount, tasksPerBatch)
        const twice = yield* outside(2 * batchCount, tasksPerBatch)
        return { perBatch: Math.max(0, twice - once) / batchCount, otherCores: meter.stop().otherCores }
      })

    // These are wall times, which other processes stretch: a contended repeat is measured again.
    const roundTrip: number[] = []
    const perBatch: number[] = []
    const perTask: number[] = []
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const trips = yield* retryWhileContended(() => roundTrips, `dispatch round trips, repeat ${repeat + 1}`)
      const single = yield* retryWhileContended(() => perBatchOf(100, 1), `pipelined dispatch, repeat ${repeat + 1}`)
      const grouped = yield* retryWhileContended(() => perBatchOf(40, tasksPerLargeBatch), `pipelined dispatch of grouped tasks, repeat ${repeat + 1}`)
      others.push(trips.otherCores, single.otherCores, grouped.otherCores)
      const taskPart = Math.max(0, grouped.perBatch - single.perBatch) / (tasksPerLargeBatch - 1)
      roundTrip.push(trips.seconds)
      perTask.push(taskPart)
      perBatch.push(Math.max(0, single.perBatch - taskPart))
    }
    return { roundTrip: measured(roundTrip), perBatch: measured(perBatch), perTask: measured(perTask) }
  })
}

/**
 * Measure tasks carrying 16 MiB to the worker copied by structured clone (no
 * transfer list), each returning an empty result. The time beyond an empty
 * round trip gives the copy bandwidth in the direction tile tasks travel.
 */
function measureTransfer(pool: TilePoolService, repeats: number, emptySeconds: number, others: Array<number | undefined>) {
  return Effect.gen(function* () {
    const bytes = 16 * 2 ** 20
    const trip = Effect.gen(function* () {
      const payload = new Uint8Array(bytes)
      const started = performance.now()
      yield* pool.runProbe({ kind: "probe-echo", id: "transfer", payload, returnBytes: 0, moveBack: true })
      return (performance.now() - started) / 1000
    })
    const copied: number[] = []
    const meter = new ContentionMeter()
    for (let repeat = 0; repeat < repeats; repeat++) copied.push(rate(bytes, median([yield* trip, yield* trip, yield* trip]) - emptySeconds))
    others.push(meter.stop().otherCores)
    return measured(copied)
  })
}

/** Bytes per second, with the extra time floored at 1 µs. */
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
      out[bench] = measured(results.flatMap((r) => (r.runningSeconds ?? r.seconds).map((s) => r.work / s)))
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

/** Shuffle 0 … n − 1 by Fisher–Yates with a seeded linear congruential generator. */
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
