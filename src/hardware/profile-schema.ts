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

/** The machine a measured profile describes; a profile with this block is only valid there. */
export const HostMachine = Schema.Struct({
  cpuModel: Schema.String,
  logicalCores: PositiveInt,
  nodeVersion: Schema.String,
  platform: Schema.String,
  backend: Schema.Literal("webasm", "cpu", "gl"),
  workers: PositiveInt,
  measuredAt: Schema.String,
  fingerprint: Schema.String
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
  power: Figure(QuantityFromString("watts")),
  pricePerHour: Schema.optional(Figure(QuantityFromString("usd/h"))),
  host: Schema.optional(HostMachine)
}).annotations({ identifier: "HardwareProfile" })

export type HardwareProfile = typeof ProfileFile.Type
export type ProfileFileEncoded = typeof ProfileFile.Encoded
