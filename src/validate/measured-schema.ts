import { Schema } from "effect"
import { Dtype } from "../hardware/profile-schema.js"

/**
 * Kernel times measured on a real GPU, as fixture files in fixtures/measured/.
 * One file is one measurement campaign: one GPU, one software stack, one date,
 * one way of timing. `attnsim validate --published` prices every point on the
 * named profile and compares seconds with seconds, like the published figures.
 * See fixtures/measured/README.md for how to record one.
 */
export const MeasuredPoint = Schema.Struct({
  batch: Schema.Number.pipe(Schema.int(), Schema.positive()),
  heads: Schema.Number.pipe(Schema.int(), Schema.positive()),
  /** Key/value heads; heads when absent. */
  kvHeads: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  headDim: Schema.Number.pipe(Schema.int(), Schema.positive()),
  /** Value head dim; headDim when absent. */
  headDimV: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  /** Keys per sequence (the cache length in decode). */
  seqLen: Schema.Number.pipe(Schema.int(), Schema.positive()),
  /** Queries per sequence; seqLen for prefill and train, 1 for decode when absent. */
  queryLen: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  causal: Schema.Boolean,
  /** The variant's options as `attnsim estimate` takes them (keys of its schema). */
  options: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  /** Median kernel time of the operation, in seconds. */
  seconds: Schema.Number.pipe(Schema.positive()),
  /** (max − min) / median of the repeats, in percent. */
  spreadPct: Schema.optional(Schema.Number.pipe(Schema.nonNegative())),
  repeats: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive()))
})
export type MeasuredPoint = typeof MeasuredPoint.Type

export const MeasuredSeries = Schema.Struct({
  id: Schema.String,
  /** Who measured, with what script or benchmark, where the raw data lives. */
  source: Schema.String.pipe(Schema.minLength(10)),
  /** The profile the points are priced on. */
  hardware: Schema.String,
  /** Profile overrides that reproduce the measurement's conditions, such as a locked clock. */
  set: Schema.Array(Schema.String),
  /** The GPU as its driver names it, e.g. "NVIDIA H100 80GB HBM3". */
  gpu: Schema.String.pipe(Schema.minLength(1)),
  /** Software that ran the kernels, name → version: driver, CUDA, PyTorch, the kernel library. */
  software: Schema.Record({ key: Schema.String, value: Schema.String }),
  /** Date of the measurement, ISO 8601 (YYYY-MM-DD). */
  date: Schema.String.pipe(Schema.pattern(/^\d{4}-\d{2}-\d{2}/)),
  /** How the time was taken: events or profiler, warm-up, repeats, what the time includes. */
  method: Schema.String.pipe(Schema.minLength(10)),
  variant: Schema.String,
  kernel: Schema.optional(Schema.Literal("fa2", "fa3")),
  dtype: Dtype,
  phase: Schema.Literal("prefill", "decode", "train"),
  tolerancePct: Schema.Number.pipe(Schema.positive()),
  points: Schema.Array(MeasuredPoint)
})
export type MeasuredSeries = typeof MeasuredSeries.Type
