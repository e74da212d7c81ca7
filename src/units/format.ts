const decimal = [
  { prefix: "P", factor: 1e15 },
  { prefix: "T", factor: 1e12 },
  { prefix: "G", factor: 1e9 },
  { prefix: "M", factor: 1e6 },
  { prefix: "k", factor: 1e3 },
  { prefix: "", factor: 1 }
]

const binary = [
  { prefix: "Ti", factor: 2 ** 40 },
  { prefix: "Gi", factor: 2 ** 30 },
  { prefix: "Mi", factor: 2 ** 20 },
  { prefix: "Ki", factor: 2 ** 10 },
  { prefix: "", factor: 1 }
]

function withPrefix(value: number, unit: string, table: ReadonlyArray<{ prefix: string; factor: number }>, digits: number): string {
  if (value === 0 || !Number.isFinite(value)) return `${value} ${unit}`
  const entry = table.find((row) => Math.abs(value) >= row.factor) ?? table[table.length - 1]!
  return `${round(value / entry.factor, digits)} ${entry.prefix}${unit}`
}

function round(value: number, digits: number): string {
  return Number(value.toPrecision(digits)).toString()
}

/** Format a size with binary prefixes ("80 GiB"). */
export const formatBytes = (value: number, digits = 4): string => withPrefix(value, "B", binary, digits)

/** Format a size with decimal prefixes ("96 GB"). */
export const formatBytesDecimal = (value: number, digits = 4): string => withPrefix(value, "B", decimal, digits)

export const formatBandwidth = (value: number, digits = 4): string => withPrefix(value, "B/s", decimal, digits)

export const formatFlopRate = (value: number, digits = 4): string => withPrefix(value, "FLOP/s", decimal, digits)

export const formatFlops = (value: number, digits = 4): string => withPrefix(value, "FLOP", decimal, digits)

export const formatHertz = (value: number, digits = 4): string => withPrefix(value, "Hz", decimal, digits)

/** Format a duration with the largest unit that keeps the number at or above 1. */
export function formatSeconds(value: number, digits = 4): string {
  if (value === 0 || !Number.isFinite(value)) return `${value} s`
  const units = [
    { unit: "s", factor: 1 },
    { unit: "ms", factor: 1e-3 },
    { unit: "us", factor: 1e-6 },
    { unit: "ns", factor: 1e-9 }
  ]
  const entry = units.find((row) => Math.abs(value) >= row.factor) ?? units[units.length - 1]!
  return `${round(value / entry.factor, digits)} ${entry.unit}`
}
