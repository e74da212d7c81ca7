import { Effect } from "effect"
import { join, resolve } from "node:path"
import { renderMarkdown } from "../report/markdown.js"
import { checkOutputDirectory, writeFilesAtomically } from "../report/write.js"
import { runScenario } from "../runner/scenario-run.js"
import { loadScenario } from "../workload/scenario.js"
import { countOf } from "./estimate.js"
import { parseChoice, parseOptionalCount } from "./flags.js"

export interface RunArgs {
  readonly scenario: string
  readonly out: string
  readonly execute: boolean
  readonly workers?: unknown
  readonly backend?: string | undefined
}

/** Run a scenario file and write reports/<name>/report.md and report.json. */
export async function runScenarioCommand(args: RunArgs, runEffect: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>): Promise<void> {
  const loaded = await loadScenario(args.scenario)
  const workers = parseOptionalCount("workers", args.workers, "worker threads")
  const backend = args.backend === undefined ? undefined : parseChoice("backend", args.backend, ["webasm", "cpu", "gl"] as const)
  const execution = {
    ...loaded.scenario.execution,
    enabled: loaded.scenario.execution.enabled && args.execute,
    ...(workers !== undefined ? { workers } : {}),
    ...(backend !== undefined ? { backend } : {})
  }
  const dir = resolve(args.out, loaded.name)
  checkOutputDirectory(dir, "--out", ["report.json", "report.md"])
  const report = await runEffect(runScenario({ ...loaded, scenario: { ...loaded.scenario, execution } }))

  const written = writeFilesAtomically(dir, [
    { name: "report.json", content: JSON.stringify(report, null, 2) + "\n" },
    { name: "report.md", content: renderMarkdown(report) }
  ])
  const summary = report.validationSummary
  if (summary.rowsValidated > 0) {
    process.stdout.write(
      `${countOf(report.rows.length, "row", "rows")} priced; ${summary.tilesExecuted} tiles executed on ${summary.backends.join(", ")}, ` +
        `max abs error ${summary.maxAbsError.toExponential(2)}, counts ${summary.countsMatch ? "match" : "DO NOT match"}\n`
    )
  } else {
    const modelRows = report.modelRows.length > 0 ? ` and ${countOf(report.modelRows.length, "model row", "model rows")}` : ""
    process.stdout.write(`${countOf(report.rows.length, "row", "rows")}${modelRows} priced (${report.rows.length > 0 ? "execution disabled" : "nothing to execute"})\n`)
  }
  for (const path of written) process.stdout.write(`wrote ${join(args.out, loaded.name, path.split("/").pop()!)}\n`)
}
