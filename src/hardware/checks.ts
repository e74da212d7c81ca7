import { formatBandwidth, formatBytes, formatFlopRate } from "../units/index.js"
import type { HardwareProfile } from "./profile-schema.js"

/** A cross-field rule a decoded profile breaks. */
export interface ProfileIssue {
  readonly path: string
  readonly value: unknown
  readonly expected: string
}

/**
 * Relative tolerance between a datasheet tensor peak and per-SM rate × SMs × clock.
 * Datasheet peaks are rounded to three or four digits, so 2 % absorbs rounding only.
 */
export const tensorConsistencyTolerance = 0.02

/** Check the rules that relate fields to each other. Returns every broken rule. */
export function checkProfile(profile: HardwareProfile): ReadonlyArray<ProfileIssue> {
  return [
    ...checkSources(profile),
    ...checkClocks(profile),
    ...checkTensorConsistency(profile),
    ...checkMemoryOrder(profile),
    ...checkHost(profile)
  ]
}

/** Check that a host profile has its measured machine and calibration, and a GPU profile its board power and no host block. */
function checkHost(profile: HardwareProfile): ProfileIssue[] {
  const issues: ProfileIssue[] = []
  if (profile.architecture === "host") {
    if (!profile.host) issues.push({ path: "host", value: undefined, expected: 'the measured machine (written by "attnsim calibrate") for architecture "host"' })
    else if (!profile.host.calibration) issues.push({ path: "host.calibration", value: undefined, expected: "the pool's measured costs, written by \"attnsim calibrate\"" })
  } else {
    if (profile.host) issues.push({ path: "host", value: "a host block", expected: 'no host block: only architecture "host" describes a measured machine' })
    if (!profile.power) issues.push({ path: "power", value: undefined, expected: "the board power, such as \"700 W\"" })
  }
  return issues
}

function checkSources(profile: HardwareProfile): ProfileIssue[] {
  const issues: ProfileIssue[] = []
  visitFigures(profile, "", (path, figure) => {
    if (!(figure.source in profile.sources)) {
      issues.push({
        path: `${path}.source`,
        value: figure.source,
        expected: `a key of "sources" (known: ${Object.keys(profile.sources).join(", ") || "none"})`
      })
    }
    if (figure.confidence === "F" && !figure.note) {
      issues.push({ path: `${path}.note`, value: undefined, expected: "a note naming the data a fitted figure was fitted to" })
    }
  })
  return issues
}

interface AnyFigure {
  readonly value: unknown
  readonly source: string
  readonly confidence: string
  readonly note?: string | undefined
}

function visitFigures(node: unknown, path: string, visit: (path: string, figure: AnyFigure) => void): void {
  if (node === null || typeof node !== "object") return
  const record = node as Record<string, unknown>
  if ("value" in record && "source" in record && "confidence" in record) {
    visit(path, record as unknown as AnyFigure)
    return
  }
  for (const [key, child] of Object.entries(record)) {
    if (key === "sources") continue
    visitFigures(child, path ? `${path}.${key}` : key, visit)
  }
}

function checkClocks(profile: HardwareProfile): ProfileIssue[] {
  const clock = profile.compute.clock
  const issues: ProfileIssue[] = []
  if (clock.max && clock.peak.value > clock.max.value) {
    issues.push({
      path: "compute.clock.peak.value",
      value: clock.peak.value,
      expected: `at most compute.clock.max (${clock.max.value / 1e6} MHz)`
    })
  }
  const ceiling = clock.max?.value ?? clock.peak.value
  if (clock.sustained.value > ceiling) {
    issues.push({
      path: "compute.clock.sustained.value",
      value: clock.sustained.value,
      expected: `at most the maximum clock (${ceiling / 1e6} MHz)`
    })
  }
  return issues
}

function checkTensorConsistency(profile: HardwareProfile): ProfileIssue[] {
  const { tensor, tensorFlopsPerClockPerSm, consistencyException, sms, clock } = profile.compute
  const issues: ProfileIssue[] = []
  const dtypes = (["bf16", "fp16", "fp8", "fp32"] as const).filter((dtype) => tensor[dtype] !== undefined)
  if (dtypes.length === 0) {
    issues.push({ path: "compute.tensor", value: tensor, expected: "a tensor rate for at least one of bf16, fp16, fp8, fp32" })
  }
  if (consistencyException !== undefined) return issues

  for (const dtype of dtypes) {
    const peak = tensor[dtype]!.value
    const perClock = tensorFlopsPerClockPerSm?.[dtype]?.value
    if (perClock === undefined) {
      issues.push({
        path: `compute.tensorFlopsPerClockPerSm.${dtype}`,
        value: undefined,
        expected: `the per-SM ${dtype} rate in FLOP per clock, or compute.consistencyException with the reason it cannot be given`
      })
      continue
    }
    const derived = perClock * sms.value * clock.peak.value
    if (Math.abs(derived - peak) / peak > tensorConsistencyTolerance) {
      issues.push({
        path: `compute.tensor.${dtype}.value`,
        value: formatFlopRate(peak),
        expected:
          `within ${tensorConsistencyTolerance * 100} % of ${perClock} FLOP/clock/SM × ${sms.value} SMs × ` +
          `${clock.peak.value / 1e6} MHz = ${formatFlopRate(derived)}`
      })
    }
  }
  return issues
}

function checkMemoryOrder(profile: HardwareProfile): ProfileIssue[] {
  const { memory, compute } = profile
  const issues: ProfileIssue[] = []

  if (memory.smem.capacityPerBlock.value > memory.smem.capacityPerSm.value) {
    issues.push({
      path: "memory.smem.capacityPerBlock.value",
      value: formatBytes(memory.smem.capacityPerBlock.value),
      expected: `at most memory.smem.capacityPerSm (${formatBytes(memory.smem.capacityPerSm.value)})`
    })
  }

  // Levels data streams through, fastest first. Registers are left out: they hold
  // accumulators, not streamed data, and on NVIDIA parts outsize shared memory.
  const smemTotal = memory.smem.capacityPerSm.value * compute.sms.value
  const smemBandwidth = memory.smem.bytesPerClockPerSm.value * compute.sms.value * compute.clock.peak.value
  const levels = [
    { path: "memory.smem", capacity: smemTotal, bandwidth: smemBandwidth, latency: memory.smem.latency.value, capacityNote: " (per SM × SMs)" },
    { path: "memory.l2", capacity: memory.l2.capacity.value, bandwidth: memory.l2.bandwidth.value, latency: memory.l2.latency.value, capacityNote: "" },
    ...(memory.llc
      ? [{ path: "memory.llc", capacity: memory.llc.capacity.value, bandwidth: memory.llc.bandwidth.value, latency: memory.llc.latency.value, capacityNote: "" }]
      : []),
    { path: "memory.hbm", capacity: memory.hbm.capacity.value, bandwidth: memory.hbm.bandwidth.value, latency: memory.hbm.latency.value, capacityNote: "" }
  ]

  for (let index = 1; index < levels.length; index++) {
    const upper = levels[index - 1]!
    const lower = levels[index]!
    if (lower.capacity <= upper.capacity) {
      issues.push({
        path: `${lower.path}.capacity.value`,
        value: formatBytes(lower.capacity),
        expected: `larger than ${upper.path}${upper.capacityNote} (${formatBytes(upper.capacity)})`
      })
    }
    if (lower.bandwidth >= upper.bandwidth) {
      issues.push({
        path: `${lower.path}.bandwidth.value`,
        value: formatBandwidth(lower.bandwidth),
        expected: `below ${upper.path} bandwidth (${formatBandwidth(upper.bandwidth)})`
      })
    }
    if (lower.latency <= upper.latency) {
      issues.push({
        path: `${lower.path}.latency.value`,
        value: `${lower.latency} cycles`,
        expected: `above ${upper.path} latency (${upper.latency} cycles)`
      })
    }
  }
  return issues
}
