import { Either } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { decodeInput } from "../decode.js"
import { planOperation } from "../estimate.js"
import { loadProfile, readJsonFile } from "../hardware/load.js"
import { parseOverride } from "../hardware/overrides.js"
import { packageRoot } from "../paths.js"
import { backwardFlopsFactor, conventionForwardFlops } from "../workload/shape.js"
import { MeasuredSeries, type MeasuredPoint } from "./measured-schema.js"
import { loadPublishedSeries, predictPublished } from "./published.js"
import type { PublishedSeries } from "./published-schema.js"
import { summarizeVariants, targetMedianAbsErrorPct, type SourceValidation, type ValidationCase, type ValidationDocument } from "./report.js"
import { absErrorSummary, errorPct } from "./stats.js"

/**
 * Published and measured GPU figures through the same comparison as host
 * runs: every point priced on its GPU profile, predicted seconds against the
 * figure's seconds. Published throughput (TFLOP/s by the FlashAttention
 * convention) becomes seconds as convention FLOPs / throughput. Points a
 * kernel parameter was fitted to are listed but left out of the error
 * summaries: their error is zero by construction.
 */

export const measuredDir = (): string => join(packageRoot(), "fixtures", "measured")

/** Load every measured series in fixtures/measured/ (none is an empty list). */
export function loadMeasuredSeries(dir = measuredDir()): ReadonlyArray<MeasuredSeries> {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const path = join(dir, file)
      const decoded = decodeInput(MeasuredSeries, readJsonFile(path), path)
      if (Either.isLeft(decoded)) throw decoded.left
      return decoded.right
    })
}

interface SourcedCase extends ValidationCase {
  readonly variant: string
  readonly series: string
  readonly source: string
  readonly fitted: boolean
}

function publishedCases(seriesList: ReadonlyArray<PublishedSeries>): SourcedCase[] {
  const bySeries = new Map(seriesList.map((s) => [s.id, s]))
  return predictPublished(seriesList).map((prediction) => {
    const series = bySeries.get(prediction.series)!
    const flops = conventionForwardFlops(prediction.shape) * (series.phase === "train" ? 1 + backwardFlopsFactor : 1)
    const measuredSeconds = flops / (prediction.measuredTflops * 1e12)
    const point = prediction.point
    return {
      label: `${series.id}: ${series.phase} seqLen ${point.seqLen}, head dim ${point.headDim}${point.causal ? ", causal" : ""}`,
      variant: series.variant,
      series: series.id,
      source: series.source,
      fitted: point.fit !== undefined,
      predictedSeconds: prediction.predictedSeconds,
      measuredSeconds,
      errorPct: errorPct(prediction.predictedSeconds, measuredSeconds),
      countsMatch: null,
      hardware: series.hardware,
      kernel: series.kernel,
      tiling: prediction.tiling,
      predictedTflops: prediction.predictedTflops,
      publishedTflops: prediction.measuredTflops,
      tolerancePct: series.tolerancePct
    }
  })
}

function measuredCases(seriesList: ReadonlyArray<MeasuredSeries>): SourcedCase[] {
  return seriesList.flatMap((series) => {
    const profile = loadProfile(series.hardware, series.set.map((text) => parseOverride(text, series.id)))
    return series.points.map((point) => {
      const shape = measuredShape(series, point)
      const { estimate } = planOperation({ variant: series.variant, shape, phase: series.phase, kernel: series.kernel, options: point.options }, profile, `${series.id} options`)
      return {
        label: `${series.id}: ${series.phase} seqLen ${point.seqLen}, batch ${point.batch}, heads ${point.heads}`,
        variant: series.variant,
        series: series.id,
        source: series.source,
        fitted: false,
        predictedSeconds: estimate.seconds,
        measuredSeconds: point.seconds,
        errorPct: errorPct(estimate.seconds, point.seconds),
        countsMatch: null,
        hardware: series.hardware,
        gpu: series.gpu,
        software: series.software,
        date: series.date,
        tiling: estimate.tiling.description,
        tolerancePct: series.tolerancePct
      }
    })
  })
}

function measuredShape(series: MeasuredSeries, point: MeasuredPoint) {
  return {
    batch: point.batch,
    heads: point.heads,
    kvHeads: point.kvHeads ?? point.heads,
    headDim: point.headDim,
    headDimV: point.headDimV ?? point.headDim,
    seqLenQ: point.queryLen ?? (series.phase === "decode" ? 1 : point.seqLen),
    seqLenKV: point.seqLen,
    causal: point.causal,
    dtype: series.dtype
  }
}

/** The published document: per-variant cases, verdicts and per-source summaries. */
export function validatePublished(
  command: string,
  published: ReadonlyArray<PublishedSeries> = loadPublishedSeries(),
  measured: ReadonlyArray<MeasuredSeries> = loadMeasuredSeries()
): ValidationDocument {
  const cases = [...publishedCases(published), ...measuredCases(measured)]
  const variantIds = [...new Set(cases.map((c) => c.variant))]
  const variants = summarizeVariants(
    variantIds.map((variant) => ({ variant, cases: cases.filter((c) => c.variant === variant) })),
    (variant, variantCases) => publishedVerdict(variant, variantCases as ReadonlyArray<SourcedCase>)
  ).map((summary) => ({ ...summary, ...absErrorSummary(scored(summary.cases as ReadonlyArray<SourcedCase>)) }))

  const sources: SourceValidation[] = [...new Set(cases.map((c) => c.source))].map((source) => {
    const own = cases.filter((c) => c.source === source)
    return { source, series: [...new Set(own.map((c) => c.series))], points: own.length, ...absErrorSummary(scored(own)) }
  })
  return {
    kind: "published",
    generatedAt: new Date().toISOString(),
    command,
    hardware: [...new Set(cases.map((c) => String(c.hardware)))].join(", "),
    target: { medianAbsErrorPct: targetMedianAbsErrorPct },
    variants,
    poolSpeedup: null,
    sources,
    fittedPointsExcluded: cases.filter((c) => c.fitted).map((c) => c.label),
    measuredSeries: measured.map((s) => ({ id: s.id, gpu: s.gpu, date: s.date, software: s.software }))
  }
}

/** Errors of the points no parameter was fitted to. */
const scored = (cases: ReadonlyArray<SourcedCase>): number[] => cases.filter((c) => !c.fitted).map((c) => c.errorPct)

function publishedVerdict(variant: string, cases: ReadonlyArray<SourcedCase>): string {
  const errors = scored(cases)
  const summary = absErrorSummary(errors)
  const outside = cases.filter((c) => !c.fitted && Math.abs(c.errorPct) > Number(c.tolerancePct))
  const sources = new Set(cases.map((c) => c.series)).size
  return (
    `${variant}: median |error| ${summary.medianAbsErrorPct.toFixed(1)} % (p90 ${summary.p90AbsErrorPct.toFixed(1)} %) over ${errors.length} points from ${sources} series ` +
    `(${cases.length - errors.length} fit targets left out); ${outside.length === 0 ? "every point within its series' tolerance" : `${outside.length} outside their series' tolerance`}`
  )
}
