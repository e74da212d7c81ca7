import { seededRandom } from "../../exec/data.js"
import type { ExecUnit } from "../../exec/unit.js"
import { sampleDense } from "../dense/sample.js"
import type { SampleOptions } from "../variant.js"
import { NsaData } from "./data.js"
import type { NsaPlan } from "./plan.js"
import { NsaTaskBuilder } from "./tasks.js"

/** Tiles of a unit: every NSA task is an attention-forward task with one tile per step. */
const stepsOf = (unit: ExecUnit): number => unit.tasks.reduce((sum, task) => sum + (task.kind === "attention-forward" ? task.stepStart.length : 0), 0)

/** Tiles kept for the window branch's own sample (first, last, diagonal, interior) when the budget allows. */
const windowShare = 4

export function nsaData(plan: NsaPlan, seed: number): NsaData {
  const { shape } = plan.request
  return new NsaData({ seed, dtype: shape.dtype, headDim: shape.headDim, headDimV: shape.headDimV, geometry: plan.geometry })
}

/**
 * Builds a seeded sample of an NSA plan's tiles, within `budgetSteps` tiles:
 * the first and last tile of the compressed and selection kernels (mid-row
 * tiles from a seeded state), a gated unit at a position that sees no
 * compressed token (prefill and train), a gated unit at the last query that
 * fits the budget (in decode only the one query, skipped when it does not
 * fit), the window kernel's own sample, then random tiles. Every unit is
 * built from the priced schedules; backward passes are priced, not run.
 */
export function sampleNsa(plan: NsaPlan, options: SampleOptions): ReadonlyArray<ExecUnit> {
  const builder = new NsaTaskBuilder(plan, nsaData(plan, options.seed), options.backend, options.seed)
  const random = seededRandom(options.seed)
  const { shape } = plan.request
  const { compressed, selection } = plan
  const units: ExecUnit[] = []
  let budget = options.budgetSteps
  const take = (unit: ExecUnit | undefined): void => {
    if (!unit || stepsOf(unit) > budget) return
    units.push(unit)
    budget -= stepsOf(unit)
  }

  if (compressed) {
    const schedule = compressed.schedule
    const first = schedule.item(0)
    const last = schedule.item(schedule.forwardItems - 1)
    if (schedule.steps(first).length > 0) take(builder.compressedStep(first, 0, "first"))
    const lastSteps = schedule.steps(last).length
    if (lastSteps > 0) take(builder.compressedStep(last, lastSteps - 1, "last"))
  }
  const lastSelection = selection.schedule.item(selection.schedule.forwardItems - 1)
  take(builder.selectedStep(selection.schedule.item(0), 0, "first"))
  take(builder.selectedStep(lastSelection, selection.schedule.summary(lastSelection.position, lastSelection.split, selection.tiling.splits).steps - 1, "last"))

  const lastBatch = shape.batch - 1
  const lastGroup = shape.kvHeads - 1
  const noCompressedQuery = plan.geometry.compressBlock - 2 - selection.schedule.offset
  if (shape.seqLenQ > 1 && noCompressedQuery >= 0 && noCompressedQuery < shape.seqLenQ - 1 && builder.gatedSteps(noCompressedQuery) <= budget) {
    take(builder.gated(lastBatch, lastGroup, noCompressedQuery, "no compressed token"))
  }
  const query = latestQueryWithin(builder, shape.seqLenQ, Math.max(0, budget - windowShare))
  if (query !== undefined) take(builder.gated(lastBatch, lastGroup, query, query === shape.seqLenQ - 1 ? "last query" : "latest query within budget"))

  if (budget > 0) {
    const windowUnits = sampleDense(plan.window.schedule, { ...options, budgetSteps: Math.min(budget, Math.max(windowShare, Math.floor(budget / 2))) })
    for (const unit of windowUnits) take({ ...unit, kind: `window-${unit.kind}` })
  }

  for (let attempt = 0; attempt < 64 && budget > 0; attempt++) {
    if (compressed && random() < 0.5) {
      const item = compressed.schedule.item(Math.floor(random() * compressed.schedule.forwardItems))
      const steps = compressed.schedule.steps(item).length
      if (steps > 0) take(builder.compressedStep(item, Math.floor(random() * steps), "random"))
    } else {
      // Random queries and splits of the first and last KV-head group only: every other group
      // would need its own compressed keys over the whole prefix to choose its blocks.
      const [batch, kvHead] = random() < 0.5 ? [0, 0] : [lastBatch, lastGroup]
      const query = Math.floor(random() * shape.seqLenQ)
      const split = Math.floor(random() * selection.tiling.splits)
      const item = selection.schedule.item(selection.schedule.forwardIndex(batch, kvHead, query, split))
      const steps = selection.schedule.summary(item.position, item.split, selection.tiling.splits).steps
      if (steps > 0) take(builder.selectedStep(item, Math.floor(random() * steps), "random"))
    }
  }
  return units
}

/**
 * Finds the last query whose gated unit runs within `allowance` tiles: the
 * last query itself when it fits, else the latest earlier one by bisection
 * (tile counts grow with the position). Returns undefined when even query 0
 * does not fit.
 */
function latestQueryWithin(builder: NsaTaskBuilder, queries: number, allowance: number): number | undefined {
  if (builder.gatedSteps(queries - 1) <= allowance) return queries - 1
  if (builder.gatedSteps(0) > allowance) return undefined
  let lo = 0
  let hi = queries - 1
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2)
    if (builder.gatedSteps(mid) <= allowance) lo = mid
    else hi = mid
  }
  return lo
}

/** Builds gated units for every (batch, KV-head group, query): the whole forward pass, for small cases. */
export function fullNsaUnits(plan: NsaPlan, options: Omit<SampleOptions, "budgetSteps" | "wholeItemMaxSteps">): ReadonlyArray<ExecUnit> {
  const builder = new NsaTaskBuilder(plan, nsaData(plan, options.seed), options.backend, options.seed)
  const { shape } = plan.request
  const units: ExecUnit[] = []
  for (let batch = 0; batch < shape.batch; batch++) {
    for (let kvHead = 0; kvHead < shape.kvHeads; kvHead++) {
      for (let query = 0; query < shape.seqLenQ; query++) units.push(builder.gated(batch, kvHead, query, "whole pass"))
    }
  }
  return units
}
