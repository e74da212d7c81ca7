import type { PlannedBatch } from "./batching.js"
import { listScheduleMakespan } from "./host-model.js"
import { tQuantile95 } from "./stats.js"

/**
 * Extrapolation from a sample of tasks to the full schedule by the ratio
 * estimator: the sampled tasks' measured worker seconds over the host model's
 * predictions for them gives a ratio R; the full schedule's predicted wall time
 * with every task's worker seconds scaled by R is the estimate. The model
 * carries what differs between tasks (steps, rows, padding, masking), the
 * sample measures the scale.
 *
 * The 95 % interval is R ± t(n − 1)·SE(R) with the ratio estimator's standard
 * error SE² = (1 − f)·Σ (mᵢ − R·pᵢ)² / ((n − 1)·n·p̄²), f the sampled share of
 * the schedule's steps. It treats the sampled tasks as a simple random sample
 * of the schedule's work, which the seeded samplers approximate (they also
 * force first, last and masked tiles in). When the sample ran several times,
 * the variance of the repeats' ratios is added twice: once for the sample's
 * runs and once for the whole run's, taken to be as noisy. So the interval also
 * covers the machine's run-to-run variation, but not the makespan model's own
 * error.
 */
export interface RatioEstimate {
  readonly ratio: number
  readonly standardError: number
  readonly low: number
  readonly high: number
  readonly sampledTasks: number
}

export interface TimingPair {
  readonly predictedSeconds: number
  readonly measuredSeconds: number
}

export function ratioEstimate(pairs: ReadonlyArray<TimingPair>, sampledFraction: number, repeatRatios: ReadonlyArray<number> = []): RatioEstimate {
  const n = pairs.length
  if (n === 0) throw new RangeError("a ratio estimate needs at least one sampled task")
  const predicted = pairs.reduce((sum, p) => sum + p.predictedSeconds, 0)
  const measured = pairs.reduce((sum, p) => sum + p.measuredSeconds, 0)
  const ratio = measured / predicted
  if (n < 2) return { ratio, standardError: Number.POSITIVE_INFINITY, low: 0, high: Number.POSITIVE_INFINITY, sampledTasks: n }

  const meanPredicted = predicted / n
  const residual = pairs.reduce((sum, p) => sum + (p.measuredSeconds - ratio * p.predictedSeconds) ** 2, 0) / (n - 1)
  const correction = Math.max(0, 1 - Math.min(1, sampledFraction))
  const runVariance = varianceOf(repeatRatios)
  const standardError = Math.sqrt((correction * residual) / (n * meanPredicted ** 2) + (2 * runVariance) / Math.max(1, repeatRatios.length))
  const half = tQuantile95(n - 1) * standardError
  return { ratio, standardError, low: Math.max(0, ratio - half), high: ratio + half, sampledTasks: n }
}

/** Sample variance (n − 1 in the denominator); 0 for fewer than two values. */
function varianceOf(values: ReadonlyArray<number>): number {
  if (values.length < 2) return 0
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length
  return values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / (values.length - 1)
}

/**
 * Wall time of the full schedule's batches with every task's worker seconds
 * scaled by `ratio`; each batch's dispatch and transfer overhead stays as predicted.
 */
export function scaledMakespan(batches: ReadonlyArray<PlannedBatch>, workers: number, ratio: number): number {
  const durations = batches.map((batch) => {
    const work = batch.tasks.reduce((sum, task) => sum + task.seconds, 0)
    return batch.seconds - work + ratio * work
  })
  return listScheduleMakespan(durations, workers)
}

export interface Extrapolation {
  readonly method: string
  readonly sampledTasks: number
  readonly sampledSteps: number
  readonly scheduleSteps: number
  readonly ratio: number
  readonly ratioLow: number
  readonly ratioHigh: number
  /** Full-schedule wall time: the estimate and its 95 % interval. */
  readonly seconds: number
  readonly secondsLow: number
  readonly secondsHigh: number
}

export const extrapolationMethod =
  "ratio estimator over sampled tasks (measured / predicted worker seconds), 95 % t-interval with finite-population correction by sampled steps plus the run-to-run variance of the sample's repeats, applied to the full schedule's predicted batches"

export function extrapolate(
  pairs: ReadonlyArray<TimingPair>,
  sampledSteps: number,
  full: { readonly batches: ReadonlyArray<PlannedBatch>; readonly steps: number },
  workers: number,
  repeatRatios: ReadonlyArray<number> = []
): Extrapolation {
  const estimate = ratioEstimate(pairs, sampledSteps / full.steps, repeatRatios)
  return {
    method: extrapolationMethod,
    sampledTasks: pairs.length,
    sampledSteps,
    scheduleSteps: full.steps,
    ratio: estimate.ratio,
    ratioLow: estimate.low,
    ratioHigh: estimate.high,
    seconds: scaledMakespan(full.batches, workers, estimate.ratio),
    secondsLow: scaledMakespan(full.batches, workers, estimate.low),
    secondsHigh: Number.isFinite(estimate.high) ? scaledMakespan(full.batches, workers, estimate.high) : Number.POSITIVE_INFINITY
  }
}
