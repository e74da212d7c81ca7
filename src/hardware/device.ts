import { InputError } from "../errors.js"
import { elementBytes, type Dtype, type HardwareProfile } from "./profile-schema.js"

/**
 * The rates the cost model prices with, for one profile and one dtype, in SI
 * units. "Achievable" rates are peak × achievable fraction × sustained/peak clock
 * for SM-clocked resources; HBM and L2 are not scaled by the SM clock.
 */
export interface DeviceRates {
  readonly profileId: string
  readonly dtype: Dtype
  readonly elementBytes: number
  readonly sms: number
  readonly clockHz: number
  /** sustained / peak clock: the factor applied to every SM-clocked peak. */
  readonly clockFactor: number
  readonly asyncMma: boolean
  readonly tensorFlopsPerSecond: number
  /** Fraction of tensorFlopsPerSecond that warp-synchronous MMA reaches. */
  readonly syncMmaFraction: number
  readonly vectorFlopsPerSecond: number
  readonly expOpsPerSecond: number
  readonly smemBytesPerSecond: number
  readonly l2BytesPerSecond: number
  readonly hbmBytesPerSecond: number
  readonly smemPerSm: number
  readonly smemPerBlock: number
  readonly registersPerSm: number
  readonly maxCtasPerSm: number
  readonly maxThreadsPerSm: number
  readonly maxRegistersPerThread: number
  readonly l2Capacity: number
  readonly hbmCapacity: number
  readonly l2TransactionBytes: number
  readonly hbmTransactionBytes: number
  readonly smemLatencySeconds: number
  readonly l2LatencySeconds: number
  readonly hbmLatencySeconds: number
  readonly launchOverheadSeconds: number
}

/** Derive the priced rates of a profile for a dtype; a dtype the device lacks is an input error. */
export function deviceRates(profile: HardwareProfile, dtype: Dtype): DeviceRates {
  const { compute, memory, achievable } = profile
  const tensorPeak = compute.tensor[dtype]?.value
  if (tensorPeak === undefined) {
    const offered = (Object.keys(compute.tensor) as Dtype[]).filter((key) => compute.tensor[key] !== undefined)
    throw new InputError({
      origin: `hardware profile ${profile.id}`,
      issues: [{ path: `compute.tensor.${dtype}`, value: dtype, expected: `a dtype this device has tensor throughput for: ${offered.join(", ")}` }]
    })
  }

  const clockHz = compute.clock.sustained.value
  const clockFactor = clockHz / compute.clock.peak.value
  const smemPeak = memory.smem.bytesPerClockPerSm.value * compute.sms.value * compute.clock.peak.value

  return {
    profileId: profile.id,
    dtype,
    elementBytes: elementBytes[dtype],
    sms: compute.sms.value,
    clockHz,
    clockFactor,
    asyncMma: profile.features.asyncMma,
    tensorFlopsPerSecond: tensorPeak * achievable.tensor.value * clockFactor,
    syncMmaFraction: compute.syncMmaFraction?.value ?? 1,
    vectorFlopsPerSecond: compute.vectorFp32.value * achievable.vector.value * clockFactor,
    expOpsPerSecond: compute.exp.value * achievable.exp.value * clockFactor,
    smemBytesPerSecond: smemPeak * achievable.smem.value * clockFactor,
    l2BytesPerSecond: memory.l2.bandwidth.value * achievable.l2.value,
    hbmBytesPerSecond: memory.hbm.bandwidth.value * achievable.hbm.value,
    smemPerSm: memory.smem.capacityPerSm.value,
    smemPerBlock: memory.smem.capacityPerBlock.value,
    registersPerSm: memory.registers.capacityPerSm.value,
    maxCtasPerSm: compute.maxCtasPerSm.value,
    maxThreadsPerSm: compute.maxThreadsPerSm.value,
    maxRegistersPerThread: compute.maxRegistersPerThread.value,
    // A memory-side last-level cache (AMD Infinity Cache) adds to the capacity
    // that can hold reused K/V; its bandwidth is not priced separately.
    l2Capacity: memory.l2.capacity.value + (memory.llc?.capacity.value ?? 0),
    hbmCapacity: memory.hbm.capacity.value,
    l2TransactionBytes: memory.l2.transaction.value,
    hbmTransactionBytes: memory.hbm.transaction.value,
    smemLatencySeconds: memory.smem.latency.value / clockHz,
    l2LatencySeconds: memory.l2.latency.value / clockHz,
    hbmLatencySeconds: memory.hbm.latency.value / clockHz,
    launchOverheadSeconds: profile.launchOverhead.value
  }
}
