import type { Bytes, BytesPerSecond, Cycles, FlopsPerSecond, Hertz, OpsPerSecond, Seconds, UsdPerHour, Watts } from "./quantity.js"

/** The physical dimension a unit string must have. */
export type Dimension =
  | "bytes"
  | "bytes/s"
  | "flop/s"
  | "op/s"
  | "hertz"
  | "seconds"
  | "watts"
  | "cycles"
  | "usd/h"

export interface DimensionValue {
  readonly bytes: Bytes
  readonly "bytes/s": BytesPerSecond
  readonly "flop/s": FlopsPerSecond
  readonly "op/s": OpsPerSecond
  readonly hertz: Hertz
  readonly seconds: Seconds
  readonly watts: Watts
  readonly cycles: Cycles
  readonly "usd/h": UsdPerHour
}

/** What a unit string of each dimension looks like, for error messages. */
export const dimensionExamples: Record<Dimension, string> = {
  bytes: `a size such as "80 GiB", "50 MiB" or "96 GB" (decimal kB/MB/GB/TB, binary KiB/MiB/GiB/TiB)`,
  "bytes/s": `a bandwidth such as "3.35 TB/s", "900 GB/s" or "400 Gbit/s"`,
  "flop/s": `a compute rate such as "989.4 TFLOP/s"`,
  "op/s": `an operation rate such as "3.9 Top/s" or "3.9 TFLOP/s"`,
  hertz: `a frequency such as "1.83 GHz" or "1830 MHz"`,
  seconds: `a duration such as "4 us", "250 ns" or "1.5 ms"`,
  watts: `a power such as "700 W"`,
  cycles: `a latency in clock cycles such as "479 cycles"`,
  "usd/h": `a price such as "2.99 USD/h"`
}

const decimalPrefixes: Record<string, number> = { "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 }
const binaryPrefixes: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 }
const timePrefixes: Record<string, number> = { "": 1, m: 1e-3, u: 1e-6, "µ": 1e-6, n: 1e-9, p: 1e-12 }

interface UnitMatch {
  readonly dimension: Dimension
  readonly factor: number
}

/** The reason a string is not a valid quantity of the requested dimension. */
export class UnitParseError extends Error {
  readonly _tag = "UnitParseError"
  constructor(
    readonly input: string,
    readonly expected: Dimension,
    readonly reason: string
  ) {
    super(`${JSON.stringify(input)} is not ${dimensionExamples[expected]}: ${reason}`)
  }
}

const numberPattern = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*)$/

/**
 * Parse a unit suffix into its dimension and SI factor. Returns a reason string
 * for suffixes that are ambiguous or unknown.
 */
function matchUnit(unit: string): UnitMatch | string {
  const rate = unit.match(/^(.*?)(B|bit|FLOP|FLOPS|op|ops)\/s$|^(.*?)(FLOPS)$/)
  if (rate) {
    const prefix = rate[1] ?? rate[3] ?? ""
    const base = rate[2] ?? rate[4] ?? ""
    if (base === "B" || base === "bit") {
      const scale = base === "bit" ? 1 / 8 : 1
      const factor = decimalPrefixes[prefix] ?? binaryPrefixes[prefix]
      if (factor === undefined) return prefixReason(prefix, unit)
      return { dimension: "bytes/s", factor: factor * scale }
    }
    const factor = decimalPrefixes[prefix]
    if (factor === undefined) return prefixReason(prefix, unit)
    const dimension: Dimension = base.startsWith("FLOP") ? "flop/s" : "op/s"
    return { dimension, factor }
  }

  if (/^[kMGTP]?b\/s$|^[kMGTP]?bps$/.test(unit)) {
    return `"${unit}" is ambiguous between bits and bytes; write "bit/s" (for example "400 Gbit/s") or "B/s"`
  }

  const size = unit.match(/^(.*?)B$/)
  if (size) {
    const prefix = size[1] ?? ""
    const factor = decimalPrefixes[prefix] ?? binaryPrefixes[prefix]
    if (factor === undefined) return prefixReason(prefix, unit)
    return { dimension: "bytes", factor }
  }

  const frequency = unit.match(/^(.*?)Hz$/)
  if (frequency) {
    const factor = decimalPrefixes[frequency[1] ?? ""]
    if (factor === undefined) return prefixReason(frequency[1] ?? "", unit)
    return { dimension: "hertz", factor }
  }

  const duration = unit.match(/^(.*?)s$/)
  if (duration && (duration[1] ?? "") in timePrefixes) {
    return { dimension: "seconds", factor: timePrefixes[duration[1] ?? ""] ?? 1 }
  }

  const power = unit.match(/^(.*?)W$/)
  if (power) {
    const factor = decimalPrefixes[power[1] ?? ""]
    if (factor === undefined) return prefixReason(power[1] ?? "", unit)
    return { dimension: "watts", factor }
  }

  if (unit === "cycles" || unit === "cycle") return { dimension: "cycles", factor: 1 }
  if (unit === "USD/h" || unit === "USD/hour") return { dimension: "usd/h", factor: 1 }

  return unit === "" ? "the unit is missing" : `unknown unit "${unit}"`
}

function prefixReason(prefix: string, unit: string): string {
  if (prefix === "K") return `"${unit}" has prefix "K", which is ambiguous; write "k" for 10^3 or "Ki" for 2^10`
  if (prefix in binaryPrefixes) return `binary prefix "${prefix}" is only valid for bytes and bytes/s`
  return `unknown prefix "${prefix}" in "${unit}"`
}

/**
 * Parse a human-written quantity such as "3.35 TB/s" into SI base units.
 * Decimal prefixes are powers of ten and binary prefixes powers of two; the two
 * are never confused. Throws UnitParseError with the reason on bad input.
 */
export function parseQuantity<D extends Dimension>(input: string, expected: D): DimensionValue[D] {
  const trimmed = input.trim()
  const match = trimmed.match(numberPattern)
  if (!match) throw new UnitParseError(input, expected, "it does not start with a number")

  const magnitude = Number(match[1])
  const unit = (match[2] ?? "").trim()
  if (!Number.isFinite(magnitude)) throw new UnitParseError(input, expected, "the number is not finite")
  if (magnitude < 0 || Object.is(magnitude, -0)) throw new UnitParseError(input, expected, "the value is negative")

  const unitMatch = matchUnit(unit)
  if (typeof unitMatch === "string") throw new UnitParseError(input, expected, unitMatch)
  if (unitMatch.dimension !== expected && !(expected === "op/s" && unitMatch.dimension === "flop/s")) {
    throw new UnitParseError(input, expected, `"${unit}" measures ${unitMatch.dimension}, not ${expected}`)
  }

  return (magnitude * unitMatch.factor) as DimensionValue[D]
}
