import { join } from "node:path"
import { writeFilesAtomically } from "../report/write.js"
import { formatBytesDecimal, formatFlops, formatSeconds } from "../units/index.js"
import type { CountTotals } from "./run-schedule.js"
import type { SourceValidation, ValidationCase, ValidationDocument } from "./report.js"

/** Write report.md and report.json into `dir` together (neither is left half written). */
export function writeValidationReport(dir: string, document: ValidationDocument): ReadonlyArray<string> {
  return writeFilesAtomically(dir, [
    { name: "report.json", content: JSON.stringify(document, jsonNumbers, 2) + "\n" },
    { name: "report.md", content: renderValidationMarkdown(document) }
  ])
}

/** JSON has no NaN or Infinity: write them as null. */
function jsonNumbers(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? null : value
}

export function renderValidationMarkdown(document: ValidationDocument): string {
  return document.kind === "host" ? renderHost(document) : renderPublished(document)
}

const pct = (value: number): string => (Number.isFinite(value) ? `${value >= 0 ? "+" : ""}${value.toFixed(1)} %` : "n/a")
const abs = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(1)} %` : "n/a")
const seconds = (value: number): string => (Number.isFinite(value) ? formatSeconds(value, 3) : "n/a")

function verdicts(document: ValidationDocument): string[] {
  return ["## Verdicts", "", ...document.variants.map((v) => `- ${v.verdict}`), ""]
}

function renderHost(document: ValidationDocument): string {
  const lines = [
    "# Host validation: predicted against measured",
    "",
    `Generated ${document.generatedAt} by \`${document.command}\`.`,
    "",
    `Host profile: ${document.hardware}. ${String(document.schedules)}.`,
    "",
    ...verdicts(document),
    `Pool speedup (one worker against all, on each variant's longest whole case): ${
      document.poolSpeedup === null ? "not measured" : `${document.poolSpeedup.toFixed(2)}× (model: ${Number(document.predictedPoolSpeedup).toFixed(2)}×)`
    }.`,
    ""
  ]
  for (const variant of document.variants) {
    lines.push(`## ${variant.variant}`, "")
    lines.push("| case | coverage | tasks | steps | predicted | measured (median, spread) | error | counted against model | max abs error | busy | waiting | other cores | speed |")
    lines.push("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for (const c of variant.cases) lines.push(hostRow(c))
    lines.push("", `Median |error| ${abs(variant.medianAbsErrorPct)}, p90 ${abs(variant.p90AbsErrorPct)}.`, "")
    const notes = variant.cases.filter((c) => typeof c.coverageNote === "string").map((c) => `- ${c.label}: ${String(c.coverageNote)}`)
    if (notes.length > 0) lines.push(...notes, "")
  }

  const checks = (document.extrapolationChecks as ReadonlyArray<Record<string, number | string | boolean>> | undefined) ?? []
  if (checks.length > 0) {
    lines.push("## Sample extrapolation against whole runs", "")
    lines.push("| variant | case | sampled tasks / steps | schedule steps | extrapolated (95 % interval) | measured whole | inside |")
    lines.push("|---|---|---:|---:|---:|---:|---|")
    for (const c of checks) {
      lines.push(
        `| ${c.variant} | ${c.case} | ${c.sampledTasks} / ${c.sampledSteps} | ${c.scheduleSteps} | ${seconds(Number(c.seconds))} (${seconds(Number(c.secondsLow))} – ${seconds(Number(c.secondsHigh))}) | ${seconds(Number(c.fullMeasuredSeconds))} | ${c.insideInterval ? "yes" : "no"} |`
      )
    }
    const inside = checks.filter((c) => c.insideInterval).length
    lines.push("", `${inside} of ${checks.length} whole-run times fall inside the interval extrapolated from a sample.`, "")
  }

  const speedups = (document.speedupWorkload as ReadonlyArray<Record<string, number | string>> | undefined) ?? []
  if (speedups.length > 0) {
    lines.push("## Pool scaling", "")
    lines.push("| variant | case | one worker | all workers | speedup | model |")
    lines.push("|---|---|---:|---:|---:|---:|")
    for (const s of speedups) {
      lines.push(`| ${s.variant} | ${s.phase} ${s.seqLen} | ${seconds(Number(s.oneWorkerSeconds))} | ${seconds(Number(s.allWorkersSeconds))} | ${Number(s.speedup).toFixed(2)}× | ${Number(s.predictedSpeedup).toFixed(2)}× |`)
    }
    lines.push("")
  }
  const skipped = (document.skipped as ReadonlyArray<Record<string, string | number>> | undefined) ?? []
  if (skipped.length > 0) lines.push("## Skipped", "", ...skipped.map((s) => `- ${s.variant} ${s.phase} ${s.seqLen}: ${s.reason}`), "")
  lines.push(
    "Predicted: the host model (calibrated per-task terms × the schedule's counts per task, dispatch per batch, batches placed longest first on the workers). " +
      "Measured: wall time from the first submission to the last result, median of repeats. " +
      "Busy: the workers' share of that time inside batches; waiting: the share of their busy time they were runnable but without a CPU (Linux run-queue delay). " +
      "Other cores: CPU other processes used during the run; above a quarter core the case is marked contended, since their work stretches the measured time. " +
      "Speed: a fixed attention workload's time just before the case over its time at calibration; above 1 the machine ran slower than when calibrated (another clock, other virtual machines), which the prediction does not know. " +
      "Timed runs skip the float64 reference; numerics are checked on a separate seeded sample (max abs error column).",
    ""
  )
  return lines.join("\n")
}

function hostRow(c: ValidationCase): string {
  const measured = c.measured as { median: number; spreadPct: number; repeats: number }
  const numerics = c.numerics as { maxAbsError: number }
  const other = c.maxOtherCores as number | undefined
  return (
    `| ${c.label} | ${String(c.coverage)} | ${c.tasks} | ${c.steps} | ${seconds(c.predictedSeconds)} | ${seconds(measured.median)} (±${(measured.spreadPct / 2).toFixed(1)} %, ${measured.repeats}×) | ${pct(c.errorPct)} | ` +
    `${countsCell(c)} | ${numerics.maxAbsError.toExponential(1)} | ${(Number(c.utilization) * 100).toFixed(0)} % | ` +
    `${c.waitShare === undefined ? "n/a" : `${(Number(c.waitShare) * 100).toFixed(0)} %`} | ` +
    `${other === undefined ? "n/a" : other.toFixed(2)}${c.contended ? " (contended)" : ""} | ${typeof c.speedIndex === "number" ? `${c.speedIndex.toFixed(2)}×` : "n/a"} |`
  )
}

/** "1.07 GFLOP, 8.4 MB, equal" or the two counts where they differ. */
function countsCell(c: ValidationCase): string {
  const counted = c.counted as CountTotals
  const model = c.model as CountTotals
  const totals = (t: CountTotals) => `${formatFlops(t.tensorFlops, 3)}, ${formatBytesDecimal(t.loadBytes, 3)}`
  return c.countsMatch ? `${totals(counted)}, equal` : `DIFFER: ${totals(counted)} against ${totals(model)}`
}

function renderPublished(document: ValidationDocument): string {
  const lines = [
    "# Published and measured GPU figures: predicted against measured",
    "",
    `Generated ${document.generatedAt} by \`${document.command}\`. Hardware: ${document.hardware}.`,
    "",
    ...verdicts(document)
  ]
  const sources = (document.sources as ReadonlyArray<SourceValidation> | undefined) ?? []
  lines.push("## By source", "", "| source | series | points | median abs error | p90 abs error |", "|---|---|---:|---:|---:|")
  for (const s of sources) lines.push(`| ${s.source} | ${s.series.join(", ")} | ${s.points} | ${abs(s.medianAbsErrorPct)} | ${abs(s.p90AbsErrorPct)} |`)
  lines.push("")
  for (const variant of document.variants) {
    lines.push(`## ${variant.variant}`, "", "| point | predicted | measured | error | tolerance | fit target |", "|---|---:|---:|---:|---:|---|")
    for (const c of variant.cases) {
      lines.push(`| ${c.label} | ${seconds(c.predictedSeconds)} | ${seconds(c.measuredSeconds)} | ${pct(c.errorPct)} | ${c.tolerancePct} % | ${c.fitted ? "yes (not scored)" : ""} |`)
    }
    lines.push("")
  }
  lines.push("Measured seconds of a published throughput are the FlashAttention convention's FLOPs divided by the published TFLOP/s.", "")
  return lines.join("\n")
}

export const defaultReportDir = (kind: ValidationDocument["kind"], out: string): string => join(out, kind === "host" ? "validation" : "validation-published")
