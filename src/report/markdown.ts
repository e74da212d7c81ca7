import { componentKeys } from "../cost/breakdown.js"
import { flopDefinitions } from "../estimate.js"
import type { ModelRow, ReportRow, ScenarioReport } from "../runner/scenario-run.js"
import { formatBytes, formatSeconds } from "../units/index.js"

/** Render a scenario report as Markdown for reading. */
export function renderMarkdown(report: ScenarioReport): string {
  const lines: string[] = [`# ${report.scenario}`, ""]
  if (report.description) lines.push(report.description, "")
  const { model } = report
  if (model) {
    lines.push(
      `Layer shape: ${model.name}: ${model.heads} query heads, ${model.kvHeads} KV heads, head dim ${model.headDim}` +
        (model.headDimV && model.headDimV !== model.headDim ? ` (value ${model.headDimV})` : "") +
        `, ${report.dtype}.`,
      ""
    )
  }
  lines.push(`Scenario file: \`${report.source}\`.`, "", ...validationSection(report), "")

  for (const group of groupRows(report.rows)) {
    lines.push(`## ${group.hardware}: ${group.phase}`, "")
    lines.push(...rowTable(group.rows, report.rows), "")
    lines.push(...breakdownTable(group.rows), "")
  }
  lines.push(...modelSection(report.modelRows))
  lines.push(...comparisonSection(report.rows))
  lines.push(...alignmentSection(report.rows))
  lines.push(...notesSection(report.rows))

  lines.push("## Definitions", "")
  for (const [name, text] of Object.entries(flopDefinitions)) lines.push(`- \`${name}\`: ${text}.`)
  lines.push(
    "- Time components add up to the predicted time: tensor (matrix products), softmax not hidden behind them, memory stall beyond compute, per-CTA fill and drain latency, idle slots in the last wave, and kernel launch.",
    "- `bound` names the resource that limits the time: compute (tensor, exp or vector work) or the busiest memory level, whichever is longer.",
    "- `vs dense` is the dense row's predicted time divided by this row's, on the same hardware, phase and sequence length; \"(modeled)\" marks the variant's own dense baseline where the scenario has no dense row.",
    "- Executed tiles are a seeded sample of the full-size schedule, run as gpu.js kernels on a worker pool and compared with a float64 reference. Counts match means each executed tile counted exactly the FLOPs, exp operations and bytes the cost model prices for it.",
    ""
  )
  return lines.join("\n")
}

function validationSection(report: ScenarioReport): string[] {
  const summary = report.validationSummary
  if (summary.rowsValidated === 0) return ["Execution: none in this run; the numbers below are analytical only."]
  return [
    `Execution: ${summary.tilesExecuted} tiles executed over ${summary.rowsValidated} rows on gpu.js backend ${summary.backends.join(", ")}; ` +
      `max abs error against float64 ${summary.maxAbsError.toExponential(2)}; counts ${summary.countsMatch ? "match the model for every tile" : "DO NOT match the model"}.`
  ]
}

interface RowGroup {
  readonly hardware: string
  readonly phase: string
  readonly rows: ReportRow[]
}

function groupRows(rows: ReadonlyArray<ReportRow>): RowGroup[] {
  const groups = new Map<string, RowGroup>()
  for (const row of rows) {
    const key = `${row.hardware}|${row.phase}`
    const group = groups.get(key) ?? { hardware: row.hardware, phase: row.phase, rows: [] }
    group.rows.push(row)
    groups.set(key, group)
  }
  return [...groups.values()]
}

/** The dense row priced on the same hardware, phase, length, batch and layer shape. */
function denseTwin(row: ReportRow, all: ReadonlyArray<ReportRow>): ReportRow | undefined {
  const shape = row.prediction.shape
  return all.find(
    (r) =>
      r.variant === "dense" &&
      r.hardware === row.hardware &&
      r.phase === row.phase &&
      r.seqLen === row.seqLen &&
      r.batch === row.batch &&
      r.prediction.shape.heads === shape.heads &&
      r.prediction.shape.kvHeads === shape.kvHeads &&
      r.prediction.shape.headDim === shape.headDim &&
      r.prediction.shape.headDimV === shape.headDimV
  )
}

function rowTable(rows: ReadonlyArray<ReportRow>, all: ReadonlyArray<ReportRow>): string[] {
  const header = "| variant | seq len | queries | batch | predicted | vs dense | TFLOP/s (convention) | bound | keys/query | HBM bytes | tiling | tiles run | backend | max abs error |"
  const rule = "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---|---:|"
  const body = rows.map((row) => {
    const p = row.prediction
    const v = row.validation
    const dense = denseTwin(row, all)
    let versus = typeof p.modeledSpeedupVsDense === "number" ? `${p.modeledSpeedupVsDense.toFixed(2)}× (modeled)` : "-"
    if (dense) versus = `${(dense.prediction.seconds / p.seconds).toFixed(2)}×`
    if (row.variant === "dense") versus = "-"
    const keys = typeof p.keysPerQuery === "number" ? String(p.keysPerQuery) : "-"
    return (
      `| ${row.variant} | ${row.seqLen} | ${row.queryLen} | ${row.batch} | ${formatSeconds(p.seconds)} | ${versus} | ${(p.conventionFlopsPerSecond / 1e12).toFixed(1)} | ${p.bound} | ` +
      `${keys} | ${formatBytes(p.bytes.hbm)} | ${p.tiling.description} | ${v ? v.tilesExecuted : "-"} | ${v ? v.backends.join(", ") : "-"} | ` +
      `${v ? v.maxAbsError.toExponential(2) : "-"} |`
    )
  })
  return [header, rule, ...body]
}

function breakdownTable(rows: ReadonlyArray<ReportRow>): string[] {
  const header = `| variant | seq len | ${componentKeys.join(" | ")} | total |`
  const rule = `|---|---:|${componentKeys.map(() => "---:").join("|")}|---:|`
  const body = rows.map((row) => {
    const c = row.prediction.components
    return `| ${row.variant} | ${row.seqLen} | ${componentKeys.map((key) => formatSeconds(c[key], 3)).join(" | ")} | ${formatSeconds(row.prediction.seconds)} |`
  })
  return ["Where the time goes:", "", header, rule, ...body]
}

function modelSection(rows: ReadonlyArray<ModelRow>): string[] {
  if (rows.length === 0) return []
  const lines = ["## Models", ""]
  const header = "| model | hardware | phase | seq len | batch | attention time | by variant | KV cache / token | state / sequence | memory for the batch | HBM |"
  const rule = "|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|"
  lines.push(header, rule)
  for (const row of rows) {
    const e = row.estimate
    const byVariant = Object.entries(e.secondsByVariant).map(([variant, seconds]) => `${variant} ${((seconds / e.seconds) * 100).toFixed(0)} %`).join(", ")
    lines.push(
      `| ${row.model} | ${row.hardware} | ${row.phase} | ${row.seqLen} | ${row.batch} | ${formatSeconds(e.seconds)} | ${byVariant} | ` +
        `${e.kvCacheBytesPerToken} B | ${formatBytes(e.stateBytesPerSequence)} | ${formatBytes(e.memoryBytes)} | ${formatBytes(e.hbmCapacityBytes)}${e.fitsInHbm ? "" : ` (exceeded: ≥ ${e.minimumGpusForCache} GPUs)`} |`
    )
  }
  return [...lines, ""]
}

function comparisonSection(rows: ReadonlyArray<ReportRow>): string[] {
  const hardware = [...new Set(rows.map((r) => r.hardware))]
  if (hardware.length < 2) return []
  const baseline = hardware[0]!
  const key = (r: ReportRow) => `${r.variant}|${r.phase}|${r.seqLen}|${r.batch}`
  const keys = [...new Set(rows.map(key))]
  const lines = [`## Across hardware (time relative to ${baseline})`, "", `| case | ${hardware.join(" | ")} |`, `|---|${hardware.map(() => "---:").join("|")}|`]
  for (const caseKey of keys) {
    const [variant, phase, seqLen] = caseKey.split("|")
    const base = rows.find((r) => r.hardware === baseline && key(r) === caseKey)
    if (!base) continue
    const cells = hardware.map((id) => {
      const row = rows.find((r) => r.hardware === id && key(r) === caseKey)
      return row ? `${(row.prediction.seconds / base.prediction.seconds).toFixed(2)}×` : "-"
    })
    lines.push(`| ${variant} ${phase} ${seqLen} | ${cells.join(" | ")} |`)
  }
  return [...lines, ""]
}

interface AlignmentCase {
  readonly name: string
  readonly seconds: number
  readonly hbm: number
  readonly l2: number
  readonly bound: string
}

/**
 * Read a variant's `alignment` detail: NSA lists `cases`, MoBA names them as
 * fields; both give a time, bytes and a bound per memory-access layout.
 */
function alignmentCases(alignment: unknown): AlignmentCase[] {
  if (alignment === null || typeof alignment !== "object") return []
  const record = alignment as Record<string, unknown>
  const entries = Array.isArray(record.cases) ? (record.cases as unknown[]) : Object.values(record)
  return entries.flatMap((entry) => {
    if (entry === null || typeof entry !== "object") return []
    const c = entry as Record<string, unknown>
    const bytes = (c.bytes ?? {}) as Record<string, unknown>
    if (typeof c.seconds !== "number") return []
    return [{
      name: String(c.name ?? c.selection ?? "case"),
      seconds: c.seconds,
      hbm: Number(bytes.hbm ?? 0),
      l2: Number(bytes.l2 ?? 0),
      bound: String(c.bound ?? "-")
    }]
  })
}

/** The same sparsity with memory access that suits the hardware and with access that does not. */
function alignmentSection(rows: ReadonlyArray<ReportRow>): string[] {
  const withContrast = rows.filter((row) => alignmentCases(row.prediction.alignment).length > 1)
  if (withContrast.length === 0) return []
  const lines = ["## Hardware alignment: the same sparsity, different memory access", ""]
  for (const row of withContrast) {
    const cases = alignmentCases(row.prediction.alignment)
    const base = cases[0]!.seconds
    lines.push(`### ${row.variant} ${row.phase}, ${row.seqLen} tokens, batch ${row.batch}, ${row.hardware}`, "")
    lines.push("| layout | predicted | relative | HBM bytes | L2 bytes | bound |", "|---|---:|---:|---:|---:|---|")
    for (const c of cases) {
      lines.push(`| ${c.name} | ${formatSeconds(c.seconds)} | ${(c.seconds / base).toFixed(2)}× | ${formatBytes(c.hbm)} | ${formatBytes(c.l2)} | ${c.bound} |`)
    }
    lines.push("")
  }
  return lines
}

/** Each variant's notes once: the mechanisms behind its numbers. */
function notesSection(rows: ReadonlyArray<ReportRow>): string[] {
  const byVariant = new Map<string, Set<string>>()
  for (const row of rows) {
    const notes = row.prediction.notes
    if (!Array.isArray(notes)) continue
    const set = byVariant.get(row.variant) ?? new Set<string>()
    for (const note of notes) set.add(String(note))
    byVariant.set(row.variant, set)
  }
  if (byVariant.size === 0) return []
  const lines = ["## Why the numbers come out as they do", ""]
  for (const [variant, notes] of byVariant) {
    lines.push(`### ${variant}`, "", ...[...notes].slice(0, 12).map((note) => `- ${note}`), "")
  }
  return lines
}
