import { fitted } from "../variants/dense/generations.js"
import { loadPublishedSeries, predictPoint, seriesDevice, type ParameterOverrides } from "./published.js"
import type { PublishedSeries } from "./published-schema.js"

export interface FittedParameter {
  readonly name: string
  readonly value: number
  readonly series: string
  readonly measuredTflops: number
  readonly predictedTflops: number
  /** True when the bound of the allowed range was reached before the target. */
  readonly clamped: boolean
}

/**
 * Fit the kernel-generation parameters, each to the single published point
 * marked with its name, by bisection (predicted throughput rises with both
 * parameters). Fits run in dependency order: fa2's backward efficiency is fitted
 * with fa2's forward overlap already fitted.
 */
export function fitGenerationParameters(seriesList: ReadonlyArray<PublishedSeries> = loadPublishedSeries()): ReadonlyArray<FittedParameter> {
  const fa2Overlap = fitOne(seriesList, "fa2.softmaxOverlap", 0, 1, (value) => ({ softmaxOverlap: value }))
  const fa2Backward = fitOne(seriesList, "fa2.backwardMmaEfficiency", 0.3, 1, (value) => ({
    softmaxOverlap: fa2Overlap.value,
    backwardMmaEfficiency: value
  }))
  const fa3Overlap = fitOne(seriesList, "fa3.softmaxOverlap", 0, 1, (value) => ({ softmaxOverlap: value }))
  return [fa2Overlap, fa2Backward, fa3Overlap]
}

function fitOne(
  seriesList: ReadonlyArray<PublishedSeries>,
  name: string,
  low: number,
  high: number,
  overridesFor: (value: number) => ParameterOverrides
): FittedParameter {
  const series = seriesList.find((s) => s.points.some((p) => p.fit === name))
  const point = series?.points.find((p) => p.fit === name)
  if (!series || !point) throw new Error(`no published point is marked as the fit target of ${name}`)
  const device = seriesDevice(series)
  const predict = (value: number): number => predictPoint(series, point, device, overridesFor(value)).predictedTflops

  let lo = low
  let hi = high
  let clamped = false
  if (predict(hi) < point.tflops) {
    lo = hi
    clamped = true
  } else if (predict(lo) > point.tflops) {
    hi = lo
    clamped = true
  } else {
    for (let iteration = 0; iteration < 40; iteration++) {
      const mid = (lo + hi) / 2
      if (predict(mid) < point.tflops) lo = mid
      else hi = mid
    }
  }
  const value = Math.round(((lo + hi) / 2) * 1000) / 1000
  return { name, value, series: series.id, measuredTflops: point.tflops, predictedTflops: predict(value), clamped }
}

/** The fitted values as stored in the code, by the names the fixtures use. */
export const storedParameters: Record<string, number> = {
  "fa2.softmaxOverlap": fitted.fa2.softmaxOverlap,
  "fa2.backwardMmaEfficiency": fitted.fa2.backwardMmaEfficiency,
  "fa3.softmaxOverlap": fitted.fa3.softmaxOverlap
}
