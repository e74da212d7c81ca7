import Table from "cli-table3"
import { Effect } from "effect"
import { existsSync } from "node:fs"
import { availableParallelism } from "node:os"
import { basename, dirname, resolve } from "node:path"
import { tilePoolLayer } from "../exec/pool.js"
import { decodeProfile, readRawProfile } from "../hardware/load.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import { checkOutputDirectory, writeFilesAtomically } from "../report/write.js"
import { formatBandwidth, formatSeconds } from "../units/index.js"
import { calibrate, type CalibrationRun } from "../validate/calibrate.js"
import { compareCalibrations, type CalibrationComparison } from "../validate/compare-calibrations.js"
import { defaultHostProfilePath, hostProfileFile } from "../validate/host-profile.js"
import { plainStyle } from "./estimate.js"
import { parseChoice, parseCount, parseOptionalCount } from "./flags.js"

export interface CalibrateArgs {
  readonly out: string
  readonly backend: string
  readonly workers?: unknown
  readonly repeats: unknown
  readonly json: boolean
}

/** Measure this machine, write its host profile, and compare with the profile it replaces. */
export async function runCalibrate(args: CalibrateArgs, runEffect: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>): Promise<void> {
  const backend = parseChoice("backend", args.backend, ["webasm", "cpu", "gl"] as const)
  const workers = parseOptionalCount("workers", args.workers, "worker threads") ?? availableParallelism()
  const repeats = parseCount("repeats", args.repeats, "repeats of every measurement")
  const path = resolve(args.out)
  checkOutputDirectory(dirname(path), "--out", [basename(path)])
  const previous = readPrevious(path)

  const run = await runEffect(calibrate({ backend, repeats }).pipe(Effect.provide(tilePoolLayer({ workers, backend }))))
  const raw = hostProfileFile(run)
  // Decoding checks the written profile as every profile is checked when loaded.
  const profile = checkMeasuredProfile(raw, path)
  writeFilesAtomically(dirname(path), [{ name: basename(path), content: JSON.stringify(raw, null, 2) + "\n" }])

  const comparison = previous && previous.host?.fingerprint === run.fingerprint ? compareCalibrations(previous, profile) : undefined
  if (args.json) {
    process.stdout.write(JSON.stringify({ profile: path, run, comparison }, null, 2) + "\n")
    return
  }
  process.stdout.write(renderCalibration(run, path, comparison))
}

function readPrevious(path: string): HardwareProfile | undefined {
  if (!existsSync(path)) return undefined
  try {
    return decodeProfile(readRawProfile(path), path)
  } catch {
    // An unreadable earlier file is replaced without comparison.
    return undefined
  }
}

function renderCalibration(run: CalibrationRun, path: string, comparison: CalibrationComparison | undefined): string {
  const lines = [
    `calibrated ${run.identity.cpuModel}, ${run.identity.logicalCores} logical cores, Node ${run.identity.nodeVersion}, gpu.js ${run.identity.gpujsVersion} ${run.backend}, ${run.workers} workers, ${run.repeats} repeats in ${run.seconds.toFixed(1)} s`,
    `fingerprint ${run.fingerprint}; other processes used at most ${run.maxOtherCores === undefined ? "n/a" : run.maxOtherCores.toFixed(2)} cores during a measurement`,
    ""
  ]
  const models = new Table({ head: ["task model", "term", "seconds per unit", "fit residual (median / max)", "prediction spread"], style: plainStyle })
  for (const model of run.stepModels) {
    Object.entries(model.terms).forEach(([term, value], index) => {
      const first = index === 0
      models.push([first ? model.model : "", term, value.value.toExponential(3), first ? `${model.residualMedianPct.toFixed(1)} % / ${model.residualMaxPct.toFixed(1)} %` : "", first ? `${model.predictionSpreadPct.toFixed(1)} %` : ""])
    })
  }

  const pool = new Table({ head: ["pool and kernel figure", "value", "spread"], style: plainStyle })
  pool.push(["dispatch per batch (all workers busy)", formatSeconds(run.dispatchSeconds.value), `${run.dispatchSeconds.spreadPct.toFixed(1)} %`])
  pool.push(["empty round trip", formatSeconds(run.roundTripSeconds.value), `${run.roundTripSeconds.spreadPct.toFixed(1)} %`])
  pool.push(["dispatch per task in a batch", formatSeconds(run.dispatchPerTaskSeconds.value), `${run.dispatchPerTaskSeconds.spreadPct.toFixed(1)} %`])
  pool.push(["transfer, copied", formatBandwidth(run.transferCopiedBytesPerSecond.value), `${run.transferCopiedBytesPerSecond.spreadPct.toFixed(1)} %`])
  pool.push(["tile copy (gpu.js argument in + out)", formatBandwidth(run.kernels.copy.value), `${run.kernels.copy.spreadPct.toFixed(1)} %`])
  pool.push(["exp per worker", `${(run.kernels.exp.value / 1e6).toFixed(1)} Mop/s`, `${run.kernels.exp.spreadPct.toFixed(1)} %`])
  pool.push(["multiply-add per worker", `${(run.kernels.fma.value / 1e9).toFixed(2)} GFLOP/s`, `${run.kernels.fma.spreadPct.toFixed(1)} %`])
  pool.push(["tile data generated per worker", `${(run.kernels.fill.value / 1e6).toFixed(1)} M elements/s`, `${run.kernels.fill.spreadPct.toFixed(1)} %`])
  for (const level of run.memory) {
    const name = level.cache ? `L${level.cache.level}` : "main memory"
    const bandwidths = level.measurement.bandwidths
    pool.push([`${name} copy, ${(level.measurement.workingSetBytes / 1024).toFixed(0)} KiB`, formatBandwidth(median(bandwidths)), `latency ${(median(level.measurement.latencies) * 1e9).toFixed(1)} ns`])
  }

  lines.push(models.toString(), "", pool.toString(), "")
  if (comparison) {
    const agree = comparison.figures.filter((c) => c.agree).length
    lines.push(`against the previous calibration of this machine: ${agree} of ${comparison.figures.length} figures agree within their spreads`)
    for (const c of comparison.figures.filter((c) => !c.agree)) lines.push(`  ${c.figure}: differs by ${c.differencePct.toFixed(1)} %, spreads allow ${c.allowedPct.toFixed(1)} %`)
    for (const s of comparison.shapes) lines.push(`  ${s.model}: ${s.agree} of ${s.total} probe shapes measure the same within their spreads`)
    lines.push("")
  }
  lines.push(`wrote ${path === resolve(defaultHostProfilePath) ? defaultHostProfilePath : path}`, "")
  return lines.join("\n")
}

function median(values: ReadonlyArray<number>): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** Decodes the measured profile; a failed check is a noisy measurement, not a bad input file. */
function checkMeasuredProfile(raw: unknown, path: string): HardwareProfile {
  try {
    return decodeProfile(raw, path)
  } catch (error) {
    if (!(error instanceof Error)) throw error
    const detail = error.message.split("\n").slice(1).join("\n")
    throw new Error(`the measured host profile failed the profile checks, so nothing was written to ${path}; the machine was probably busy, so rerun with more --repeats:\n${detail}`)
  }
}
