import { seededRandom } from "../exec/data.js"
import { median } from "./stats.js"

/**
 * Memory microbenchmarks for the host profile's levels, run on the main
 * thread: copy bandwidth (TypedArray.copyWithin, a memcpy in V8) and load
 * latency (a pointer chase through a random cycle, so no prefetcher can guess
 * the next address) at a working set that fits the level.
 */

export interface LevelMeasurement {
  readonly workingSetBytes: number
  /** Bytes read plus bytes written per second, one value per repeat. */
  readonly bandwidths: ReadonlyArray<number>
  /** Seconds per dependent load, one value per repeat. */
  readonly latencies: ReadonlyArray<number>
}

/** Measure copy bandwidth and load latency with a working set of `bytes`. */
export function measureLevel(bytes: number, repeats: number): LevelMeasurement {
  return { workingSetBytes: bytes, bandwidths: copyBandwidths(bytes, repeats), latencies: chaseLatencies(bytes, repeats) }
}

/** Copy half of a buffer onto the other half until about 64 MiB (and at least 4 copies) have moved per repeat. */
function copyBandwidths(bytes: number, repeats: number): number[] {
  const words = Math.max(16, Math.floor(bytes / 8))
  const buffer = new Float64Array(words).fill(1)
  const half = Math.floor(words / 2)
  const copies = Math.max(4, Math.ceil((64 * 2 ** 20) / (half * 8)))
  const once = (): void => {
    for (let copy = 0; copy < copies; copy++) buffer.copyWithin(copy % 2 === 0 ? 0 : half, copy % 2 === 0 ? half : 0, copy % 2 === 0 ? words : half)
  }
  once()
  const rates: number[] = []
  for (let repeat = 0; repeat < repeats; repeat++) {
    const started = performance.now()
    once()
    rates.push((copies * half * 8 * 2) / ((performance.now() - started) / 1000))
  }
  return rates
}

/** Follow a random single cycle through an Int32Array of the working set's size. */
function chaseLatencies(bytes: number, repeats: number): number[] {
  const slots = Math.max(16, Math.floor(bytes / 4))
  // Visit slots in a random order spaced a cache line (16 slots) apart, so each load touches a new line.
  const stride = 16
  const lines = Math.max(2, Math.floor(slots / stride))
  const order = Array.from({ length: lines }, (_, index) => index)
  const random = seededRandom(0x2545f491)
  for (let index = lines - 1; index > 0; index--) {
    const other = Math.floor(random() * (index + 1))
    ;[order[index], order[other]] = [order[other]!, order[index]!]
  }
  const next = new Int32Array(lines * stride)
  for (let index = 0; index < lines; index++) next[order[index]! * stride] = order[(index + 1) % lines]! * stride

  const hops = 200_000
  const chase = (): number => {
    let at = 0
    for (let hop = 0; hop < hops; hop++) at = next[at]!
    return at
  }
  chase()
  const latencies: number[] = []
  let sink = 0
  for (let repeat = 0; repeat < repeats; repeat++) {
    const started = performance.now()
    sink += chase()
    latencies.push((performance.now() - started) / 1000 / hops)
  }
  // Keep the chase observable so it cannot be removed as dead code.
  if (sink === -1) latencies.push(0)
  return latencies
}

export const medianBandwidth = (level: LevelMeasurement): number => median(level.bandwidths)
export const medianLatency = (level: LevelMeasurement): number => median(level.latencies)
