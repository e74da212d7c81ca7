import type { DeviceRates } from "../../hardware/device.js"
import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { KernelGeneration } from "../dense/generations.js"
import { describeTiling as describeDenseTiling, planDense } from "../dense/plan.js"
import type { LightningSettings } from "./options.js"
import { planLightning } from "./plan.js"

export interface DenseComparison {
  readonly denseSeconds: number
  readonly denseTiling: string
  /** Dense time over lightning time on the same shape, phase and device. */
  readonly modeledSpeedupVsDense: number
}

/** Price causal softmax attention of the same shape through the dense variant. */
export function compareWithDense(shape: AttentionShape, phase: Phase, kernel: KernelGeneration | undefined, device: DeviceRates, lightningSeconds: number): DenseComparison {
  const dense = planDense({ shape: { ...shape, window: undefined }, phase, kernel }, device)
  return { denseSeconds: dense.cost.seconds, denseTiling: describeDenseTiling(dense.tiling), modeledSpeedupVsDense: dense.cost.seconds / lightningSeconds }
}

export interface Crossover {
  /** Smallest sequence length (tokens) found at which lightning is faster than dense; undefined when none up to `searchedUpTo`. */
  readonly seqLen: number | undefined
  readonly searchedUpTo: number
  readonly meaning: string
}

const smallestProbe = 16
const largestProbe = 1 << 22
const crossoverCache = new Map<string, Crossover>()

/**
 * Where lightning starts to beat dense for this model shape, phase and device:
 * the sequence length is doubled from 16 tokens until lightning is faster, then
 * bisected to the token. Prefill and train probe seqLenQ = seqLenKV = n; decode
 * probes one query against a cache of n tokens. Dense time grows with n and
 * lightning's per-token time does not, so the sign changes once; wave
 * quantization could move the bisected length by a few tokens. Results are
 * cached per (device rates, shape without lengths, phase, kernel, settings).
 */
export function crossoverSeqLen(shape: AttentionShape, phase: Phase, kernel: KernelGeneration | undefined, settings: LightningSettings, device: DeviceRates): Crossover {
  const key = JSON.stringify([device, { ...shape, seqLenQ: 0, seqLenKV: 0 }, phase, kernel ?? null, { ...settings, logDecay: Array.from(settings.logDecay) }])
  const cached = crossoverCache.get(key)
  if (cached) return cached

  const lightningFaster = (n: number): boolean => {
    const probe: AttentionShape = { ...shape, window: undefined, seqLenKV: n, seqLenQ: phase === "decode" ? 1 : n }
    const lightning = planLightning({ shape: probe, phase, kernel, settings }, device).cost.seconds
    const dense = planDense({ shape: probe, phase, kernel }, device).cost.seconds
    return lightning < dense
  }

  let high = smallestProbe
  while (high <= largestProbe && !lightningFaster(high)) high *= 2
  let seqLen: number | undefined
  if (high === smallestProbe) {
    seqLen = smallestProbe
  } else if (high <= largestProbe) {
    let low = high / 2
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2)
      if (lightningFaster(middle)) high = middle
      else low = middle
    }
    seqLen = high
  }
  const meaning =
    seqLen === smallestProbe
      ? `lightning is already faster at ${smallestProbe} tokens, the shortest length probed`
      : seqLen === undefined
        ? `dense stays faster up to ${largestProbe} tokens`
        : phase === "decode"
          ? `decode against a cache of ${seqLen} tokens or more is faster with lightning attention`
          : `${phase} of ${seqLen} tokens or more is faster with lightning attention`
  const result: Crossover = { seqLen, searchedUpTo: largestProbe, meaning }
  crossoverCache.set(key, result)
  return result
}
