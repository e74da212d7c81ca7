import { Schema } from "effect"
import { Dtype } from "../hardware/profile-schema.js"

const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive()).annotations({ identifier: "PositiveInteger" })

/** A run of identical consecutive layers. */
export const LayerGroup = Schema.Struct({
  count: PositiveInt,
  variant: Schema.Literal("dense", "nsa", "moba", "lightning", "mla"),
  heads: PositiveInt,
  kvHeads: PositiveInt,
  headDim: PositiveInt,
  headDimV: Schema.optional(PositiveInt),
  /** The variant's options (block sizes, top-k, window, latent rank…). */
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})
export type LayerGroup = typeof LayerGroup.Type

/** A model as a stack of attention layers, with the dims memory accounting needs. */
export const ModelFile = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9._-]*$/)),
  name: Schema.String,
  /** Where the architecture figures come from. */
  source: Schema.String.pipe(Schema.minLength(10)),
  hiddenSize: PositiveInt,
  dtype: Schema.optional(Dtype),
  /** Layers in order, as runs of identical layers; a repeated pattern is written out. */
  layers: Schema.NonEmptyArray(LayerGroup),
  notes: Schema.optional(Schema.Array(Schema.String))
}).annotations({ identifier: "Model" })
export type ModelSpec = typeof ModelFile.Type
