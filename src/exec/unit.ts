import type { TileResult, TileTask } from "./task.js"

/** Work the schedule prices for one task; the worker must count exactly the same. */
export interface ExpectedCounts {
  readonly tensorFlops: number
  readonly expOps: number
  readonly loadBytes: number
}

/** Numerical comparison of a unit's kernel output with its float64 reference. */
export interface NumericCheck {
  /** Largest |kernel − float64| over the compared outputs (Infinity if a NaN appeared). */
  readonly maxAbsError: number
  /** Largest |float64| value compared, for a relative error. */
  readonly maxReference: number
  /**
   * Quantities the variant measured while checking (for example how often the
   * heads of a GQA group selected the same blocks), summed over units by name.
   */
  readonly measured?: Readonly<Record<string, number>> | undefined
}

/**
 * A group of tile tasks checked together: one tile from a given state, a whole
 * work item, split-KV partials combined on the host, a variant's branches
 * combined by their gates. The variant that builds the unit knows how to
 * compare its results with the reference, so the check travels with it.
 */
export interface ExecUnit {
  readonly kind: string
  readonly reason: string
  readonly itemIndices: ReadonlyArray<number>
  readonly tasks: ReadonlyArray<TileTask>
  readonly expected: ReadonlyArray<ExpectedCounts>
  check(results: ReadonlyArray<TileResult>): NumericCheck
}

/**
 * Compare a kernel output with a reference over the first `real` elements; the
 * elements after them (MMA padding) must be exactly zero.
 */
export function compareOutputs(kernel: ArrayLike<number>, reference: ArrayLike<number>, total: number, real = total): NumericCheck {
  let maxAbsError = 0
  let maxReference = 0
  for (let i = 0; i < total; i++) {
    const k = kernel[i]!
    const r = i < real ? reference[i]! : 0
    const difference = Number.isNaN(k) || Number.isNaN(r) ? Infinity : Math.abs(k - r)
    maxAbsError = Math.max(maxAbsError, difference)
    maxReference = Math.max(maxReference, Math.abs(r))
  }
  return { maxAbsError, maxReference }
}

export function mergeChecks(checks: ReadonlyArray<NumericCheck>): NumericCheck {
  return {
    maxAbsError: checks.reduce((max, c) => Math.max(max, c.maxAbsError), 0),
    maxReference: checks.reduce((max, c) => Math.max(max, c.maxReference), 0)
  }
}
