import type { HardwareProfile } from "../hardware/profile-schema.js"
import { median } from "./stats.js"

/**
 * Two calibrations of one machine compared figure by figure. Each figure's
 * spread is the full range of its repeats around the median, so two runs agree
 * on a figure when their values differ by at most half the sum of the spreads.
 */
export interface FigureComparison {
  readonly figure: string
  readonly previous: number
  readonly current: number
  readonly differencePct: number
  readonly allowedPct: number
  readonly agree: boolean
}

export interface CalibrationComparison {
  /** Pool figures, and per task model its predictions on the earlier run's shapes (median difference). */
  readonly figures: ReadonlyArray<FigureComparison>
  /** Per task model: probe shapes whose median worker seconds agree within their spreads. */
  readonly shapes: ReadonlyArray<{ readonly model: string; readonly agree: number; readonly total: number }>
}

export function compareCalibrations(previous: HardwareProfile, current: HardwareProfile): CalibrationComparison {
  const before = previous.host?.calibration
  const now = current.host?.calibration
  if (!before || !now) return { figures: [], shapes: [] }

  const figures: FigureComparison[] = []
  const pool = [
    ["dispatch", before.dispatch.value, now.dispatch.value],
    ["dispatchPerTask", before.dispatchPerTask.value, now.dispatchPerTask.value],
    ["transferCopied", before.transferCopied.value, now.transferCopied.value],
    ["fill", before.fill.value, now.fill.value]
  ] as const
  for (const [name, old, value] of pool) {
    figures.push(comparison(name, old, value, before.spreadPct[name] ?? 0, now.spreadPct[name] ?? 0))
  }
  if (before.referenceTask && now.referenceTask) {
    figures.push(comparison("referenceTask", before.referenceTask.value, now.referenceTask.value, before.spreadPct.referenceTask ?? 0, now.spreadPct.referenceTask ?? 0))
  }

  const shapes: Array<{ model: string; agree: number; total: number }> = []
  for (const [model, fitted] of Object.entries(now.stepModels)) {
    const old = before.stepModels[model]
    if (!old?.measurements || old.measurements.length === 0) continue
    const predict = (terms: typeof fitted.terms, counts: Readonly<Record<string, number>>) =>
      Object.entries(counts).reduce((sum, [term, count]) => sum + (terms[term]?.value ?? 0) * count, 0)
    const differences = old.measurements.map((m) => {
      const was = predict(old.terms, m.counts)
      return ((predict(fitted.terms, m.counts) - was) / was) * 100
    })
    const differencePct = median(differences)
    const allowedPct = ((old.predictionSpreadPct ?? 0) + (fitted.predictionSpreadPct ?? 0)) / 2
    figures.push({ figure: `stepModels.${model} (median prediction)`, previous: 1, current: 1 + differencePct / 100, differencePct, allowedPct, agree: Math.abs(differencePct) <= allowedPct })

    const currentByShape = new Map((fitted.measurements ?? []).map((m) => [m.shape, m]))
    let agree = 0
    let total = 0
    for (const m of old.measurements) {
      const match = currentByShape.get(m.shape)
      if (!match) continue
      total++
      if (comparison(m.shape, m.seconds, match.seconds, m.spreadPct, match.spreadPct).agree) agree++
    }
    shapes.push({ model, agree, total })
  }
  return { figures, shapes }
}

function comparison(figure: string, previous: number, current: number, previousSpreadPct: number, currentSpreadPct: number): FigureComparison {
  const differencePct = ((current - previous) / previous) * 100
  const allowedPct = (previousSpreadPct + currentSpreadPct) / 2
  return { figure, previous, current, differencePct, allowedPct, agree: Math.abs(differencePct) <= allowedPct }
}
