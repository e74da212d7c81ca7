import Table from "cli-table3"
import type { Effect } from "effect"
import { resolve } from "node:path"
import { validateHost } from "../validate/host-document.js"
import { validatePublished } from "../validate/published-validation.js"
import { checkOutputDirectory } from "../report/write.js"
import { defaultReportDir, writeValidationReport } from "../validate/report-markdown.js"
import type { SourceValidation, ValidationDocument } from "../validate/report.js"
import { formatSeconds } from "../units/index.js"
import { plainStyle } from "./estimate.js"
import { inputError, parseChoice, parseCount, parseOptionalCount } from "./flags.js"

export interface ValidateArgs {
  readonly hardware: string
  readonly variant?: ReadonlyArray<string> | undefined
  readonly sizes?: string | undefined
  readonly phases?: string | undefined
  readonly workers?: unknown
  readonly repeats: unknown
  readonly "schedule-hardware": string
  readonly "full-limit": unknown
  readonly speedup: boolean
  readonly published: boolean
  readonly "allow-other-machine": boolean
  readonly json: boolean
  readonly out: string
  readonly seed: unknown
}

export async function runValidate(args: ValidateArgs, runEffect: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>): Promise<void> {
  const command = `attnsim ${process.argv.slice(2).join(" ")}`
  const request = args.published ? undefined : hostRequest(args)
  const dir = resolve(defaultReportDir(args.published ? "published" : "host", args.out))
  checkOutputDirectory(dir, "--out", ["report.json", "report.md"])
  const document = request === undefined ? validatePublished(command) : await runEffect(validateHost(request, command))
  const written = writeValidationReport(dir, document)
  if (args.json) {
    process.stdout.write(JSON.stringify(document, (_key, value) => (typeof value === "number" && !Number.isFinite(value) ? null : value), 2) + "\n")
    return
  }
  process.stdout.write(renderSummary(document))
  for (const path of written) process.stdout.write(`wrote ${path}\n`)
}

function hostRequest(args: ValidateArgs) {
  const fullLimit = Number(args["full-limit"])
  if (!Number.isFinite(fullLimit) || fullLimit <= 0) throw inputError("full-limit", args["full-limit"], "a positive number of seconds")
  return {
    hardware: args.hardware,
    allowOtherMachine: args["allow-other-machine"],
    variants: args.variant?.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== ""),
    phases: args.phases?.split(",").map((phase) => parseChoice("phases", phase.trim(), ["prefill", "decode"] as const)),
    sizes: args.sizes?.split(",").map((size) => parseCount("sizes", size.trim(), "sequence lengths in tokens", true)),
    workers: parseOptionalCount("workers", args.workers, "worker threads"),
    repeats: parseCount("repeats", args.repeats, "timed repeats of every case"),
    scheduleHardware: args["schedule-hardware"],
    fullLimitSeconds: fullLimit,
    speedup: args.speedup,
    seed: parseCount("seed", args.seed, "the sampling seed")
  }
}

function renderSummary(document: ValidationDocument): string {
  const lines: string[] = []
  for (const variant of document.variants) {
    const table = new Table({ head: ["case", "predicted", "measured", "error", "counts"], style: plainStyle })
    for (const c of variant.cases) {
      const sign = c.errorPct >= 0 ? "+" : ""
      let counts = "-"
      if (c.countsMatch === true) counts = "equal"
      if (c.countsMatch === false) counts = "DIFFER"
      table.push([c.label, formatSeconds(c.predictedSeconds, 3), formatSeconds(c.measuredSeconds, 3), `${sign}${c.errorPct.toFixed(1)} %`, counts])
    }
    lines.push(table.toString(), variant.verdict, "")
  }
  if (document.kind === "published") {
    const sources = new Table({ head: ["source", "points", "median |error|", "p90 |error|"], colWidths: [70, 8, 16, 14], wordWrap: true, style: plainStyle })
    for (const source of (document.sources as ReadonlyArray<SourceValidation>) ?? []) {
      sources.push([source.source, source.points, percent(source.medianAbsErrorPct), percent(source.p90AbsErrorPct)])
    }
    lines.push(sources.toString(), "")
  }
  if (document.kind === "host") {
    lines.push(
      document.poolSpeedup === null
        ? "pool speedup: not measured"
        : `pool speedup, one worker against all: ${document.poolSpeedup.toFixed(2)}× (model ${Number(document.predictedPoolSpeedup).toFixed(2)}×)`
    )
    const checks = (document.extrapolationChecks as ReadonlyArray<{ insideInterval: boolean }>) ?? []
    if (checks.length > 0) lines.push(`sample extrapolation: ${checks.filter((c) => c.insideInterval).length} of ${checks.length} whole-run times inside the 95 % interval`)
    lines.push(`validation took ${Number(document.seconds).toFixed(0)} s`, "")
  }
  return lines.join("\n")
}

/** "4.6 %", or "n/a" where every point of a source was a fit target. */
const percent = (value: number): string => (Number.isFinite(value) ? `${value.toFixed(1)} %` : "n/a")
