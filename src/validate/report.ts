import { absErrorSummary, median } from "./stats.js"

/**
 * The validation document `attnsim validate --json` prints and the report
 * files hold, the same shape for host runs and published or measured GPU
 * figures: per variant its cases (predicted and measured seconds, error,
 * whether counts matched), the median and 90th-percentile absolute error, and
 * a one-line verdict.
 */
export interface ValidationCase {
  readonly label: string
  readonly predictedSeconds: number
  readonly measuredSeconds: number
  /** (predicted − measured) / measured × 100. */
  readonly errorPct: number
  /** Counted FLOPs and bytes equal the model's for every executed tile; null where nothing was executed (published figures). */
  readonly countsMatch: boolean | null
  readonly [detail: string]: unknown
}

export interface VariantValidation {
  readonly variant: string
  readonly cases: ReadonlyArray<ValidationCase>
  readonly medianAbsErrorPct: number
  readonly p90AbsErrorPct: number
  readonly verdict: string
}

export interface SourceValidation {
  readonly source: string
  readonly series: ReadonlyArray<string>
  readonly points: number
  readonly medianAbsErrorPct: number
  readonly p90AbsErrorPct: number
}

export interface ValidationDocument {
  readonly kind: "host" | "published"
  readonly generatedAt: string
  /** The command line that produced the document. */
  readonly command: string
  readonly hardware: string
  readonly target: { readonly medianAbsErrorPct: number }
  readonly variants: ReadonlyArray<VariantValidation>
  /** Wall time with one worker divided by wall time with all workers on the speedup workload; null where no pool ran. */
  readonly poolSpeedup: number | null
  readonly [detail: string]: unknown
}

/** Median |error| a variant should stay within. */
export const targetMedianAbsErrorPct = 15

/** Group cases by variant and summarize each with its verdict. */
export function summarizeVariants(
  byVariant: ReadonlyArray<{ readonly variant: string; readonly cases: ReadonlyArray<ValidationCase> }>,
  verdictFor: (variant: string, cases: ReadonlyArray<ValidationCase>, summary: ReturnType<typeof absErrorSummary>) => string
): ReadonlyArray<VariantValidation> {
  return byVariant.map(({ variant, cases }) => {
    const summary = absErrorSummary(cases.map((c) => c.errorPct))
    return { variant, cases, ...summary, verdict: verdictFor(variant, cases, summary) }
  })
}

/** "dense: median |error| 6.1 % (p90 9.8 %) over 5 cases, within the 15 % target; …" */
export function hostVerdict(variant: string, cases: ReadonlyArray<ValidationCase>, summary: ReturnType<typeof absErrorSummary>): string {
  const within = summary.medianAbsErrorPct <= targetMedianAbsErrorPct
  const counts = cases.every((c) => c.countsMatch === true) ? "counted FLOPs, exp operations and bytes equal the model's on every executed tile" : "COUNTS DIFFER from the model's on some tile"
  const bias = median(cases.map((c) => c.errorPct))
  let direction = ""
  if (bias >= 1) direction = `, predictions run ${bias.toFixed(1)} % high at the median`
  if (bias <= -1) direction = `, predictions run ${(-bias).toFixed(1)} % low at the median`
  const contended = cases.filter((c) => c.contended === true).length
  const speeds = cases.map((c) => c.speedIndex).filter((s): s is number => typeof s === "number")
  const speed = speeds.length > 0 ? median(speeds) : undefined
  const conditions = [
    contended > 0 ? `${contended} of ${cases.length} cases ran while other processes took CPU` : undefined,
    speed !== undefined && Math.abs(speed - 1) >= 0.05 ? `the machine ran ${speed.toFixed(2)}× the calibration's time on the reference workload` : undefined
  ].filter((text): text is string => text !== undefined)
  return (
    `${variant}: median |error| ${summary.medianAbsErrorPct.toFixed(1)} % (p90 ${summary.p90AbsErrorPct.toFixed(1)} %) over ${cases.length} cases, ` +
    `${within ? "within" : "MISSES"} the ${targetMedianAbsErrorPct} % target${direction}; ${counts}` +
    (conditions.length > 0 ? `; ${conditions.join("; ")}` : "")
  )
}
