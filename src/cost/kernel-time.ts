import type { DeviceRates } from "../hardware/device.js"
import { componentKeys, type CostBreakdown, type KernelCost, type Resource, type ResourceSeconds, type TimeComponents } from "./breakdown.js"
import { addCounts, scaleCounts, sumCounts, type WorkCounts } from "./counts.js"
import { longestFirstMakespan } from "./makespan.js"

/** CTAs of one kernel that do identical work. `counts.bytes.hbm` is already assigned. */
export interface CtaClass {
  readonly count: number
  readonly counts: WorkCounts
  /** Bytes that must arrive before the first matrix product (query tile, first key/value tile). */
  readonly prologueBytes: number
  /** Bytes written after the last matrix product (the output tile). */
  readonly epilogueBytes: number
}

/** How a kernel uses the SM: which MMA path, how much softmax overlaps it. */
export interface KernelSpec {
  readonly name: string
  readonly classes: ReadonlyArray<CtaClass>
  readonly ctasPerSm: number
  /** "sync": warp-level mma.sync (FlashAttention-2); "async": warpgroup MMA (FlashAttention-3). */
  readonly mma: "sync" | "async"
  /** Fraction of the shorter of (matrix products, softmax) hidden behind the longer, in [0, 1]. */
  readonly softmaxOverlap: number
  /** Fraction of each CTA's fill-and-drain latency hidden by the next CTA on the slot, in [0, 1]. */
  readonly latencyHidden: number
  /** Fraction of the MMA path's achievable rate this kernel's matrix products reach; 1 unless stated. */
  readonly mmaEfficiency?: number | undefined
}

/**
 * "exact" places every CTA (longest first) to find the last wave's idle time;
 * "lower-bound" uses max(average slot time, longest CTA), which never exceeds
 * the exact makespan. The planner ranks tilings by the bound and prices only
 * the contenders exactly.
 */
export type WaveModel = "exact" | "lower-bound"

interface ClassTiming {
  readonly seconds: number
  readonly parts: Omit<TimeComponents, "waveTail" | "launch">
  readonly resources: ResourceSeconds
}

/**
 * Price one kernel launch. Each CTA gets its SM's rates shared among the CTAs
 * resident on that SM, and a share of HBM bandwidth among the CTAs running at
 * once (never more than its SM's share of L2 bandwidth, the path HBM data takes).
 * A CTA's time is its fill-and-drain latency plus the longer of compute and
 * memory; CTAs are placed longest first on sms × ctasPerSm slots.
 */
export function priceKernel(spec: KernelSpec, device: DeviceRates, waves: WaveModel = "exact"): KernelCost {
  const ctas = spec.classes.reduce((sum, c) => sum + c.count, 0)
  const slots = device.sms * spec.ctasPerSm
  const activeSlots = Math.max(1, Math.min(ctas, slots))
  const ctasOnSm = Math.min(spec.ctasPerSm, Math.ceil(activeSlots / device.sms))
  const timings = spec.classes.map((c) => timeClass(c, spec, device, activeSlots, ctasOnSm))

  const perSlot = (pick: (t: ClassTiming) => number): number =>
    spec.classes.reduce((sum, c, index) => sum + c.count * pick(timings[index]!), 0) / activeSlots

  const busy = perSlot((t) => t.seconds)
  const makespan =
    waves === "exact"
      ? longestFirstMakespan(spec.classes.map((c, index) => ({ count: c.count, seconds: timings[index]!.seconds })), activeSlots)
      : timings.reduce((max, t) => Math.max(max, t.seconds), busy)
  const components: TimeComponents = {
    tensor: perSlot((t) => t.parts.tensor),
    softmaxExposed: perSlot((t) => t.parts.softmaxExposed),
    memoryStall: perSlot((t) => t.parts.memoryStall),
    latency: perSlot((t) => t.parts.latency),
    waveTail: Math.max(0, makespan - busy),
    launch: device.launchOverheadSeconds
  }
  const resourceSeconds: ResourceSeconds = {
    tensor: perSlot((t) => t.resources.tensor),
    exp: perSlot((t) => t.resources.exp),
    vector: perSlot((t) => t.resources.vector),
    hbm: perSlot((t) => t.resources.hbm),
    l2: perSlot((t) => t.resources.l2),
    smem: perSlot((t) => t.resources.smem)
  }
  const counts = spec.classes.reduce((sum, c) => addCounts(sum, scaleCounts(c.counts, c.count)), sumCounts([]))

  return {
    name: spec.name,
    ctas,
    ctasPerSm: spec.ctasPerSm,
    waves: ctas / slots,
    counts,
    resourceSeconds,
    components,
    bound: boundResource(resourceSeconds, components),
    seconds: componentKeys.reduce((sum, key) => sum + components[key], 0)
  }
}

function timeClass(c: CtaClass, spec: KernelSpec, device: DeviceRates, activeSlots: number, ctasOnSm: number): ClassTiming {
  const smShare = 1 / (device.sms * ctasOnSm)
  const mmaFraction = (spec.mma === "sync" ? device.syncMmaFraction : 1) * (spec.mmaEfficiency ?? 1)

  const tensor = c.counts.tensorFlops / (device.tensorFlopsPerSecond * mmaFraction * smShare)
  const exp = c.counts.expOps / (device.expOpsPerSecond * smShare)
  const vector = c.counts.vectorFlops / (device.vectorFlopsPerSecond * smShare)
  const smem = c.counts.bytes.smem / (device.smemBytesPerSecond * smShare)
  const l2 = c.counts.bytes.l2 / (device.l2BytesPerSecond * smShare)
  const hbmRate = Math.min(device.hbmBytesPerSecond / activeSlots, device.l2BytesPerSecond * smShare)
  const hbm = c.counts.bytes.hbm / hbmRate

  // exp runs on the special-function units and the FP32 work on the FMA pipes,
  // so the two overlap each other; the longer one is the softmax time.
  const softmax = Math.max(exp, vector)
  const compute = Math.max(tensor, softmax) + (1 - spec.softmaxOverlap) * Math.min(tensor, softmax)
  const memory = Math.max(hbm, l2, smem)

  // A CTA's first loads (its query tile, the first key/value tile) and its output
  // are fresh HBM traffic, so they move at the CTA's share of HBM bandwidth.
  const fillDrain = 2 * device.hbmLatencySeconds + (c.prologueBytes + c.epilogueBytes) / hbmRate
  const latency = (1 - spec.latencyHidden) * fillDrain

  return {
    seconds: latency + Math.max(compute, memory),
    parts: {
      tensor,
      softmaxExposed: compute - tensor,
      memoryStall: Math.max(0, memory - compute),
      latency
    },
    resources: { tensor, exp, vector, hbm, l2, smem }
  }
}

/**
 * The resource that limits the time. Compute (matrix products plus the softmax
 * not hidden behind them) and memory overlap, so whichever of the two is longer
 * is the bound: within compute the longer of tensor and softmax work (exp or
 * vector), within memory the busiest level. Latency or launch overhead win when
 * they exceed both.
 */
function boundResource(resources: ResourceSeconds, components: TimeComponents): Resource {
  const compute = components.tensor + components.softmaxExposed
  const memoryLevels: Array<[Resource, number]> = [
    ["hbm", resources.hbm],
    ["l2", resources.l2],
    ["smem", resources.smem]
  ]
  const memory = memoryLevels.reduce((best, entry) => (entry[1] > best[1] ? entry : best))
  const softmax: [Resource, number] = resources.exp >= resources.vector ? ["exp", resources.exp] : ["vector", resources.vector]
  const computeBound: [Resource, number] = [resources.tensor >= softmax[1] ? "tensor" : softmax[0], compute]

  const candidates: Array<[Resource, number]> = [
    memory[1] > compute ? memory : computeBound,
    ["latency", components.latency],
    ["launch", components.launch]
  ]
  return candidates.reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0]
}

/** Add up the kernels of one operation. */
export function combineKernels(kernels: ReadonlyArray<KernelCost>): CostBreakdown {
  const components = Object.fromEntries(
    componentKeys.map((key) => [key, kernels.reduce((sum, k) => sum + k.components[key], 0)])
  ) as unknown as TimeComponents
  const resourceKeys = ["tensor", "exp", "vector", "hbm", "l2", "smem"] as const
  const resourceSeconds = Object.fromEntries(
    resourceKeys.map((key) => [key, kernels.reduce((sum, k) => sum + k.resourceSeconds[key], 0)])
  ) as unknown as ResourceSeconds

  return {
    seconds: kernels.reduce((sum, k) => sum + k.seconds, 0),
    components,
    resourceSeconds,
    counts: sumCounts(kernels.map((k) => k.counts)),
    bound: boundResource(resourceSeconds, components),
    kernels
  }
}
