import { Effect } from "effect"
import { TilePool, type TileExecutionError } from "../exec/pool.js"
import type { Backend, TileResult } from "../exec/task.js"
import type { ExecUnit } from "../exec/unit.js"

export interface UnitOutcome {
  readonly kind: string
  readonly reason: string
  readonly itemIndices: ReadonlyArray<number>
  readonly steps: number
  readonly maxAbsError: number
  readonly maxRelError: number
  readonly countsMatch: boolean
  readonly backends: ReadonlyArray<Backend>
  readonly measured?: Readonly<Record<string, number>> | undefined
}

/** Outcome of executing sampled tiles and checking them against float64 and the model's counts. */
export interface ExecutionCheck {
  /** Tiles (kernel steps) executed. */
  readonly tilesExecuted: number
  readonly tasks: number
  /** The gpu.js backends that actually ran. */
  readonly backends: ReadonlyArray<Backend>
  /** Largest |kernel − float64| over all compared outputs. */
  readonly maxAbsError: number
  /** maxAbsError of each unit divided by the largest |float64| value it compared, maximized over units. */
  readonly maxRelError: number
  /** Every task counted exactly the FLOPs, exp operations and loaded bytes the schedule prices for it. */
  readonly countsMatch: boolean
  readonly kernelSeconds: number
  readonly referenceSeconds: number
  /** Quantities the units measured while checking, summed by name (see NumericCheck.measured). */
  readonly measured: Readonly<Record<string, number>>
  readonly units: ReadonlyArray<UnitOutcome>
}

/** Run every unit's tasks on the pool (all in flight at once) and check the results. */
export function executeUnits(units: ReadonlyArray<ExecUnit>): Effect.Effect<ExecutionCheck, TileExecutionError, TilePool> {
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
    return summarize(outcomes)
  })
}

interface CheckedUnit {
  readonly outcome: UnitOutcome
  readonly kernelSeconds: number
  readonly referenceSeconds: number
}

function summarize(checked: ReadonlyArray<CheckedUnit>): ExecutionCheck {
  const units = checked.map((c) => c.outcome)
  return {
    tilesExecuted: units.reduce((sum, u) => sum + u.steps, 0),
    tasks: checked.length,
    backends: [...new Set(units.flatMap((u) => u.backends))].sort(),
    maxAbsError: units.reduce((max, u) => Math.max(max, u.maxAbsError), 0),
    maxRelError: units.reduce((max, u) => Math.max(max, u.maxRelError), 0),
    countsMatch: units.every((u) => u.countsMatch),
    kernelSeconds: checked.reduce((sum, c) => sum + c.kernelSeconds, 0),
    referenceSeconds: checked.reduce((sum, c) => sum + c.referenceSeconds, 0),
    measured: sumMeasured(units),
    units
  }
}

function sumMeasured(units: ReadonlyArray<UnitOutcome>): Record<string, number> {
  const sums: Record<string, number> = {}
  for (const unit of units) {
    for (const [name, value] of Object.entries(unit.measured ?? {})) sums[name] = (sums[name] ?? 0) + value
  }
  return sums
}

/** Check a unit's numerics with its own comparison and its counts against the schedule's. */
export function checkUnit(unit: ExecUnit, results: ReadonlyArray<TileResult>): CheckedUnit {
  const { maxAbsError, maxReference, measured } = unit.check(results)
  const countsMatch = results.every((result, index) => {
    const expected = unit.expected[index]!
    return (
      result.counted.tensorFlops === expected.tensorFlops &&
      result.counted.expOps === expected.expOps &&
      result.counted.loadBytes === expected.loadBytes
    )
  })
  return {
    outcome: {
      kind: unit.kind,
      reason: unit.reason,
      itemIndices: unit.itemIndices,
      steps: results.reduce((sum, r) => sum + r.counted.steps, 0),
      maxAbsError,
      maxRelError: maxReference > 0 ? maxAbsError / maxReference : maxAbsError,
      countsMatch,
      backends: [...new Set(results.map((r) => r.backend))],
      ...(measured ? { measured } : {})
    },
    kernelSeconds: results.reduce((sum, r) => sum + r.kernelSeconds, 0),
    referenceSeconds: results.reduce((sum, r) => sum + r.referenceSeconds, 0)
  }
}
