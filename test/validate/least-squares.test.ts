import { describe, expect, it } from "vitest"
import { fitNonNegativeRelative } from "../../src/validate/least-squares.js"

describe("non-negative relative fit", () => {
  it("recovers exact coefficients", () => {
    const rows: number[][] = []
    const observed: number[] = []
    for (const steps of [1, 2, 4, 8]) {
      for (const flops of [1e6, 4e6, 1.6e7]) {
        rows.push([1, steps, flops * steps])
        observed.push(5e-5 + 3e-5 * steps + 6e-10 * flops * steps)
      }
    }

    const fit = fitNonNegativeRelative(rows, observed)

    expect(fit.coefficients[0]).toBeCloseTo(5e-5, 12)
    expect(fit.coefficients[1]).toBeCloseTo(3e-5, 12)
    expect(fit.coefficients[2]! / 6e-10).toBeCloseTo(1, 9)
    expect(Math.max(...fit.relativeResiduals.map(Math.abs))).toBeLessThan(1e-9)
  })

  it("clamps a negative term to zero", () => {
    // y = 2x exactly, plus a constant column that least squares would make negative.
    const rows = [1, 2, 3, 4].map((x) => [1, x])
    const observed = [1.5, 3.8, 6, 8.1]

    const fit = fitNonNegativeRelative(rows, observed)

    expect(fit.coefficients[0]).toBe(0)
    expect(fit.coefficients[1]).toBeGreaterThan(0)
  })

  it("dependent columns are an error", () => {
    const rows = [1, 2, 3].map((x) => [x, 2 * x])

    expect(() => fitNonNegativeRelative(rows, [1, 2, 3])).toThrow(/linearly dependent/)
  })
})
