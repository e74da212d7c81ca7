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
 * units and encodes it back as the plain SI number with its unit.
 */
export function QuantityFromString<D extends Dimension>(dimension: D) {
  return Schema.transformOrFail(Schema.String, Schema.Number, {
    strict: false,
    decode: (input, _options, ast) => {
      try {
        return ParseResult.succeed(parseQuantity(input, dimension) as number)
      } catch (error) {
        const reason = error instanceof UnitParseError ? error.reason : String(error)
        return ParseResult.fail(new ParseResult.Type(ast, input, `${dimensionExamples[dimension]}; ${reason}`))
      }
    },
    encode: (value) => ParseResult.succeed(`${value} ${siUnit[dimension]}`)
  }).annotations({ identifier: `Quantity(${dimension})` }) as unknown as Schema.Schema<DimensionValue[D], string>
}
