import { Schema } from "effect"
import { QuantityFromString } from "../units/index.js"
import { Figure, Fraction, PositiveInt } from "./figure.js"

/**
 * The hardware profile file format. Every figure carries its value in human
 * units with the unit in the string ("3.35 TB/s"), its source and confidence.
 * Decoding turns values into SI base units; cross-field checks live in checks.ts.
 */

export const Dtype = Schema.Literal("bf16", "fp16", "fp8", "fp32").annotations({ identifier: "Dtype" })
export type Dtype = typeof Dtype.Type

export const elementBytes: Record<Dtype, number> = { bf16: 2, fp16: 2, fp8: 1, fp32: 4 }

const Rate = Figure(QuantityFromString("flop/s"))
const Bandwidth = Figure(QuantityFromString("bytes/s"))
const Size = Figure(QuantityFromString("bytes"))
const Latency = Figure(QuantityFromString("cycles"))
const Clock = Figure(QuantityFromString("hertz"))
const Count = Figure(PositiveInt)

const TensorRates = Schema.Struct({
  bf16: Schema.optional(Rate),
  fp16: Schema.optional(Rate),
  fp8: Schema.optional(Rate),
  fp32: Schema.optional(Rate)
})

const TensorRatePerClock = Schema.Struct({
  bf16: Schema.optional(Count),
  fp16: Schema.optional(Count),
  fp8: Schema.optional(Count),
  fp32: Schema.optional(Count)
})

export const Compute = Schema.Struct({
  sms: Count,
  /**
   * peak: the clock behind the datasheet tensor peak. Every SM-clocked rate in a
   * profile (tensor, vector, exp, shared memory) is quoted at this clock and
   * scaled by sustained / peak when priced.
   */
  clock: Schema.Struct({
    peak: Clock,
    max: Schema.optional(Clock),
    sustained: Clock
  }),
  tensor: TensorRates,
  tensorFlopsPerClockPerSm: Schema.optional(TensorRatePerClock),
  consistencyException: Schema.optional(Schema.String),
  /**
   * Fraction of the tensor peak that warp-synchronous MMA (mma.sync, as used by
   * FlashAttention-2) reaches. 1 where that is the native path; below 1 where the
   * peak needs warpgroup MMA (Hopper and later). Absent means 1.
   */
  syncMmaFraction: Schema.optional(Figure(Fraction)),
  vectorFp32: Rate,
  exp: Figure(QuantityFromString("op/s")),
  maxCtasPerSm: Count,
  maxThreadsPerSm: Count,
  maxRegistersPerThread: Count
})

const CacheLevel = Schema.Struct({
  capacity: Size,
  bandwidth: Bandwidth,
  latency: Latency,
  transaction: Size
})

export const Memory = Schema.Struct({
  registers: Schema.Struct({ capacityPerSm: Size }),
  smem: Schema.Struct({
    capacityPerSm: Size,
    capacityPerBlock: Size,
    bytesPerClockPerSm: Count,
    latency: Latency
  }),
  l2: CacheLevel,
  llc: Schema.optional(CacheLevel),
  hbm: Schema.Struct({
    kind: Schema.String,
    capacity: Size,
    bandwidth: Bandwidth,
    latency: Latency,
    transaction: Size
  })
})

export const Achievable = Schema.Struct({
  tensor: Figure(Fraction),
  vector: Figure(Fraction),
  exp: Figure(Fraction),
  smem: Figure(Fraction),
  l2: Figure(Fraction),
  hbm: Figure(Fraction)
})

export const Interconnect = Schema.Struct({
  kind: Schema.String,
  bandwidth: Bandwidth
})

const Duration = Figure(QuantityFromString("seconds", { allowZero: true }))

/**
 * Worker time of one kind of tile task, fitted by `attnsim calibrate` to
 * measured tasks: Σ over terms of seconds per unit × units (task, step, FLOP,
 * score, …: the counts the schedule prices and the task's tile shape).
 */
export const HostStepModel = Schema.Struct({
  terms: Schema.Record({ key: Schema.String, value: Duration }),
  /** The formula, with what each term counts. */
  form: Schema.String,
  /** The measured tile shapes and step counts the terms were fitted to. */
  fittedTo: Schema.String,
  /** Median and largest |relative residual| of the fit over those measurements, in percent. */
  residualMedianPct: Schema.Number,
  residualMaxPct: Schema.Number,
  /** Spread of the model's prediction over the repeats (each fitted on its own), median over the measured shapes, in percent. */
  predictionSpreadPct: Schema.optional(Schema.Number),
  /** The measurements fitted to: term counts, median worker seconds and the spread of the repeats. */
  measurements: Schema.optional(
    Schema.Array(
      Schema.Struct({
        shape: Schema.String,
        counts: Schema.Record({ key: Schema.String, value: Schema.Number }),
        seconds: Schema.Number,
        spreadPct: Schema.Number
      })
    )
  )
})

/** The worker pool's measured costs that the host cost model prices tasks with. */
export const HostCalibration = Schema.Struct({
  /** A worker's time outside its batches per batch, with every worker busy: messages, result handling, the pool's bookkeeping. */
  dispatch: Duration,
  /** Dispatch cost each task of a batch adds (result handling on the main thread, messages). */
  dispatchPerTask: Duration,
  /** Bytes per second of a payload copied by structured clone (without a transfer list). */
  transferCopied: Figure(QuantityFromString("bytes/s")),
  /** Tile data elements a worker generates per second in a tight loop (AttentionTileFill; tasks are priced by their fill term). */
  fill: Figure(QuantityFromString("op/s")),
  /** Seconds per task of a fixed attention workload, measured again before validation runs to track the machine's speed. */
  referenceTask: Schema.optional(Duration),
  /** Per task kind ("attention-forward", …). */
  stepModels: Schema.Record({ key: Schema.String, value: HostStepModel }),
  /** Spread of the repeats behind each figure, (max − min) / median in percent, by the figure's path. */
  spreadPct: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** Wall time of the calibration run. */
  seconds: Schema.Number
})

/** The machine a measured profile describes; a profile with this block is only valid there. */
export const HostMachine = Schema.Struct({
  cpuModel: Schema.String,
  logicalCores: PositiveInt,
  nodeVersion: Schema.String,
  platform: Schema.String,
  backend: Schema.Literal("webasm", "cpu", "gl"),
  workers: PositiveInt,
  measuredAt: Schema.String,
  fingerprint: Schema.String,
  /** The facts the fingerprint hashes, so a mismatch can name what differs. */
  identity: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  calibration: Schema.optional(HostCalibration)
})

export const Architecture = Schema.Literal("ampere", "hopper", "ada", "blackwell", "cdna3", "host").annotations({
  identifier: "Architecture"
})

export const ProfileFile = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9-]*$/)).annotations({
    description: "a lowercase id of letters, digits and dashes"
  }),
  name: Schema.String,
  vendor: Schema.String,
  architecture: Architecture,
  features: Schema.Struct({
    asyncMma: Schema.Boolean.annotations({
      description: "true where warpgroup-level asynchronous MMA (wgmma or later) lets softmax overlap the matrix products"
    })
  }),
  sources: Schema.Record({ key: Schema.String, value: Schema.String }),
  compute: Compute,
  memory: Memory,
  achievable: Achievable,
  launchOverhead: Figure(QuantityFromString("seconds", { allowZero: true })),
  interconnect: Interconnect,
  /** Board power; required for GPUs, absent for a host profile (no power sensor is read). */
  power: Schema.optional(Figure(QuantityFromString("watts"))),
  pricePerHour: Schema.optional(Figure(QuantityFromString("usd/h"))),
  host: Schema.optional(HostMachine)
}).annotations({ identifier: "HardwareProfile" })

export type HardwareProfile = typeof ProfileFile.Type
export type ProfileFileEncoded = typeof ProfileFile.Encoded
