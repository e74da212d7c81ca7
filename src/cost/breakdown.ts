import type { WorkCounts } from "./counts.js"

/** A resource the cost model prices; `bound` names the one that dominates. */
export type Resource = "tensor" | "exp" | "vector" | "hbm" | "l2" | "smem" | "latency" | "launch"

/**
 * Where the time goes. The parts add up to the total:
 * tensor + softmaxExposed + memoryStall + latency + waveTail + launch = seconds.
 */
export interface TimeComponents {
  /** Matrix-product time at the achievable tensor rate. */
  readonly tensor: number
  /** Softmax (exp and FP32 vector work) not hidden behind the matrix products. */
  readonly softmaxExposed: number
  /** Memory time beyond the compute time (the CTA waits for data). */
  readonly memoryStall: number
  /** Pipeline fill and drain per CTA: first loads, last stores, memory latency. */
  readonly latency: number
  /** Idle slot time in the last, partly filled wave of CTAs. */
  readonly waveTail: number
  /** Kernel launch overhead. */
  readonly launch: number
}

/** Whole-kernel time of each resource if it alone limited the kernel, at the achievable rate. */
export interface ResourceSeconds {
  readonly tensor: number
  readonly exp: number
  readonly vector: number
  readonly hbm: number
  readonly l2: number
  readonly smem: number
}

export interface KernelCost {
  readonly name: string
  readonly ctas: number
  readonly ctasPerSm: number
  readonly waves: number
  readonly counts: WorkCounts
  readonly resourceSeconds: ResourceSeconds
  readonly components: TimeComponents
  readonly bound: Resource
  readonly seconds: number
}

export interface CostBreakdown {
  readonly seconds: number
  readonly components: TimeComponents
  readonly resourceSeconds: ResourceSeconds
  readonly counts: WorkCounts
  readonly bound: Resource
  readonly kernels: ReadonlyArray<KernelCost>
}

export const componentKeys = ["tensor", "softmaxExposed", "memoryStall", "latency", "waveTail", "launch"] as const

export const sumComponents = (c: TimeComponents): number => componentKeys.reduce((sum, key) => sum + c[key], 0)
