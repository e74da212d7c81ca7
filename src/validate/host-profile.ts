import { existsSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { resolve } from "node:path"
import { InputError } from "../errors.js"
import { decodeProfile, readRawProfile } from "../hardware/load.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import type { CalibrationRun, Measured } from "./calibrate.js"
import { termModels } from "./task-terms.js"
import { currentMachine, fingerprint, identityDifferences } from "./machine.js"
import { median, spreadPct as spread } from "./stats.js"

/** Where `attnsim calibrate` writes and `attnsim validate --hardware host` reads, relative to the working directory. */
export const defaultHostProfilePath = "calibration/host.json"

const source = "calibration"

type RawFigure = { value: string | number; source: string; confidence: "M" | "U"; note?: string }

const figure = (value: string | number, note?: string): RawFigure => (note === undefined ? { value, source, confidence: "M" } : { value, source, confidence: "M", note })

const repeatsNote = (m: Measured): string => `median of ${m.repeats} repeats, spread ${m.spreadPct.toFixed(1)} %`

/**
 * The host profile a calibration run describes, in the profile file format:
 * every figure measured in this run (confidence M, source "calibration"), except
 * the clock where the OS reports none (a nominal 1 GHz, marked U). The GPU
 * fields map onto the host as: SM = worker thread, shared memory = L1 data
 * cache, L2 = the per-core L2 caches together, LLC = the last-level cache,
 * HBM = main memory. Bandwidths of private levels are per-core copies × workers;
 * shared levels are one thread's copy rate (a lower bound for all cores).
 */
export function hostProfileFile(run: CalibrationRun): Record<string, unknown> {
  const attention = run.stepModels.find((m) => m.model === "attention-forward")
  const perFlop = attention?.terms.flop?.value
  if (!perFlop || perFlop <= 0) throw new RangeError("the calibration has no attention-forward FLOP rate; it cannot describe the host's tensor throughput")
  const workers = run.workers
  const clock = hostClock()
  const cycles = (seconds: number): string => `${Math.max(1, Math.round(seconds * clock.hz))} cycles`

  const tensorRate = `${workers / perFlop} FLOP/s`
  const tensorNote = `attention tile kernels' matrix-product rate, 1 / flop term of the attention-forward model × ${workers} workers; bf16 and fp16 data runs through the same FP32 kernels`
  const memory = memoryLevels(run, clock.hz, cycles)

  return {
    id: "host",
    name: `host: ${run.identity.cpuModel}, ${workers} gpu.js ${run.backend} workers`,
    vendor: "measured by attnsim calibrate",
    architecture: "host",
    features: { asyncMma: false },
    sources: {
      calibration:
        `attnsim calibrate, ${run.measuredAt}: gpu.js ${run.identity.gpujsVersion} ${run.backend} backend, ${workers} workers, ` +
        `Node ${run.identity.nodeVersion}, ${run.identity.cpuModel}, ${run.identity.logicalCores} logical cores, ${run.identity.totalMemory}`,
      ...(clock.measured ? {} : { nominal: "attnsim convention: the OS reports no clock speed, so a nominal 1 GHz clock turns nanoseconds into cycles" })
    },
    compute: {
      sms: figure(workers, "one worker thread per SM: a worker runs one task at a time"),
      clock: {
        peak: clock.figure,
        sustained: clock.figure
      },
      tensor: { fp32: figure(tensorRate, tensorNote), bf16: figure(tensorRate, tensorNote), fp16: figure(tensorRate, tensorNote) },
      consistencyException: "measured rates of gpu.js kernels; no per-clock tensor rate exists on a CPU",
      vectorFp32: figure(`${run.kernels.fma.value * workers} FLOP/s`, `gpu.js multiply-add kernel, all workers at once; ${repeatsNote(run.kernels.fma)}`),
      exp: figure(`${run.kernels.exp.value * workers} op/s`, `gpu.js exp kernel, all workers at once; ${repeatsNote(run.kernels.exp)}`),
      maxCtasPerSm: figure(1, "the pool runs one task per worker"),
      maxThreadsPerSm: figure(1, "a worker is one thread"),
      maxRegistersPerThread: figure(1, "not applicable to gpu.js kernels; recorded as 1")
    },
    memory,
    achievable: Object.fromEntries(
      ["tensor", "vector", "exp", "smem", "l2", "hbm"].map((key) => [key, figure(1, "the rates in this profile are achieved rates, so nothing is discounted")])
    ),
    launchOverhead: figure(
      `${(attention.terms.step?.value ?? 0) / 5} s`,
      "one gpu.js kernel call: the attention-forward step term divided by its five kernel calls"
    ),
    interconnect: {
      kind: "worker message channel (structured clone)",
      bandwidth: figure(`${run.transferCopiedBytesPerSecond.value} B/s`, `16 MiB each way, copied; ${repeatsNote(run.transferCopiedBytesPerSecond)}`)
    },
    host: {
      cpuModel: run.identity.cpuModel,
      logicalCores: Number(run.identity.logicalCores),
      nodeVersion: run.identity.nodeVersion,
      platform: `${run.identity.platform}-${run.identity.arch}`,
      backend: run.backend,
      workers,
      measuredAt: run.measuredAt,
      fingerprint: run.fingerprint,
      identity: { ...run.identity },
      calibration: calibrationBlock(run)
    }
  }
}

function calibrationBlock(run: CalibrationRun): Record<string, unknown> {
  const spreads: Record<string, number> = {
    dispatch: round(run.dispatchSeconds.spreadPct),
    transferMoved: round(run.transferMovedBytesPerSecond.spreadPct),
    transferCopied: round(run.transferCopiedBytesPerSecond.spreadPct),
    fill: round(run.kernels.fill.spreadPct),
    "kernels.copy": round(run.kernels.copy.spreadPct),
    "kernels.exp": round(run.kernels.exp.spreadPct),
    "kernels.fma": round(run.kernels.fma.spreadPct)
  }
  const stepModels: Record<string, unknown> = {}
  for (const model of run.stepModels) {
    const terms: Record<string, RawFigure> = {}
    for (const [term, value] of Object.entries(model.terms)) {
      terms[term] = figure(`${value.value} s`, `seconds per ${term}; ${repeatsNote(value)} (each repeat fitted on its own)`)
      spreads[`stepModels.${model.model}.${term}`] = round(value.spreadPct)
    }
    stepModels[model.model] = {
      terms,
      form: termModels[model.model]?.form ?? model.form,
      fittedTo: model.fittedTo,
      residualMedianPct: round(model.residualMedianPct),
      residualMaxPct: round(model.residualMaxPct)
    }
  }
  return {
    dispatch: figure(`${run.dispatchSeconds.value} s`, `median round trip of an empty task, one at a time; ${repeatsNote(run.dispatchSeconds)}`),
    transferMoved: figure(`${run.transferMovedBytesPerSecond.value} B/s`, `16 MiB each way moved with transfer lists, beyond an empty round trip; ${repeatsNote(run.transferMovedBytesPerSecond)}`),
    transferCopied: figure(`${run.transferCopiedBytesPerSecond.value} B/s`, `16 MiB each way copied by structured clone; ${repeatsNote(run.transferCopiedBytesPerSecond)}`),
    fill: figure(`${run.kernels.fill.value} op/s`, `tile data elements generated per second by one worker, all workers at once; ${repeatsNote(run.kernels.fill)}`),
    stepModels,
    spreadPct: spreads,
    seconds: round(run.seconds)
  }
}

const round = (value: number): number => Math.round(value * 100) / 100

interface HostClock {
  readonly hz: number
  readonly measured: boolean
  readonly figure: RawFigure
}

/** The clock the OS reports, or a nominal 1 GHz (marked unverified) where it reports none. */
function hostClock(): HostClock {
  const mhz = currentMachineSpeedMhz()
  if (mhz > 0) return { hz: mhz * 1e6, measured: true, figure: figure(`${mhz} MHz`, "reported by the OS during calibration") }
  return {
    hz: 1e9,
    measured: false,
    figure: { value: "1 GHz", source: "nominal", confidence: "U", note: "the OS reports no clock; latencies in this profile are nanoseconds written as cycles of this nominal clock" }
  }
}

/** The clock os.cpus() reports; 0 inside many virtual machines. */
const currentMachineSpeedMhz = (): number => cpus()[0]?.speed ?? 0

/**
 * The memory levels: L1 as shared memory, L2 (all per-core instances), the
 * last-level cache, main memory. A level whose measured copy bandwidth or
 * latency does not separate from the next one is left out, since the profile
 * requires each level to be faster than the one below it.
 */
function memoryLevels(run: CalibrationRun, clockHz: number, cycles: (seconds: number) => string): Record<string, unknown> {
  const workers = run.workers
  const cores = Number(run.identity.logicalCores)
  const byLevel = (level: number) => run.memory.find((m) => m.cache?.level === level)
  const l1 = byLevel(1)
  const l2 = byLevel(2)
  const llc = run.memory.filter((m) => m.cache && m.cache.level >= 3).at(-1)
  const main = run.memory.find((m) => m.cache === undefined)!
  if (!l1 || !l2) throw new RangeError("the OS reported no L1 and L2 data caches, which the host profile's shared memory and L2 need")

  const bw = (m: typeof main) => median(m.measurement.bandwidths)
  const lat = (m: typeof main) => median(m.measurement.latencies)
  const l2Instances = Math.max(1, Math.round(cores / l2.cache!.sharedBy))
  const note = (m: typeof main, scope: string) =>
    `${scope}; copy of a ${formatSize(m.measurement.workingSetBytes)} working set, median of ${m.measurement.bandwidths.length} repeats, spread ${spread(m.measurement.bandwidths).toFixed(1)} %`
  const latencyNote = (m: typeof main) => `pointer chase through a ${formatSize(m.measurement.workingSetBytes)} random cycle, median of ${m.measurement.latencies.length} repeats`
  const useLlc = llc && bw(llc) > bw(main) && lat(llc) < lat(main) && bw(llc) < bw(l2) * workers

  return {
    registers: { capacityPerSm: figure("2 KiB", "x86-64 vector register file (32 × 64 B), as the register level of one worker") },
    smem: {
      capacityPerSm: figure(`${l1.cache!.bytes} B`, "L1 data cache per core, read from /sys"),
      capacityPerBlock: figure(`${l1.cache!.bytes} B`, "L1 data cache per core, read from /sys"),
      bytesPerClockPerSm: figure(Math.max(1, Math.round(bw(l1) / clockHz)), note(l1, "one core's L1 copy bandwidth divided by the clock")),
      latency: figure(cycles(lat(l1)), latencyNote(l1))
    },
    l2: {
      capacity: figure(`${l2.cache!.bytes * l2Instances} B`, `${l2Instances} L2 caches of ${formatSize(l2.cache!.bytes)}, read from /sys`),
      bandwidth: figure(`${bw(l2) * workers} B/s`, note(l2, `one core's L2 copy bandwidth × ${workers} workers`)),
      latency: figure(cycles(lat(l2)), latencyNote(l2)),
      transaction: figure(`${run.lineBytes} B`, "cache line, read from /sys")
    },
    ...(useLlc
      ? {
          llc: {
            capacity: figure(`${llc.cache!.bytes} B`, "last-level cache, read from /sys"),
            bandwidth: figure(`${bw(llc)} B/s`, note(llc, "one thread's copy bandwidth (shared level)")),
            latency: figure(cycles(lat(llc)), latencyNote(llc)),
            transaction: figure(`${run.lineBytes} B`, "cache line, read from /sys")
          }
        }
      : {}),
    hbm: {
      kind: "DRAM",
      capacity: figure(`${totalmem()} B`, "main memory the OS reports"),
      bandwidth: figure(`${bw(main)} B/s`, note(main, "one thread's copy bandwidth")),
      latency: figure(cycles(lat(main)), latencyNote(main)),
      transaction: figure(`${run.lineBytes} B`, "cache line, read from /sys")
    }
  }
}

function formatSize(bytes: number): string {
  return bytes >= 2 ** 20 ? `${bytes / 2 ** 20} MiB` : `${bytes / 2 ** 10} KiB`
}

export interface LoadedHostProfile {
  readonly path: string
  readonly profile: HardwareProfile
  /** Identity fields that differ from this machine; empty when the profile describes it. */
  readonly machineDifferences: ReadonlyArray<string>
}

/**
 * Load a host profile for validation. A missing file, a GPU profile, a profile
 * without a calibration, or one that describes another machine is an
 * InputError saying what to do; `allowOtherMachine` turns the last into a
 * reported difference instead.
 */
export function loadHostProfile(reference: string, options: { readonly allowOtherMachine: boolean }): LoadedHostProfile {
  const path = resolve(reference === "host" ? defaultHostProfilePath : reference)
  const origin = reference === "host" ? `--hardware host (${defaultHostProfilePath})` : path
  if (!existsSync(path)) {
    throw new InputError({
      origin,
      issues: [{ path: "", value: undefined, expected: `a host profile at ${path}; run "attnsim calibrate" on this machine first (it writes ${defaultHostProfilePath})` }]
    })
  }
  const profile = decodeProfile(readRawProfile(path), path)
  if (profile.architecture !== "host" || !profile.host?.calibration) {
    throw new InputError({ origin, issues: [{ path: "architecture", value: profile.architecture, expected: 'a host profile written by "attnsim calibrate"' }] })
  }

  const current = currentMachine()
  const recorded = profile.host.identity ?? {}
  const differences = profile.host.fingerprint === fingerprint(current) ? [] : identityDifferences(recorded, current)
  const mismatch = profile.host.fingerprint !== fingerprint(current)
  if (mismatch && !options.allowOtherMachine) {
    const named = differences.length > 0 ? differences.join("; ") : "the recorded identity is missing"
    throw new InputError({
      origin: path,
      issues: [
        {
          path: "host.fingerprint",
          value: profile.host.fingerprint,
          expected:
            `this machine's fingerprint ${fingerprint(current)}: the profile describes another machine (${named}). ` +
            'Run "attnsim calibrate" here, or pass --allow-other-machine to compare with it anyway'
        }
      ]
    })
  }
  return { path, profile, machineDifferences: mismatch ? (differences.length > 0 ? differences : ["fingerprint differs"]) : [] }
}
