import { Effect } from "effect"
import { planOperation } from "../estimate.js"
import { TilePool, tilePoolLayer, type PoolStartError, type TileExecutionError } from "../exec/pool.js"
import type { Backend, TileTask } from "../exec/task.js"
import type { ExecUnit } from "../exec/unit.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import type { VariantPlan } from "../variants/variant.js"
import { groupIntoBatches, planTasks, predictMakespan, type PlannedBatch, type PlannedTask } from "./batching.js"
import { contendedCores, retryWhileContended } from "./contention.js"
import { executeUnits } from "./execute.js"
import { extrapolate, type Extrapolation } from "./extrapolate.js"
import type { HostModel } from "./host-model.js"
import { measureReferenceTask, runBatches, type CountTotals, type TimedRun } from "./run-schedule.js"
import { errorPct, median, summarizeRepeats, type Repeated } from "./stats.js"
import type { SuiteCase } from "./suite.js"
import { taskSteps } from "./task-terms.js"

/**
 * Predicted against measured on the host. Each case's schedule is planned on a
 * GPU profile, so it is the schedule the GPU cost model prices. The host model
 * prices it and the pool runs it: whole where it fits the time limit, else as a
 * seeded sample extrapolated to the whole schedule.
 */
export interface HostValidationSettings {
  /** The profile whose plan is executed (a GPU; the host profile describes only the executor). */
  readonly scheduleProfile: HardwareProfile
  readonly model: HostModel
  readonly backend: Backend
  readonly workers: number
  readonly repeats: number
  readonly seed: number
  /** Cases whose predicted wall time is at most this run whole; longer ones run as samples. */
  readonly fullLimitSeconds: number
  /** Predicted wall time a sampled timing run aims for. */
  readonly sampleSeconds: number
  /** Kernel steps of the float64 numerics sample per case. */
  readonly numericsBudgetSteps: number
  /** Kernel steps of the sample checked against each full run's time. */
  readonly extrapolationBudgetSteps: number
}

export interface NumericsOutcome {
  readonly tiles: number
  readonly maxAbsError: number
  readonly maxRelError: number
  readonly countsMatch: boolean
}

export interface HostCaseResult {
  readonly variant: string
  readonly phase: string
  readonly seqLen: number
  readonly batch: number
  readonly options: Readonly<Record<string, unknown>>
  readonly tiling: string
  /** "full": every work item ran; "sample": a seeded sample ran and is extrapolated. */
  readonly coverage: "full" | "sample"
  readonly coverageNote?: string | undefined
  readonly tasks: number
  readonly steps: number
  readonly batches: number
  /** Host-model prediction of the executed tasks' wall time. */
  readonly predictedSeconds: number
  /** Median over repeats of the wall time from the first submission to the last result. */
  readonly measuredSeconds: number
  readonly measured: Repeated
  /** Share of the workers' busy time they spent waiting for a CPU, in the median run (Linux only). */
  readonly waitShare: number | undefined
  readonly errorPct: number
  /** Other processes kept more than a quarter core busy during a timed run. */
  readonly contended: boolean
  /**
   * Ratio of the speed reference workload's time before this case to its time
   * at calibration. Above 1 the machine runs slower than when calibrated.
   * Undefined where the calibration recorded none.
   */
  readonly speedIndex: number | undefined
  readonly countsMatch: boolean
  /** Σ over executed tasks of what the workers counted and what the schedule prices. */
  readonly counted: CountTotals
  readonly model: CountTotals
  readonly numerics: NumericsOutcome
  /** Busy share of the workers during the median timed run. */
  readonly utilization: number
  readonly maxOtherCores: number | undefined
  /** For full runs: the interval a sample predicted for them; for sampled cases: the full-schedule estimate. */
  readonly extrapolation?: (Extrapolation & { readonly fullMeasuredSeconds?: number; readonly insideInterval?: boolean }) | undefined
  readonly predictedFullSeconds?: number | undefined
}

/** A prepared run: tasks priced and grouped into batches, with the prediction. */
interface PreparedRun {
  readonly tasks: ReadonlyArray<PlannedTask>
  readonly batches: ReadonlyArray<PlannedBatch>
  readonly predictedSeconds: number
  readonly steps: number
}

function prepareRun(units: ReadonlyArray<ExecUnit>, model: HostModel, workers: number): PreparedRun {
  const tasks = planTasks(
    model,
    units.flatMap((unit) => unit.tasks.map((task, index) => ({ task, expected: unit.expected[index]! })))
  )
  const batches = groupIntoBatches(model, tasks, workers)
  return { tasks, batches, predictedSeconds: predictMakespan(batches, workers), steps: tasks.reduce((sum, t) => sum + taskSteps(t.task), 0) }
}

/** Fresh copies of the batches' tasks: sending a task moves (detaches) its arrays, so every run sends copies. */
function copyBatches(batches: ReadonlyArray<PlannedBatch>): ReadonlyArray<PlannedBatch> {
  return batches.map((batch) => ({ ...batch, tasks: batch.tasks.map((planned) => ({ ...planned, task: structuredClone(planned.task) as TileTask })) }))
}

/** Run a prepared run `repeats` times (each retried while other processes load the machine). */
function timeRepeats(prepared: PreparedRun, repeats: number, what: string): Effect.Effect<ReadonlyArray<TimedRun>, TileExecutionError, TilePool> {
  return Effect.forEach(Array.from({ length: repeats }, (_, repeat) => repeat), (repeat) =>
    retryWhileContended(
      () => runBatches(copyBatches(prepared.batches), { reference: false }).pipe(Effect.map((run) => ({ run, otherCores: run.contention.otherCores }))),
      `${what}, repeat ${repeat + 1}`
    ).pipe(Effect.map((attempt) => attempt.run))
  )
}

/** Rough host seconds of a plan's executed kernels, from the GPU model's tensor FLOPs, to decide whether to enumerate the schedule. */
function roughHostSeconds(plan: VariantPlan, model: HostModel, workers: number): number {
  const perFlop = model.stepModels["attention-forward"]?.flop ?? 1e-9
  return (plan.cost.counts.tensorFlops * perFlop) / workers
}

/** Schedules estimated at more than this multiple of the full-run limit are not enumerated (memory and build time). */
const enumerationFactor = 20

export function validateCase(spec: SuiteCase, settings: HostValidationSettings): Effect.Effect<HostCaseResult, TileExecutionError, TilePool> {
  return Effect.gen(function* () {
    const pool = yield* TilePool
    const workers = pool.workers
    const { plan } = planOperation({ variant: spec.variant, shape: spec.shape, phase: spec.phase, options: spec.options }, settings.scheduleProfile, `${spec.variant} options`)
    const label = `${spec.variant} ${spec.phase} ${spec.seqLen}`
    yield* Effect.logInfo(`validating ${label}`).pipe(Effect.annotateLogs({ tiling: plan.tilingDescription }))

    const numericsCheck = yield* executeUnits(
      plan.sample({ seed: settings.seed, budgetSteps: settings.numericsBudgetSteps, wholeItemMaxSteps: 8, backend: settings.backend })
    )
    const numerics: NumericsOutcome = {
      tiles: numericsCheck.tilesExecuted,
      maxAbsError: numericsCheck.maxAbsError,
      maxRelError: numericsCheck.maxRelError,
      countsMatch: numericsCheck.countsMatch
    }

    const sampleUnits = (budgetSteps: number, seed = settings.seed + 1) =>
      plan.sample({ seed, budgetSteps, wholeItemMaxSteps: 8, backend: settings.backend, dataInWorker: true })
    const enumerable = plan.fullUnits !== undefined && roughHostSeconds(plan, settings.model, workers) <= enumerationFactor * settings.fullLimitSeconds
    const full = enumerable ? prepareRun(plan.fullUnits!({ seed: settings.seed, backend: settings.backend, dataInWorker: true }), settings.model, workers) : undefined

    let coverage: "full" | "sample"
    let coverageNote: string | undefined
    let timed: PreparedRun
    if (full && full.predictedSeconds <= settings.fullLimitSeconds) {
      coverage = "full"
      timed = full
    } else {
      coverage = "sample"
      coverageNote = !plan.fullUnits
        ? "the variant cannot enumerate its whole schedule (no fullUnits); a seeded sample ran"
        : full
          ? `the whole schedule is predicted at ${full.predictedSeconds.toFixed(1)} s, above the ${settings.fullLimitSeconds} s limit; a seeded sample ran and is extrapolated`
          : `the whole schedule is too large to enumerate here (about ${roughHostSeconds(plan, settings.model, workers).toFixed(0)} s of host work); a seeded sample ran`
      timed = sampledRun(sampleUnits, settings, workers)
    }

    const references: number[] = []
    for (let repeat = 0; repeat < 3; repeat++) references.push(yield* measureReferenceTask(pool, settings.backend))
    const reference = median(references)
    const speedIndex = settings.model.referenceTaskSeconds === undefined ? undefined : reference / settings.model.referenceTaskSeconds
    const runs = yield* timeRepeats(timed, settings.repeats, label)
    const times = runs.map((run) => run.wallSeconds)
    const medianRun = runs.reduce((best, run) => (Math.abs(run.wallSeconds - median(times)) < Math.abs(best.wallSeconds - median(times)) ? run : best))
    const maxOtherCores = maxDefined(runs.map((run) => run.contention.otherCores))

    let extrapolation: HostCaseResult["extrapolation"]
    if (full && coverage === "full") {
      const sample = prepareRun(sampleUnits(settings.extrapolationBudgetSteps), settings.model, workers)
      const sampleRuns = yield* timeRepeats(sample, settings.repeats, `${label} sample`)
      const estimate = extrapolate(medianPairs(sample, sampleRuns), sample.steps, full, workers, repeatRatios(sampleRuns))
      const fullMeasuredSeconds = median(times)
      extrapolation = { ...estimate, fullMeasuredSeconds, insideInterval: fullMeasuredSeconds >= estimate.secondsLow && fullMeasuredSeconds <= estimate.secondsHigh }
    } else if (full) {
      extrapolation = extrapolate(medianPairs(timed, runs), timed.steps, full, workers, repeatRatios(runs))
    }

    return {
      variant: spec.variant,
      phase: spec.phase,
      seqLen: spec.seqLen,
      batch: spec.shape.batch,
      options: spec.options,
      tiling: plan.tilingDescription,
      coverage,
      coverageNote,
      tasks: timed.tasks.length,
      steps: timed.steps,
      batches: timed.batches.length,
      predictedSeconds: timed.predictedSeconds,
      measuredSeconds: median(times),
      measured: summarizeRepeats(times),
      waitShare: medianRun.waitSeconds === undefined ? undefined : medianRun.waitSeconds / medianRun.busySeconds,
      errorPct: errorPct(timed.predictedSeconds, median(times)),
      contended: (maxOtherCores ?? 0) > contendedCores,
      speedIndex,
      countsMatch: runs.every((run) => run.countsMatch) && numerics.countsMatch,
      counted: medianRun.counted,
      model: medianRun.expected,
      numerics,
      utilization: medianRun.utilization,
      maxOtherCores,
      extrapolation,
      predictedFullSeconds: full?.predictedSeconds
    }
  })
}

/**
 * Seeded samples adding up to about sampleSeconds of predicted wall time: a
 * probe sample of 64 steps gives the predicted seconds per step, which sizes
 * the budget. A sampler that stops short of the budget (it picks a bounded
 * number of units) is asked again with the next seeds, and the samples are run
 * together, until the budget is reached or 32 seeds are used.
 */
function sampledRun(sampleUnits: (budgetSteps: number, seed: number) => ReadonlyArray<ExecUnit>, settings: HostValidationSettings, workers: number): PreparedRun {
  const probe = prepareRun(sampleUnits(64, settings.seed + 1), settings.model, workers)
  const perStep = probe.tasks.reduce((sum, t) => sum + t.seconds, 0) / Math.max(1, probe.steps)
  const budget = Math.max(64, Math.round((settings.sampleSeconds * workers) / Math.max(perStep, 1e-6)))

  const units: ExecUnit[] = []
  let steps = 0
  for (let extra = 1; extra <= 32 && steps < budget; extra++) {
    const sample = sampleUnits(budget - steps, settings.seed + extra)
    units.push(...sample)
    steps += sample.reduce((sum, unit) => sum + unit.tasks.reduce((n, task) => n + taskSteps(task), 0), 0)
  }
  return prepareRun(units, settings.model, workers)
}

/** Pair each task's predicted seconds with its median measured worker seconds over the runs. */
function medianPairs(prepared: PreparedRun, runs: ReadonlyArray<TimedRun>) {
  // Runs list task timings batch by batch, in the prepared batches' order.
  return runs[0]!.taskTimings.map((timing, index) => ({
    predictedSeconds: timing.predictedSeconds,
    measuredSeconds: median(runs.map((run) => run.taskTimings[index]!.measuredSeconds))
  }))
}

/** Measured over predicted worker seconds of each run's tasks. */
function repeatRatios(runs: ReadonlyArray<TimedRun>): number[] {
  return runs.map((run) => run.taskTimings.reduce((sum, t) => sum + t.measuredSeconds, 0) / run.taskTimings.reduce((sum, t) => sum + t.predictedSeconds, 0))
}

const maxDefined = (values: ReadonlyArray<number | undefined>): number | undefined => {
  const defined = values.filter((v): v is number => v !== undefined)
  return defined.length > 0 ? Math.max(...defined) : undefined
}

/** Pool speedup on one case: wall time with one worker against the case's measurement with all workers. */
export interface SpeedupCase {
  readonly variant: string
  readonly phase: string
  readonly seqLen: number
  readonly workers: number
  readonly oneWorkerSeconds: number
  readonly allWorkersSeconds: number
  readonly speedup: number
  readonly predictedOneWorkerSeconds: number
  readonly predictedAllWorkersSeconds: number
  readonly predictedSpeedup: number
}

/**
 * Run `cases` again on a one-worker pool (whole schedules only) and compare
 * with their all-worker medians. The workload is the same tasks in the same
 * batches, so the ratio isolates the pool's scaling.
 */
export function measureSpeedup(
  cases: ReadonlyArray<{ readonly spec: SuiteCase; readonly result: HostCaseResult }>,
  settings: HostValidationSettings
): Effect.Effect<ReadonlyArray<SpeedupCase>, TileExecutionError | PoolStartError> {
  return Effect.gen(function* () {
    const pool = yield* TilePool
    const out: SpeedupCase[] = []
    for (const { spec, result } of cases) {
      const { plan } = planOperation({ variant: spec.variant, shape: spec.shape, phase: spec.phase, options: spec.options }, settings.scheduleProfile, `${spec.variant} options`)
      const units = plan.fullUnits!({ seed: settings.seed, backend: settings.backend, dataInWorker: true })
      const allWorkers = prepareRun(units, settings.model, settings.workers)
      const one = { ...allWorkers, predictedSeconds: predictMakespan(allWorkers.batches, pool.workers) }
      const runs = yield* timeRepeats(one, Math.min(2, settings.repeats), `${spec.variant} ${spec.phase} ${spec.seqLen} on one worker`)
      const oneWorkerSeconds = median(runs.map((run) => run.wallSeconds))
      out.push({
        variant: spec.variant,
        phase: spec.phase,
        seqLen: spec.seqLen,
        workers: settings.workers,
        oneWorkerSeconds,
        allWorkersSeconds: result.measuredSeconds,
        speedup: oneWorkerSeconds / result.measuredSeconds,
        predictedOneWorkerSeconds: one.predictedSeconds,
        predictedAllWorkersSeconds: allWorkers.predictedSeconds,
        predictedSpeedup: one.predictedSeconds / allWorkers.predictedSeconds
      })
    }
    return out
  }).pipe(Effect.provide(tilePoolLayer({ workers: 1, backend: settings.backend })))
}
