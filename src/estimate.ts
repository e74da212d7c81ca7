import type { CostBreakdown } from "./cost/breakdown.js"
import { deviceRates, type DeviceRates } from "./hardware/device.js"
import type { HardwareProfile } from "./hardware/profile-schema.js"
import { describeTiling, planDense, type DensePlan } from "./variants/dense/plan.js"
import type { KernelGeneration } from "./variants/dense/generations.js"
import { backwardFlopsFactor, conventionForwardFlops, type AttentionShape, type Phase } from "./workload/shape.js"

/** One attention operation to price: a variant, a shape, a phase. */
export interface OperationRequest {
  readonly variant: "dense"
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly kernel?: KernelGeneration | undefined
}

/** What each FLOP figure counts; printed with every estimate. */
export const flopDefinitions = {
  flops: "useful tensor FLOPs: 2 per multiply-add over exactly the (query, key) pairs the mask allows",
  flopsExecuted: "tensor FLOPs the tiles execute: masked parts of partly masked tiles and MMA padding included",
  flopsConvention:
    "FlashAttention papers' convention for comparing with published TFLOP/s: 4·seqLen²·headDim·heads per sequence, halved when causal (backward 2.5×)"
} as const

export interface Estimate {
  readonly hardware: string
  readonly variant: string
  readonly phase: Phase
  readonly dtype: string
  readonly shape: AttentionShape
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
  readonly tiling: {
    readonly description: string
    readonly forward: Record<string, unknown>
    readonly backward?: Record<string, unknown> | undefined
  }
  readonly planner: { readonly considered: number; readonly rejected: number; readonly rejectedExamples: ReadonlyArray<{ tiling: string; reason: string }> }
  readonly flopDefinitions: typeof flopDefinitions
}

export interface PlannedOperation {
  readonly request: OperationRequest
  readonly device: DeviceRates
  readonly plan: DensePlan
  readonly estimate: Estimate
}

/** Plan and price one operation on a decoded profile. */
export function planOperation(request: OperationRequest, profile: HardwareProfile): PlannedOperation {
  const device = deviceRates(profile, request.shape.dtype)
  const plan = planDense({ shape: request.shape, phase: request.phase, kernel: request.kernel }, device)
  return { request, device, plan, estimate: toEstimate(request, profile, plan) }
}

function toEstimate(request: OperationRequest, profile: HardwareProfile, plan: DensePlan): Estimate {
  const { cost } = plan
  const convention = conventionForwardFlops(request.shape) * (request.phase === "train" ? 1 + backwardFlopsFactor : 1)
  return {
    hardware: profile.id,
    variant: request.variant,
    phase: request.phase,
    dtype: request.shape.dtype,
    shape: request.shape,
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
    tiling: {
      description: describeTiling(plan.tiling) + (plan.backwardTiling ? `; backward ${describeTiling(plan.backwardTiling)}` : ""),
      forward: { ...plan.tiling },
      backward: plan.backwardTiling ? { ...plan.backwardTiling } : undefined
    },
    planner: { considered: plan.considered, rejected: plan.rejected.length, rejectedExamples: plan.rejected.slice(0, 5) },
    flopDefinitions
  }
}
