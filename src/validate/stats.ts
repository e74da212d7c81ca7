/** Summary statistics for repeated measurements and error lists. */

export function median(values: ReadonlyArray<number>): number {
  return quantile(values, 0.5)
}

/** The q-quantile by linear interpolation between order statistics (q in [0, 1]); NaN for no values. */
export function quantile(values: ReadonlyArray<number>, q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const position = q * (sorted.length - 1)
  const below = Math.floor(position)
  const above = Math.ceil(position)
  return sorted[below]! + (sorted[above]! - sorted[below]!) * (position - below)
}

/** (max − min) / median × 100: the spread of repeats, in percent of their median. */
export function spreadPct(values: ReadonlyArray<number>): number {
  if (values.length < 2) return 0
  const center = median(values)
  return center === 0 ? 0 : ((Math.max(...values) - Math.min(...values)) / Math.abs(center)) * 100
}

/** Median of repeats with their spread and range, the form every timed figure is reported in. */
export interface Repeated {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly spreadPct: number
  readonly repeats: number
}

export function summarizeRepeats(values: ReadonlyArray<number>): Repeated {
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    spreadPct: spreadPct(values),
    repeats: values.length
  }
}

/** Median and 90th percentile of absolute errors. */
export function absErrorSummary(errorsPct: ReadonlyArray<number>): { readonly medianAbsErrorPct: number; readonly p90AbsErrorPct: number } {
  const absolute = errorsPct.filter((e) => Number.isFinite(e)).map((e) => Math.abs(e))
  return { medianAbsErrorPct: median(absolute), p90AbsErrorPct: quantile(absolute, 0.9) }
}

/** (predicted − measured) / measured × 100. */
export const errorPct = (predicted: number, measured: number): number => ((predicted - measured) / measured) * 100

/**
 * Two-sided 97.5 % quantiles of Student's t for 1..30 degrees of freedom; past
 * 30 the normal quantile 1.96 is within 2 % of t.
 */
const t975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042]

/** The t quantile for a 95 % two-sided interval with `degrees` degrees of freedom. */
export function tQuantile95(degrees: number): number {
  if (degrees < 1) return Number.POSITIVE_INFINITY
  return t975[Math.min(degrees, t975.length) - 1] ?? 1.96
}
