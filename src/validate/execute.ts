import { Effect } from "effect"
import { TilePool, type TileExecutionError } from "../exec/pool.js"
import type { AttentionTileResult, Backend } from "../exec/task.js"
import { combineSplits } from "../variants/dense/combine.js"
import { normalizedOutput } from "../variants/dense/reference.js"
import type { SampledUnit } from "../variants/dense/sample.js"

export interface UnitOutcome {
  readonly kind: SampledUnit["kind"]
  readonly reason: SampledUnit["reason"]
  readonly itemIndices: ReadonlyArray<number>
  readonly steps: number
  readonly maxAbsError: number
  readonly maxRelError: number
  readonly countsMatch: boolean
  readonly backends: ReadonlyArray<Backend>
}

/** Outcome of executing sampled tiles and checking them against float64 and the model's counts. */
export interface ExecutionCheck {
  /** Key tiles executed. */
  readonly tilesExecuted: number
  readonly tasks: number
  /** The gpu.js backends that actually ran. */
  readonly backends: ReadonlyArray<Backend>
  /** Largest |kernel − float64| over all compared outputs. */
  readonly maxAbsError: number
  /** maxAbsError of each unit divided by the largest |float64| value it compared, maximized over units. */
  readonly maxRelError: number
  /** Every task counted exactly the FLOPs, exp operations and K/V bytes the schedule prices for it. */
  readonly countsMatch: boolean
  readonly kernelSeconds: number
  readonly referenceSeconds: number
  readonly units: ReadonlyArray<UnitOutcome>
}

/** Run every unit's tasks on the pool (all in flight at once) and check the results. */
export function executeUnits(units: ReadonlyArray<SampledUnit>): Effect.Effect<ExecutionCheck, TileExecutionError, TilePool> {
  return Effect.gen(function* () {
    const pool = yield* TilePool
    const outcomes = yield* Effect.forEach(
      units,
      (unit) =>
        Effect.forEach(unit.tasks, (task) => pool.run(task), { concurrency: "unbounded" }).pipe(
          Effect.map((results) => checkUnit(unit, results))
        ),
      { concurrency: "unbounded" }
    )
    return summarize(outcomes.map((o) => o.outcome), outcomes)
  })
}

function summarize(units: ReadonlyArray<UnitOutcome>, timed: ReadonlyArray<{ kernelSeconds: number; referenceSeconds: number }>): ExecutionCheck {
  return {
    tilesExecuted: units.reduce((sum, u) => sum + u.steps, 0),
    tasks: units.length,
    backends: [...new Set(units.flatMap((u) => u.backends))].sort(),
    maxAbsError: units.reduce((max, u) => Math.max(max, u.maxAbsError), 0),
    maxRelError: units.reduce((max, u) => Math.max(max, u.maxRelError), 0),
    countsMatch: units.every((u) => u.countsMatch),
    kernelSeconds: timed.reduce((sum, t) => sum + t.kernelSeconds, 0),
    referenceSeconds: timed.reduce((sum, t) => sum + t.referenceSeconds, 0),
    units
  }
}

function checkUnit(unit: SampledUnit, results: ReadonlyArray<AttentionTileResult>): { outcome: UnitOutcome; kernelSeconds: number; referenceSeconds: number } {
  const { rows, headDimV } = unit
  const realRows = unit.tasks[0]!.realRows
  let kernel: ArrayLike<number>
  let reference: ArrayLike<number>

  if (unit.kind === "splits") {
    kernel = combineSplits(results.map((r) => r.kernelState), rows, headDimV)
    reference = combineSplits(results.map((r) => ({ rowMax: r.referenceRowMax, rowSum: r.referenceRowSum, acc: r.referenceAcc })), rows, headDimV)
  } else {
    const result = results[0]!
    kernel = normalizedOutput(result.kernelState, rows, headDimV)
    reference = result.referenceOutput ?? normalizedOutput({ rowSum: result.referenceRowSum, acc: result.referenceAcc }, rows, headDimV)
  }

  const { maxAbs, maxReference } = compare(kernel, reference, rows * headDimV, realRows * headDimV)
  const countsMatch = results.every((result, index) => {
    const expected = unit.expected[index]!
    return (
      result.counted.tensorFlops === expected.tensorFlops &&
      result.counted.expOps === expected.expOps &&
      result.counted.kvBytes === expected.kvBytes
    )
  })

  return {
    outcome: {
      kind: unit.kind,
      reason: unit.reason,
      itemIndices: unit.itemIndices,
      steps: results.reduce((sum, r) => sum + r.counted.steps, 0),
      maxAbsError: maxAbs,
      maxRelError: maxReference > 0 ? maxAbs / maxReference : maxAbs,
      countsMatch,
      backends: [...new Set(results.map((r) => r.backend))]
    },
    kernelSeconds: results.reduce((sum, r) => sum + r.kernelSeconds, 0),
    referenceSeconds: results.reduce((sum, r) => sum + r.referenceSeconds, 0)
  }
}

/**
 * Largest absolute difference over the real rows, and the largest reference
 * magnitude. Padding rows must be exactly zero; a NaN anywhere counts as an
 * infinite error so that it can never pass a tolerance.
 */
function compare(kernel: ArrayLike<number>, reference: ArrayLike<number>, total: number, real: number): { maxAbs: number; maxReference: number } {
  let maxAbs = 0
  let maxReference = 0
  for (let i = 0; i < total; i++) {
    const k = kernel[i]!
    const r = i < real ? reference[i]! : 0
    const difference = Number.isNaN(k) || Number.isNaN(r) ? Infinity : Math.abs(k - r)
    maxAbs = Math.max(maxAbs, difference)
    maxReference = Math.max(maxReference, Math.abs(r))
  }
  return { maxAbs, maxReference }
}
