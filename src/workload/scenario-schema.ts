import { Schema } from "effect"
import { Dtype } from "../hardware/profile-schema.js"

const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive()).annotations({ identifier: "PositiveInteger" })

export const PhaseSchema = Schema.Literal("prefill", "decode", "train")

/** The attention shape of one layer of a model. */
export const ModelShape = Schema.Struct({
  name: Schema.String,
  heads: PositiveInt,
  kvHeads: PositiveInt,
  headDim: PositiveInt,
  headDimV: Schema.optional(PositiveInt)
})

/** Scenario names: each is a folder under the report directory. */
export const scenarioNamePattern = /^[a-z0-9][a-z0-9._-]*$/

/** One sweep: a variant and phase over a list of sequence lengths. */
export const ScenarioCase = Schema.Struct({
  variant: Schema.Literal("dense", "nsa", "moba", "lightning", "mla"),
  /** The variant's parameters (block sizes, top-k, window…); defaults follow the papers. */
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  phase: PhaseSchema,
  /** Keys per sequence; for decode, the cache length. */
  seqLens: Schema.NonEmptyArray(PositiveInt),
  /** Queries per sequence; defaults to seqLen for prefill and train, 1 for decode. */
  queryLen: Schema.optional(PositiveInt),
  causal: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  kernel: Schema.optional(Schema.Literal("fa2", "fa3")),
  batch: Schema.optional(PositiveInt),
  /** Hardware ids for this case only; default: the scenario's list. */
  hardware: Schema.optional(Schema.NonEmptyArray(Schema.String)),
  /** The layer shape for this case only (each variant compared on its own paper's shape); default: the scenario's `model`. */
  model: Schema.optional(ModelShape)
})
export type ScenarioCase = typeof ScenarioCase.Type

/** A whole model's layer stack over a list of sequence lengths: time per layer kind and memory. */
export const ModelCase = Schema.Struct({
  /** A model id (models/), an attnsim model file or a Hugging Face config.json; a relative path is read from the scenario's folder. */
  model: Schema.String,
  phase: PhaseSchema,
  seqLens: Schema.NonEmptyArray(PositiveInt),
  queryLen: Schema.optional(PositiveInt),
  batch: Schema.optional(PositiveInt),
  kernel: Schema.optional(Schema.Literal("fa2", "fa3"))
})
export type ModelCase = typeof ModelCase.Type

export const ExecutionSettings = Schema.Struct({
  enabled: Schema.Boolean,
  seed: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.nonNegative()), { default: () => 1 }),
  /** Most key tiles executed per row. */
  budgetSteps: Schema.optionalWith(PositiveInt, { default: () => 24 }),
  /** Work items with at most this many key tiles may be executed whole. */
  wholeItemMaxSteps: Schema.optionalWith(PositiveInt, { default: () => 8 }),
  backend: Schema.optionalWith(Schema.Literal("webasm", "cpu", "gl"), { default: () => "webasm" as const }),
  workers: Schema.optional(PositiveInt)
})
export type ExecutionSettings = typeof ExecutionSettings.Type

export const ScenarioSchema = Schema.Struct({
  /** Report folder name; defaults to the file's base name. */
  name: Schema.optional(Schema.String.pipe(Schema.pattern(scenarioNamePattern))).annotations({
    description: "lowercase letters, digits, '.', '_' and '-'"
  }),
  description: Schema.optional(Schema.String),
  hardware: Schema.NonEmptyArray(Schema.String),
  /** What-if overrides applied to every profile, as `path=value`. */
  set: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** The layer shape variant cases use; optional when every case names a model. */
  model: Schema.optional(ModelShape),
  dtype: Dtype,
  batch: PositiveInt,
  cases: Schema.NonEmptyArray(Schema.Union(ScenarioCase, ModelCase)),
  execution: Schema.optionalWith(ExecutionSettings, {
    default: () => ({ enabled: true, seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" as const })
  })
}).annotations({ identifier: "Scenario" })

export type Scenario = typeof ScenarioSchema.Type
export type ScenarioInput = typeof ScenarioSchema.Encoded
