import { Either } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { decodeInput } from "../decode.js"
import { deviceRates, type DeviceRates } from "../hardware/device.js"
import { loadProfile, readJsonFile } from "../hardware/load.js"
import { parseOverride } from "../hardware/overrides.js"
import { packageRoot } from "../paths.js"
import { planDense } from "../variants/dense/plan.js"
import { backwardFlopsFactor, conventionForwardFlops, type AttentionShape } from "../workload/shape.js"
import { PublishedSeries, type PublishedPoint } from "./published-schema.js"

export const publishedDir = (): string => join(packageRoot(), "fixtures", "published")

/** Load every published series in fixtures/published/, validated. */
export function loadPublishedSeries(dir = publishedDir()): ReadonlyArray<PublishedSeries> {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .sort()
    .map((file) => {
      const path = join(dir, file)
      const decoded = decodeInput(PublishedSeries, readJsonFile(path), path)
      if (Either.isLeft(decoded)) throw decoded.left
      return decoded.right
    })
}

/** Kernel parameters to price with instead of the fitted ones (used while fitting). */
export interface ParameterOverrides {
  readonly softmaxOverlap?: number | undefined
  readonly backwardMmaEfficiency?: number | undefined
}

export interface PointPrediction {
  readonly series: string
  readonly point: PublishedPoint
  readonly shape: AttentionShape
  readonly predictedSeconds: number
  readonly predictedTflops: number
  readonly measuredTflops: number
  /** (predicted − measured) / measured × 100. */
  readonly errorPct: number
  readonly tiling: string
}

/** The device a series was measured on, with the series' conditions applied. */
export function seriesDevice(series: PublishedSeries): DeviceRates {
  return deviceRates(loadProfile(series.hardware, series.set.map((text) => parseOverride(text, series.id))), series.dtype)
}

export function pointShape(series: PublishedSeries, point: PublishedPoint): AttentionShape {
  const heads = point.heads ?? 2048 / point.headDim
  return {
    batch: point.batch ?? 16384 / point.seqLen,
    heads,
    kvHeads: heads,
    headDim: point.headDim,
    headDimV: point.headDim,
    seqLenQ: point.seqLen,
    seqLenKV: point.seqLen,
    causal: point.causal,
    dtype: series.dtype
  }
}

/** Predict one published point with the cost model; TFLOP/s by the papers' convention. */
export function predictPoint(series: PublishedSeries, point: PublishedPoint, device: DeviceRates, overrides: ParameterOverrides = {}): PointPrediction {
  const shape = pointShape(series, point)
  const plan = planDense(
    {
      shape,
      phase: series.phase,
      kernel: series.kernel,
      softmaxOverlap: point.softmaxOverlap ?? overrides.softmaxOverlap,
      backwardMmaEfficiency: overrides.backwardMmaEfficiency
    },
    device
  )
  const flops = conventionForwardFlops(shape) * (series.phase === "train" ? 1 + backwardFlopsFactor : 1)
  const predictedTflops = flops / plan.cost.seconds / 1e12
  return {
    series: series.id,
    point,
    shape,
    predictedSeconds: plan.cost.seconds,
    predictedTflops,
    measuredTflops: point.tflops,
    errorPct: ((predictedTflops - point.tflops) / point.tflops) * 100,
    tiling: `${plan.tiling.kernel} ${plan.tiling.blockM}×${plan.tiling.blockN}`
  }
}

/** Predict every point of every series. */
export function predictPublished(seriesList: ReadonlyArray<PublishedSeries> = loadPublishedSeries()): ReadonlyArray<PointPrediction> {
  return seriesList.flatMap((series) => {
    const device = seriesDevice(series)
    return series.points.map((point) => predictPoint(series, point, device))
  })
}
