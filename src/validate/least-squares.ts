/**
 * Weighted least squares with non-negative coefficients for small models (a
 * handful of terms): solve the normal equations, drop the most negative
 * coefficient and solve again until none is negative (an active-set method
 * that is exact when at most one constraint binds at a time, which is the case
 * for the per-step time models fitted here).
 */
export interface LeastSquaresFit {
  readonly coefficients: ReadonlyArray<number>
  /** Fitted value of each row. */
  readonly fitted: ReadonlyArray<number>
  /** (fitted − observed) / observed of each row. */
  readonly relativeResiduals: ReadonlyArray<number>
}

/**
 * Fit y ≈ X·c with c ≥ 0, minimizing Σ ((X·c − y) / y)², so every row counts
 * by its relative error (the measurements span orders of magnitude).
 */
export function fitNonNegativeRelative(rows: ReadonlyArray<ReadonlyArray<number>>, observed: ReadonlyArray<number>): LeastSquaresFit {
  if (rows.length === 0) throw new RangeError("a fit needs at least one measurement")
  const terms = rows[0]!.length
  const active = new Set(Array.from({ length: terms }, (_, index) => index))
  let coefficients = new Array<number>(terms).fill(0)

  for (;;) {
    const columns = [...active]
    const solved = solveWeighted(rows, observed, columns)
    coefficients = new Array<number>(terms).fill(0)
    columns.forEach((column, index) => (coefficients[column] = solved[index]!))
    const negative = columns.filter((column) => coefficients[column]! < 0)
    if (negative.length === 0 || active.size === 1) break
    const worst = negative.reduce((a, b) => (coefficients[a]! < coefficients[b]! ? a : b))
    active.delete(worst)
  }

  const clamped = coefficients.map((c) => Math.max(0, c))
  const fitted = rows.map((row) => row.reduce((sum, x, index) => sum + x * clamped[index]!, 0))
  return { coefficients: clamped, fitted, relativeResiduals: fitted.map((f, index) => (f - observed[index]!) / observed[index]!) }
}

/** Solve the normal equations of the relative-error problem over the given columns. */
function solveWeighted(rows: ReadonlyArray<ReadonlyArray<number>>, observed: ReadonlyArray<number>, columns: ReadonlyArray<number>): number[] {
  const size = columns.length
  // Columns are scaled to unit maximum first: FLOP counts (1e7) and per-task
  // terms (1) in one matrix would otherwise make it badly conditioned.
  const scale = columns.map((column) => Math.max(...rows.map((row, r) => Math.abs(row[column]! / observed[r]!))) || 1)
  const normal = Array.from({ length: size }, () => new Array<number>(size + 1).fill(0))
  rows.forEach((row, r) => {
    const weight = 1 / observed[r]!
    const x = columns.map((column, index) => (row[column]! * weight) / scale[index]!)
    const y = observed[r]! * weight
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) normal[i]![j]! += x[i]! * x[j]!
      normal[i]![size]! += x[i]! * y
    }
  })
  return gaussianElimination(normal).map((value, index) => value / scale[index]!)
}

/** Solve an augmented n × (n + 1) system by Gaussian elimination with partial pivoting. */
function gaussianElimination(matrix: number[][]): number[] {
  const n = matrix.length
  for (let column = 0; column < n; column++) {
    let pivot = column
    for (let row = column + 1; row < n; row++) if (Math.abs(matrix[row]![column]!) > Math.abs(matrix[pivot]![column]!)) pivot = row
    ;[matrix[column], matrix[pivot]] = [matrix[pivot]!, matrix[column]!]
    const lead = matrix[column]![column]!
    if (Math.abs(lead) < 1e-300) throw new RangeError("the fit's terms are linearly dependent on the measured shapes; vary the shapes more")
    for (let row = 0; row < n; row++) {
      if (row === column) continue
      const factor = matrix[row]![column]! / lead
      for (let k = column; k <= n; k++) matrix[row]![k]! -= factor * matrix[column]![k]!
    }
  }
  return matrix.map((row, index) => row[n]! / row[index]!)
}
