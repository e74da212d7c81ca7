import { Either } from "effect"
import type { CostBreakdown } from "./cost/breakdown.js"
import { decodeInput } from "./decode.js"
import { deviceRates, type DeviceRates } from "./hardware/device.js"
import type { HardwareProfile } from "./hardware/profile-schema.js"
import type { KernelGeneration } from "./variants/dense/generations.js"
import { variantModule } from "./variants/registry.js"
import type { OperationRequest, VariantId, VariantPlan } from "./variants/variant.js"
import { backwardFlopsFactor, conventionForwardFlops, type AttentionShape, type Phase } from "./workload/shape.js"

/** An operation as a user writes it: options not yet decoded. */
export interface OperationInput {
  readonly variant: VariantId | string
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly kernel?: KernelGeneration | undefined
  readonly options?: Readonly<Record<string, unknown>> | undefined
}

/** What each FLOP figure counts; printed with every estimate. */
export const flopDefinitions = {
  flops: "useful tensor FLOPs: 2 per multiply-add over exactly the (query, key) pairs the variant attends",
  flopsExecuted: "tensor FLOPs the tiles execute: masked parts of partly masked tiles and MMA padding included",
  flopsConvention:
    "FlashAttention papers' convention for comparing with published TFLOP/s: 4·seqLen²·headDim·heads per sequence for dense attention, halved when causal (backward 2.5×); the same dense figure for every variant, so it measures speed against dense"
} as const

export interface Estimate {
  readonly hardware: string
  readonly variant: string
  readonly phase: Phase
  readonly dtype: string
  readonly shape: AttentionShape
  readonly options: Readonly<Record<string, unknown>>
  readonly seconds: number
  readonly flops: number
  readonly flopsExecuted: number
  readonly flopsConvention: number
  /** flopsConvention / seconds: the figure papers report as TFLOP/s. */
  readonly conventionFlopsPerSecond: number
  readonly expOps: number
  readonly vectorFlops: number
  readonly bytes: { readonly hbm: number; readonly l2: number; readonly smem: number }
  readonly bound: string
  readonly components: CostBreakdown["components"]
  readonly resourceSeconds: CostBreakdown["resourceSeconds"]
  readonly kernels: ReadonlyArray<{
    readonly name: string
    readonly seconds: number
    readonly ctas: number
    readonly ctasPerSm: number
    readonly waves: number
    readonly bound: string
  }>
  readonly tiling: { readonly description: string } & Readonly<Record<string, unknown>>
  readonly planner: { readonly considered: number; readonly rejected: number; readonly rejectedExamples: ReadonlyArray<{ tiling: string; reason: string }> }
  readonly flopDefinitions: typeof flopDefinitions
  readonly [detail: string]: unknown
}

export interface PlannedOperation {
  readonly request: OperationRequest
  readonly device: DeviceRates
  readonly plan: VariantPlan
  readonly estimate: Estimate
}

/** Decode a variant's options; an invalid option names its key under `origin`. */
export function decodeVariantOptions(variant: string, raw: Readonly<Record<string, unknown>> | undefined, origin: string): Record<string, unknown> {
  const module = variantModule(variant)
  const decoded = decodeInput(module.options, raw ?? {}, origin)
  if (Either.isLeft(decoded)) throw decoded.left
  return decoded.right as Record<string, unknown>
}

/** Plan and price one operation on a decoded profile. */
export function planOperation(input: OperationInput, profile: HardwareProfile, origin = "variant options"): PlannedOperation {
  const module = variantModule(input.variant)
  const options = decodeVariantOptions(input.variant, input.options, origin)
  const request: OperationRequest = { variant: module.id, shape: input.shape, phase: input.phase, kernel: input.kernel, options }
  const device = deviceRates(profile, request.shape.dtype)
  const plan = module.plan(request, device)
  return { request, device, plan, estimate: toEstimate(request, profile.id, plan) }
}

/**
 * Re-plans an operation with what executing its sample measured, because a
 * variant may price with a measured quantity such as MoBA's head overlap.
 * Returns the same operation when its plan takes no measurements.
 */
export function withMeasurements(planned: PlannedOperation, measured: Readonly<Record<string, number>>): PlannedOperation {
  if (!planned.plan.withMeasurements || Object.keys(measured).length === 0) return planned
  const plan = planned.plan.withMeasurements(measured)
  return { ...planned, plan, estimate: toEstimate(planned.request, planned.estimate.hardware, plan) }
}

function toEstimate(request: OperationRequest, hardware: string, plan: VariantPlan): Estimate {
  const { cost } = plan
  const convention = conventionForwardFlops(request.shape) * (request.phase === "train" ? 1 + backwardFlopsFactor : 1)
  return {
    hardware,
    variant: request.variant,
    phase: request.phase,
    dtype: request.shape.dtype,
    shape: request.shape,
    options: request.options,
    seconds: cost.seconds,
    flops: cost.counts.usefulFlops,
    flopsExecuted: cost.counts.tensorFlops,
    flopsConvention: convention,
    conventionFlopsPerSecond: convention / cost.seconds,
    expOps: cost.counts.expOps,
    vectorFlops: cost.counts.vectorFlops,
    bytes: cost.counts.bytes,
    bound: cost.bound,
    components: cost.components,
    resourceSeconds: cost.resourceSeconds,
    kernels: cost.kernels.map((k) => ({ name: k.name, seconds: k.seconds, ctas: k.ctas, ctasPerSm: k.ctasPerSm, waves: k.waves, bound: k.bound })),
    tiling: { description: plan.tilingDescription, ...plan.tiling },
    planner: { considered: plan.considered, rejected: plan.rejected.length, rejectedExamples: plan.rejected.slice(0, 5) },
    flopDefinitions,
    ...plan.details
  }
}
