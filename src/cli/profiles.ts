import Table from "cli-table3"
import { deviceRates } from "../hardware/device.js"
import { loadProfile, shippedProfileIds } from "../hardware/load.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import { plainStyle } from "./estimate.js"
import { formatBandwidth, formatBytes, formatFlopRate, formatHertz } from "../units/index.js"

/** List (and validate) the shipped profiles, or validate the given files. */
export function runProfiles(files: ReadonlyArray<string>, json: boolean): void {
  const references = files.length > 0 ? files : shippedProfileIds()
  const profiles: HardwareProfile[] = []
  const errors: string[] = []
  for (const reference of references) {
    try {
      profiles.push(loadProfile(reference))
    } catch (error) {
      if (!(error instanceof Error)) throw error
      errors.push(error.message)
    }
  }
  // Every file is checked, so one run lists every broken one.
  if (errors.length === 1) throw new Error(errors[0])
  if (errors.length > 1) throw new Error(`${errors.length} of ${references.length} profiles are invalid:\n${errors.join("\n")}`)
  if (json) {
    process.stdout.write(JSON.stringify(profiles.map(summary), null, 2) + "\n")
    return
  }

  const table = new Table({ head: ["id", "name", "SMs", "clock peak/sustained", "bf16 dense", "HBM", "HBM bandwidth", "L2", "smem/SM"], style: plainStyle })
  for (const profile of profiles) {
    const s = summary(profile)
    table.push([s.id, s.name, s.sms, s.clock, s.tensor, s.hbm, s.hbmBandwidth, s.l2, s.smemPerSm])
  }
  process.stdout.write(table.toString() + "\n")
  process.stdout.write(`${profiles.length} profile${profiles.length === 1 ? "" : "s"} valid.\n`)
}

function summary(profile: HardwareProfile) {
  const { compute, memory } = profile
  const dtype = compute.tensor.bf16 ? "bf16" : compute.tensor.fp16 ? "fp16" : "fp32"
  const rates = deviceRates(profile, dtype)
  return {
    id: profile.id,
    name: profile.name,
    sms: compute.sms.value,
    clock: `${formatHertz(compute.clock.peak.value)} / ${formatHertz(compute.clock.sustained.value)}`,
    tensor: formatFlopRate(compute.tensor[dtype]!.value),
    hbm: formatBytes(memory.hbm.capacity.value),
    hbmBandwidth: formatBandwidth(memory.hbm.bandwidth.value),
    l2: formatBytes(memory.l2.capacity.value),
    smemPerSm: formatBytes(memory.smem.capacityPerSm.value),
    achievableTensorFlopsPerSecond: rates.tensorFlopsPerSecond,
    achievableHbmBytesPerSecond: rates.hbmBytesPerSecond
  }
}
