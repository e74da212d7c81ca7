import { Schema } from "effect"
import { describe, expect, it } from "vitest"
import {
  formatBandwidth,
  formatBytes,
  formatBytesDecimal,
  formatFlopRate,
  formatHertz,
  formatSeconds,
  parseQuantity,
  QuantityFromString,
  UnitParseError,
  type Dimension
} from "../../src/units/index.js"

/** Assert two SI values agree to 12 significant digits, which absorbs float rounding of the prefix. */
function expectClose(actual: number, expected: number): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(Math.abs(expected) * 1e-12)
}

/** Run a parse that must fail and return its error. */
function parseFailure(input: string, expected: Dimension): UnitParseError {
  try {
    parseQuantity(input, expected)
  } catch (error) {
    if (error instanceof UnitParseError) return error
    throw error
  }
  throw new Error(`${JSON.stringify(input)} parsed as ${expected}, but it should have been rejected`)
}

describe("parseQuantity", () => {
  const accepted: ReadonlyArray<{ input: string; dimension: Dimension; si: number }> = [
    { input: "80 GiB", dimension: "bytes", si: 80 * 2 ** 30 },
    { input: "96 GB", dimension: "bytes", si: 96e9 },
    { input: "50 MiB", dimension: "bytes", si: 50 * 2 ** 20 },
    { input: "228 KiB", dimension: "bytes", si: 228 * 1024 },
    { input: "3.35 TB/s", dimension: "bytes/s", si: 3.35e12 },
    { input: "2039 GB/s", dimension: "bytes/s", si: 2.039e12 },
    { input: "400 Gbit/s", dimension: "bytes/s", si: 50e9 },
    { input: "989.4 TFLOP/s", dimension: "flop/s", si: 989.4e12 },
    { input: "3.9 Top/s", dimension: "op/s", si: 3.9e12 },
    { input: "3.9 TFLOP/s", dimension: "op/s", si: 3.9e12 },
    { input: "1.83 GHz", dimension: "hertz", si: 1.83e9 },
    { input: "1830 MHz", dimension: "hertz", si: 1.83e9 },
    { input: "700 W", dimension: "watts", si: 700 },
    { input: "479 cycles", dimension: "cycles", si: 479 },
    { input: "4 us", dimension: "seconds", si: 4e-6 },
    { input: "250 ns", dimension: "seconds", si: 250e-9 }
  ]

  for (const { input, dimension, si } of accepted) {
    it(`parses ${input}`, () => {
      const value = parseQuantity(input, dimension)

      expectClose(value, si)
    })
  }

  it("keeps GiB and GB apart", () => {
    const binary = parseQuantity("80 GiB", "bytes")
    const decimal = parseQuantity("80 GB", "bytes")

    expect(binary).toBe(85_899_345_920)
    expect(decimal).toBe(80_000_000_000)
  })

  it("ignores surrounding space", () => {
    expect(parseQuantity("  700 W ", "watts")).toBe(700)
  })
})

describe("parseQuantity rejections", () => {
  const rejected: ReadonlyArray<{ name: string; input: string; dimension: Dimension; reason: RegExp }> = [
    { name: "ambiguous K prefix", input: "80 KB", dimension: "bytes", reason: /prefix "K", which is ambiguous/ },
    { name: "bits or bytes", input: "3 Gb/s", dimension: "bytes/s", reason: /ambiguous between bits and bytes/ },
    { name: "binary prefix on FLOP", input: "12 GiFLOP/s", dimension: "flop/s", reason: /binary prefix "Gi" is only valid for bytes/ },
    { name: "no number", input: "TB/s", dimension: "bytes/s", reason: /does not start with a number/ },
    { name: "negative value", input: "-3 GB", dimension: "bytes", reason: /negative/ },
    { name: "size as bandwidth", input: "80 GiB", dimension: "bytes/s", reason: /"GiB" measures bytes, not bytes\/s/ },
    { name: "missing unit", input: "80", dimension: "bytes", reason: /unit is missing/ },
    { name: "unknown unit", input: "80 furlongs", dimension: "bytes", reason: /unknown unit "furlongs"/ }
  ]

  for (const { name, input, dimension, reason } of rejected) {
    it(`rejects ${name}`, () => {
      const error = parseFailure(input, dimension)

      expect(error.reason).toMatch(reason)
      expect(error.message).toMatch(reason)
      expect(error.message).toContain(JSON.stringify(input))
      expect(error.input).toBe(input)
      expect(error.expected).toBe(dimension)
    })
  }
})

describe("format and parse round trip", () => {
  const cases: ReadonlyArray<{ si: number; format: (value: number) => string; dimension: Dimension; text: string }> = [
    { si: 80 * 2 ** 30, format: formatBytes, dimension: "bytes", text: "80 GiB" },
    { si: 96e9, format: formatBytesDecimal, dimension: "bytes", text: "96 GB" },
    { si: 3.35e12, format: formatBandwidth, dimension: "bytes/s", text: "3.35 TB/s" },
    { si: 989.4e12, format: formatFlopRate, dimension: "flop/s", text: "989.4 TFLOP/s" },
    { si: 1.83e9, format: formatHertz, dimension: "hertz", text: "1.83 GHz" },
    { si: 4e-6, format: formatSeconds, dimension: "seconds", text: "4 us" }
  ]

  for (const { si, format, dimension, text } of cases) {
    it(`round-trips ${text}`, () => {
      const written = format(si)
      const read = parseQuantity(written, dimension)

      expect(written).toBe(text)
      expectClose(read, si)
    })
  }
})

describe("QuantityFromString", () => {
  it("decodes to SI units", () => {
    const decode = Schema.decodeUnknownSync(QuantityFromString("bytes/s"))

    expectClose(decode("3.35 TB/s"), 3.35e12)
  })

  it("fails with the unit reason", () => {
    const decode = Schema.decodeUnknownSync(QuantityFromString("bytes/s"))

    expect(() => decode("80 GiB")).toThrow(/"GiB" measures bytes, not bytes\/s/)
  })

  it("encodes the SI number with its unit", () => {
    const encode = Schema.encodeSync(QuantityFromString("hertz"))

    expect(encode(1.83e9 as never)).toBe("1830000000 Hz")
  })
})
