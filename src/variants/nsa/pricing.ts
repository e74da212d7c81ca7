import type { KernelCost } from "../../cost/breakdown.js"
import { scaleCounts, type WorkCounts } from "../../cost/counts.js"
import type { CtaClass, KernelSpec } from "../../cost/kernel-time.js"
import type { DeviceRates } from "../../hardware/device.js"
import { l2ResidentFraction } from "../dense/cost.js"
import { generations, type KernelGeneration } from "../dense/generations.js"

/** A class of identical CTAs before the whole-kernel HBM traffic is shared out. */
export interface UnpricedClass {
  readonly count: number
  readonly counts: WorkCounts
  readonly prologueBytes: number
  readonly epilogueBytes: number
}

export interface ClassKernelInput {
  readonly name: string
  readonly classes: ReadonlyArray<UnpricedClass>
  /** Whole-kernel HBM traffic from the kernel's L2-reuse model. */
  readonly hbmBytes: number
  readonly ctasPerSm: number
  readonly generation: KernelGeneration
  readonly softmaxOverlap: number
  readonly mmaEfficiency?: number | undefined
}

/**
 * Builds a kernel spec from CTA classes. The kernel's HBM traffic is shared out in
 * proportion to each class's L2 traffic, as the dense kernels do.
 */
export function classKernel(input: ClassKernelInput): KernelSpec {
  const totalL2 = input.classes.reduce((sum, c) => sum + c.count * c.counts.bytes.l2, 0)
  const hbmPerL2Byte = totalL2 > 0 ? input.hbmBytes / totalL2 : 0
  const classes: CtaClass[] = input.classes.map((c) => ({
    count: c.count,
    counts: { ...c.counts, bytes: { ...c.counts.bytes, hbm: c.counts.bytes.l2 * hbmPerL2Byte } },
    prologueBytes: c.prologueBytes,
    epilogueBytes: c.epilogueBytes
  }))
  return {
    name: input.name,
    classes,
    ctasPerSm: input.ctasPerSm,
    mma: generations[input.generation].mma,
    softmaxOverlap: input.softmaxOverlap,
    latencyHidden: latencyHidden(input.generation, input.ctasPerSm),
    mmaEfficiency: input.mmaEfficiency
  }
}

/**
 * Share of a CTA's fill and drain that other work hides, as for the dense
 * kernels: 1 − 1/ctasPerSm by other resident CTAs, and for warpgroup-MMA
 * kernels half of the rest by the producer warp's prefetch.
 */
export function latencyHidden(generation: KernelGeneration, ctasPerSm: number): number {
  const byResidents = 1 - 1 / ctasPerSm
  return generation === "fa3" ? byResidents + (1 - byResidents) * 0.5 : byResidents
}

/** Whether bytes held by the CTAs running at once stay in the part of L2 that K/V may occupy. */
export const fitsInL2 = (bytes: number, device: DeviceRates): boolean => bytes <= l2ResidentFraction * device.l2Capacity

/**
 * Returns the K/V bytes read from HBM by a kernel whose `itemsPerHead` CTAs
 * each read the same `bytesPerHead` of one KV head, by the dense kernels'
 * rule. They are read once when the K/V of every head in flight fits in L2,
 * else once per wave of such CTAs, but at most once per reader.
 */
export function sharedKvHbmBytes(input: { bytesPerHead: number; heads: number; itemsPerHead: number; readers: number; ctasPerSm: number }, device: DeviceRates): number {
  const slots = device.sms * input.ctasPerSm
  const headsInFlight = Math.min(input.heads, Math.max(1, slots / input.itemsPerHead))
  const passes = fitsInL2(headsInFlight * input.bytesPerHead, device) ? 1 : Math.min(input.readers, Math.max(1, Math.ceil(input.itemsPerHead / slots)))
  return input.heads * input.bytesPerHead * passes
}

/** Scales a kernel cost by `factor` (amortizing a kernel that runs once every 1/factor steps); the parts still add up. */
export function scaleKernelCost(cost: KernelCost, factor: number, name = cost.name): KernelCost {
  const scale = <T extends Record<string, number>>(record: T): T =>
    Object.fromEntries(Object.entries(record).map(([key, value]) => [key, value * factor])) as T
  return {
    ...cost,
    name,
    counts: scaleCounts(cost.counts, factor),
    resourceSeconds: scale(cost.resourceSeconds as unknown as Record<string, number>) as unknown as KernelCost["resourceSeconds"],
    components: scale(cost.components as unknown as Record<string, number>) as unknown as KernelCost["components"],
    seconds: cost.seconds * factor
  }
}

export const renameKernel = (cost: KernelCost, name: string): KernelCost => ({ ...cost, name })

/** Builds a kernel whose CTAs share `total` work evenly: auxiliary kernels (gates, top-k, conversions). */
export function evenKernel(name: string, total: WorkCounts, ctas: number, ctasPerSm: number, device: DeviceRates): KernelSpec {
  const count = Math.max(1, Math.round(ctas))
  return {
    name,
    ctasPerSm,
    mma: device.asyncMma ? "async" : "sync",
    softmaxOverlap: 0,
    latencyHidden: latencyHidden("fa2", ctasPerSm),
    classes: [{ count, counts: scaleCounts(total, 1 / count), prologueBytes: 0, epilogueBytes: 0 }]
  }
}
