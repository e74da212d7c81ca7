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

/** Default host profile path, relative to the working directory: `attnsim calibrate` writes it and `attnsim validate --hardware host` reads it. */
export const defaultHostProfilePath = "calibration/host.json"

const source = "calibration"

type RawFigure = { value: string | number; source: string; confidence: "M" | "U"; note?: string }

const figure = (value: string | number, note?: string): RawFigure => (note === undefined ? { value, source, confidence: "M" } : { value, source, confidence: "M", note })

/** A GPU field the host has no measurable counterpart for: a stated placeholder, marked unverified. */
const convention = (value: string | number, note: string): RawFigure => ({ value, source: "convention", confidence: "U", note })

const repeatsNote = (m: Measured): string => `median of ${m.repeats} repeats, spread ${m.spreadPct.toFixed(1)} %`

/**
 * Build the host profile a calibration run describes, in the profile file
 * format. Every figure is measured in this run (confidence M, source
 * "calibration"). The exceptions are marked U: GPU fields a CPU worker has no
 * counterpart for (CTAs and threads per SM, registers), which get
 * placeholders, and the clock where the OS reports none (a nominal 1 GHz). The GPU
 * fields map onto the host as: SM = worker thread, shared memory = L1 data
 * cache, L2 = the L2 caches the workers use together, LLC = the last-level
 * cache, HBM = main memory. Bandwidths of private levels are per-core copies ×
 * workers; shared levels are one thread's copy rate (a lower bound for all cores).
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
      convention: "attnsim convention for GPU fields a CPU worker has no counterpart for; not measured",
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
      maxCtasPerSm: convention(1, "the pool runs one task per worker at a time"),
      maxThreadsPerSm: convention(1, "a worker is one thread"),
      maxRegistersPerThread: convention(1, "gpu.js kernels have no register budget to plan with")
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
      bandwidth: figure(`${run.transferCopiedBytesPerSecond.value} B/s`, `16 MiB to a worker, copied by structured clone; ${repeatsNote(run.transferCopiedBytesPerSecond)}`)
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
    dispatchPerTask: round(run.dispatchPerTaskSeconds.spreadPct),
    transferCopied: round(run.transferCopiedBytesPerSecond.spreadPct),
    fill: round(run.kernels.fill.spreadPct),
    referenceTask: round(run.referenceTaskSeconds.spreadPct),
    "kernels.copy": round(run.kernels.copy.spreadPct),
    "kernels.exp": round(run.kernels.exp.spreadPct),
    "kernels.fma": round(run.kernels.fma.spreadPct)
  }
  const stepModels: Record<string, unknown> = {}
  for (const model of run.stepModels) {
    const terms: Record<string, RawFigure> = {}
    for (const [term, value] of Object.entries(model.terms)) {
      terms[term] = figure(`${value.value} s`, `seconds per ${term}; spread ${value.spreadPct.toFixed(1)} % over ${value.repeats} repeats fitted on their own (terms trade off; see predictionSpreadPct)`)
    }
    spreads[`stepModels.${model.model}`] = round(model.predictionSpreadPct)
    stepModels[model.model] = {
      terms,
      form: termModels[model.model]?.form ?? model.form,
      fittedTo: model.fittedTo,
      residualMedianPct: round(model.residualMedianPct),
      residualMaxPct: round(model.residualMaxPct),
      predictionSpreadPct: round(model.predictionSpreadPct),
      measurements: model.shapes.map((shape) => ({ ...shape, spreadPct: round(shape.spreadPct) }))
    }
  }
  return {
    dispatch: figure(
      `${run.dispatchSeconds.value} s`,
      `workers' time outside their batches per batch, from batches of short tasks sent at once to every worker, less the per-task part (an empty round trip alone takes ${(run.roundTripSeconds.value * 1e6).toFixed(0)} us); ${repeatsNote(run.dispatchSeconds)}`
    ),
    dispatchPerTask: figure(
      `${run.dispatchPerTaskSeconds.value} s`,
      `what each task adds to a batch's dispatch cost: batches of eight short tasks against batches of one; ${repeatsNote(run.dispatchPerTaskSeconds)}`
    ),
    transferCopied: figure(`${run.transferCopiedBytesPerSecond.value} B/s`, `16 MiB to a worker copied by structured clone, beyond an empty round trip; ${repeatsNote(run.transferCopiedBytesPerSecond)}`),
    fill: figure(`${run.kernels.fill.value} op/s`, `tile data elements generated per second by one worker, all workers at once; ${repeatsNote(run.kernels.fill)}`),
    referenceTask: figure(
      `${run.referenceTaskSeconds.value} s`,
      `three 8-step 64×64 attention tasks (head dim 128) per worker, all workers at once, per task; ${repeatsNote(run.referenceTaskSeconds)}`
    ),
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

/** Read the clock the OS reports, or use a nominal 1 GHz (marked unverified) where it reports none. */
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
  // The pool's workers run on separate cores, so they use one L2 instance each (or share one where cores share it).
  const l2Instances = Math.max(1, Math.min(Math.round(cores / l2.cache!.sharedBy), Math.ceil(workers / l2.cache!.sharedBy)))
  const note = (m: typeof main, scope: string) =>
    `${scope}; copy of a ${formatSize(m.measurement.workingSetBytes)} working set, median of ${m.measurement.bandwidths.length} repeats, spread ${spread(m.measurement.bandwidths).toFixed(1)} %`
  const latencyNote = (m: typeof main) => `pointer chase through a ${formatSize(m.measurement.workingSetBytes)} random cycle, median of ${m.measurement.latencies.length} repeats`
  const useLlc =
    llc && llc.cache!.bytes > l2.cache!.bytes * l2Instances && bw(llc) > bw(main) && bw(llc) < bw(l2) * workers && lat(llc) > lat(l2) && lat(llc) < lat(main)

  return {
    registers: { capacityPerSm: convention("1 KiB", "a CPU core has no register file a tiling could be planned against; a placeholder below the L1 size") },
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
 * without a calibration, or one that describes another machine raises an
 * InputError that says what to do. `allowOtherMachine` turns the last into a
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
  if (!mismatch) return { path, profile, machineDifferences: [] }
  return { path, profile, machineDifferences: differences.length > 0 ? differences : ["fingerprint differs"] }
}
