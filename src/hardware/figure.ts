import { Schema } from "effect"

/**
 * How far a figure can be trusted:
 * P read in a primary source (vendor document or paper), S secondary (spec
 * listings, third-party write-ups), U unverified or derived by this project,
 * M measured on the machine the profile describes, F fitted to published
 * measurements (the figure's note names the data).
 */
export const Confidence = Schema.Literal("P", "S", "U", "M", "F").annotations({ identifier: "Confidence" })
export type Confidence = typeof Confidence.Type

/** A value with the source it comes from and how far it can be trusted. */
export const Figure = <A, I>(value: Schema.Schema<A, I>) =>
  Schema.Struct({
    value,
    source: Schema.String.pipe(Schema.minLength(1)),
    confidence: Confidence,
    note: Schema.optional(Schema.String)
  })

export interface FigureOf<A> {
  readonly value: A
  readonly source: string
  readonly confidence: Confidence
  readonly note?: string | undefined
}

export const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive()).annotations({
  identifier: "PositiveInteger"
})

/** A fraction of a peak rate, in (0, 1]. */
export const Fraction = Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(1)).annotations({
  identifier: "Fraction",
  description: "a fraction in (0, 1]"
})
