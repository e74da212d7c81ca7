import { componentKeys } from "../cost/breakdown.js"
import { flopDefinitions } from "../estimate.js"
import type { ReportRow, ScenarioReport } from "../runner/scenario-run.js"
import { formatBytes, formatSeconds } from "../units/index.js"

/** Render a scenario report as Markdown for reading. */
export function renderMarkdown(report: ScenarioReport): string {
  const lines: string[] = []
  const { model } = report
  lines.push(`# ${report.scenario}`, "")
  if (report.description) lines.push(report.description, "")
  lines.push(
    `Model shape: ${model.name}: ${model.heads} query heads, ${model.kvHeads} KV heads, head dim ${model.headDim}` +
      (model.headDimV && model.headDimV !== model.headDim ? ` (value ${model.headDimV})` : "") +
      `, ${report.dtype}. Scenario file: \`${report.source}\`.`,
    ""
  )
  lines.push(...validationSection(report), "")

  for (const group of groupRows(report.rows)) {
    lines.push(`## ${group.hardware}: ${group.variant} ${group.phase}`, "")
    lines.push(...rowTable(group.rows), "")
    lines.push(...breakdownTable(group.rows), "")
  }

  lines.push(...comparisonSection(report), "")
  lines.push("## Definitions", "")
  for (const [name, text] of Object.entries(flopDefinitions)) lines.push(`- \`${name}\`: ${text}.`)
  lines.push(
    "- Time components add up to the predicted time: tensor (matrix products), softmax not hidden behind them, memory stall beyond compute, per-CTA fill and drain latency, idle slots in the last wave, and kernel launch.",
    "- `bound` names the resource with the largest time if it alone limited the kernel.",
    "- Executed tiles are a seeded sample of the full-size schedule (first, last, diagonal, interior, whole items, split-KV combine, random), run as gpu.js kernels on a worker pool and compared with a float64 reference. Counts match means each executed tile counted exactly the FLOPs, exp operations and K/V bytes the cost model prices for it.",
    ""
  )
  return lines.join("\n")
}

function validationSection(report: ScenarioReport): string[] {
  const summary = report.validationSummary
  if (summary.rowsValidated === 0) return ["Execution: disabled for this scenario; the numbers below are analytical only."]
  return [
    `Execution: ${summary.tilesExecuted} tiles executed over ${summary.rowsValidated} rows on gpu.js backend ${summary.backends.join(", ")}; ` +
      `max abs error against float64 ${summary.maxAbsError.toExponential(2)}; counts ${summary.countsMatch ? "match the model for every tile" : "DO NOT match the model"}.`
  ]
}

interface RowGroup {
  readonly hardware: string
  readonly variant: string
  readonly phase: string
  readonly rows: ReportRow[]
}

function groupRows(rows: ReadonlyArray<ReportRow>): RowGroup[] {
  const groups = new Map<string, RowGroup>()
  for (const row of rows) {
    const key = `${row.hardware}|${row.variant}|${row.phase}`
    const group = groups.get(key) ?? { hardware: row.hardware, variant: row.variant, phase: row.phase, rows: [] }
    group.rows.push(row)
    groups.set(key, group)
  }
  return [...groups.values()]
}

function rowTable(rows: ReadonlyArray<ReportRow>): string[] {
  const header = "| seq len | queries | batch | predicted | TFLOP/s (convention) | bound | HBM bytes | tiling | tiles run | backend | max abs error |"
  const rule = "|---:|---:|---:|---:|---:|---|---:|---|---:|---|---:|"
  const body = rows.map((row) => {
    const p = row.prediction
    const v = row.validation
    return (
      `| ${row.seqLen} | ${row.queryLen} | ${row.batch} | ${formatSeconds(p.seconds)} | ${(p.conventionFlopsPerSecond / 1e12).toFixed(1)} | ${p.bound} | ` +
      `${formatBytes(p.bytes.hbm)} | ${p.tiling.description} | ${v ? v.tilesExecuted : "-"} | ${v ? v.backends.join(", ") : "-"} | ` +
      `${v ? v.maxAbsError.toExponential(2) : "-"} |`
    )
  })
  return [header, rule, ...body]
}

function breakdownTable(rows: ReadonlyArray<ReportRow>): string[] {
  const header = `| seq len | ${componentKeys.join(" | ")} | total |`
  const rule = `|---:|${componentKeys.map(() => "---:").join("|")}|---:|`
  const body = rows.map((row) => {
    const c = row.prediction.components
    return `| ${row.seqLen} | ${componentKeys.map((key) => formatSeconds(c[key], 3)).join(" | ")} | ${formatSeconds(row.prediction.seconds)} |`
  })
  return ["Where the time goes:", "", header, rule, ...body]
}

function comparisonSection(report: ScenarioReport): string[] {
  const hardware = [...new Set(report.rows.map((r) => r.hardware))]
  if (hardware.length < 2) return []
  const baseline = hardware[0]!
  const keys = [...new Set(report.rows.map((r) => `${r.variant}|${r.phase}|${r.seqLen}`))]
  const lines = [`## Across hardware (time relative to ${baseline})`, "", `| case | ${hardware.join(" | ")} |`, `|---|${hardware.map(() => "---:").join("|")}|`]
  for (const key of keys) {
    const [variant, phase, seqLen] = key.split("|")
    const base = report.rows.find((r) => r.hardware === baseline && `${r.variant}|${r.phase}|${r.seqLen}` === key)
    if (!base) continue
    const cells = hardware.map((id) => {
      const row = report.rows.find((r) => r.hardware === id && `${r.variant}|${r.phase}|${r.seqLen}` === key)
      return row ? `${(row.prediction.seconds / base.prediction.seconds).toFixed(2)}×` : "-"
    })
    lines.push(`| ${variant} ${phase} ${seqLen} | ${cells.join(" | ")} |`)
  }
  return lines
}
