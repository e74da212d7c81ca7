import { ParseResult, Schema } from "effect"
import { dimensionExamples, parseQuantity, UnitParseError, type Dimension, type DimensionValue } from "./parse.js"

/** The SI unit each dimension is stored in, used when a decoded value is written back. */
const siUnit: Record<Dimension, string> = {
  bytes: "B",
  "bytes/s": "B/s",
  "flop/s": "FLOP/s",
  "op/s": "op/s",
  hertz: "Hz",
  seconds: "s",
  watts: "W",
  cycles: "cycles",
  "usd/h": "USD/h"
}

/**
 * A schema that decodes a human-written quantity ("3.35 TB/s") into SI base
 * units and encodes it back as the plain SI number with its unit. Zero is
 * rejected unless `allowZero`: a zero rate, size or clock breaks every division.
 */
export function QuantityFromString<D extends Dimension>(dimension: D, options: { readonly allowZero?: boolean } = {}) {
  return Schema.transformOrFail(Schema.String, Schema.Number, {
    strict: false,
    decode: (input, _options, ast) => {
      try {
        const value = parseQuantity(input, dimension) as number
        if (value === 0 && !options.allowZero) {
          return ParseResult.fail(new ParseResult.Type(ast, input, `${dimensionExamples[dimension]}; the value must be above zero`))
        }
        return ParseResult.succeed(value)
      } catch (error) {
        const reason = error instanceof UnitParseError ? error.reason : String(error)
        return ParseResult.fail(new ParseResult.Type(ast, input, `${dimensionExamples[dimension]}; ${reason}`))
      }
    },
    encode: (value) => ParseResult.succeed(`${value} ${siUnit[dimension]}`)
  }).annotations({ identifier: `Quantity(${dimension})` }) as unknown as Schema.Schema<DimensionValue[D], string>
}
