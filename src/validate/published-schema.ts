import { Schema } from "effect"
import { Dtype } from "../hardware/profile-schema.js"

/** One published measurement: a shape and the throughput a paper reports for it. */
export const PublishedPoint = Schema.Struct({
  seqLen: Schema.Number.pipe(Schema.int(), Schema.positive()),
  headDim: Schema.Number.pipe(Schema.int(), Schema.positive()),
  causal: Schema.Boolean,
  /** Batch size; the benchmark protocol's 16384 / seqLen when absent. */
  batch: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  /** Query heads; the protocol's 2048 / headDim when absent. */
  heads: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.positive())),
  /** Published throughput in TFLOP/s by the FlashAttention FLOP convention. */
  tflops: Schema.Number.pipe(Schema.positive()),
  /** Set on the one point a fitted parameter was fitted to: the parameter's name. */
  fit: Schema.optional(Schema.String),
  /** Prices the kernel with this softmax overlap (an ablation that removes the overlap). */
  softmaxOverlap: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)))
})
export type PublishedPoint = typeof PublishedPoint.Type

/** A file of published measurements from one source on one device. */
export const PublishedSeries = Schema.Struct({
  id: Schema.String,
  source: Schema.String.pipe(Schema.minLength(10)),
  hardware: Schema.String,
  /** Profile overrides that reproduce the measurement's conditions (a locked clock). */
  set: Schema.Array(Schema.String),
  variant: Schema.Literal("dense"),
  kernel: Schema.Literal("fa2", "fa3"),
  dtype: Dtype,
  phase: Schema.Literal("prefill", "train"),
  metric: Schema.Literal("tflops-convention"),
  tolerancePct: Schema.Number.pipe(Schema.positive()),
  protocol: Schema.String,
  points: Schema.Array(PublishedPoint)
})
export type PublishedSeries = typeof PublishedSeries.Type
