import { describe, expect, it } from "vitest"
import { seededRandom } from "../../src/exec/data.js"
import type { PlannedBatch } from "../../src/validate/batching.js"
import { extrapolate, ratioEstimate, scaledMakespan } from "../../src/validate/extrapolate.js"
import { listScheduleMakespan } from "../../src/validate/host-model.js"

/** Batches of one task each, with no overhead: a batch's seconds are its task's. */
function batchesOf(seconds: ReadonlyArray<number>, overhead = 0): PlannedBatch[] {
  return seconds.map((s, index) => ({
    id: `b${index}`,
    seconds: s + overhead,
    tasks: [{ seconds: s, task: undefined as never, expected: undefined as never, work: undefined as never }]
  }))
}

describe("ratio estimator", () => {
  it("exact proportional sample", () => {
    const pairs = [1, 2, 3, 4].map((p) => ({ predictedSeconds: p, measuredSeconds: 1.25 * p }))

    const estimate = ratioEstimate(pairs, 0.1)

    expect(estimate.ratio).toBeCloseTo(1.25, 12)
    expect(estimate.standardError).toBeCloseTo(0, 12)
    expect(estimate.low).toBeCloseTo(1.25, 12)
    expect(estimate.high).toBeCloseTo(1.25, 12)
  })

  it("whole population has no error", () => {
    const pairs = [1, 2, 3].map((p, i) => ({ predictedSeconds: p, measuredSeconds: p * (1 + 0.1 * i) }))

    const estimate = ratioEstimate(pairs, 1)

    expect(estimate.standardError).toBe(0)
    expect(estimate.low).toBe(estimate.ratio)
  })

  it("one task gives an unbounded interval", () => {
    const estimate = ratioEstimate([{ predictedSeconds: 1, measuredSeconds: 2 }], 0.01)

    expect(estimate.ratio).toBe(2)
    expect(estimate.high).toBe(Number.POSITIVE_INFINITY)
  })

  it("interval covers the true ratio", () => {
    // Population: 2000 tasks with noisy times around 1.1 × predicted. A 95 %
    // interval from 40 random tasks must hold the population ratio in most of
    // 300 seeded draws (binomial: at least 88 % with overwhelming probability).
    const random = seededRandom(42)
    const predicted = Array.from({ length: 2000 }, () => 0.5 + 4 * random())
    const measured = predicted.map((p) => 1.1 * p * (1 + 0.2 * (random() - 0.5)))
    const truth = measured.reduce((a, b) => a + b) / predicted.reduce((a, b) => a + b)

    let covered = 0
    const draws = 300
    for (let draw = 0; draw < draws; draw++) {
      const pairs = Array.from({ length: 40 }, () => {
        const index = Math.floor(random() * predicted.length)
        return { predictedSeconds: predicted[index]!, measuredSeconds: measured[index]! }
      })
      const estimate = ratioEstimate(pairs, 40 / 2000)
      if (truth >= estimate.low && truth <= estimate.high) covered++
    }

    expect(covered / draws).toBeGreaterThan(0.88)
    expect(covered / draws).toBeLessThan(1)
  })
})

describe("extrapolation to the schedule", () => {
  it("ratio one keeps the prediction", () => {
    const batches = batchesOf([5, 3, 3, 2, 1], 0.1)

    expect(scaledMakespan(batches, 2, 1)).toBeCloseTo(listScheduleMakespan(batches.map((b) => b.seconds), 2), 12)
  })

  it("scales work but not overhead", () => {
    const batches = batchesOf([4, 4], 1)

    // One worker: two batches of (1 overhead + 2 × 4 work).
    expect(scaledMakespan(batches, 1, 2)).toBeCloseTo(18, 12)
  })

  it("sample of the whole schedule is exact", () => {
    const seconds = [6, 5, 4, 3, 2, 1]
    const batches = batchesOf(seconds)
    const pairs = seconds.map((s) => ({ predictedSeconds: s, measuredSeconds: 0.8 * s }))

    const result = extrapolate(pairs, 60, { batches, steps: 60 }, 3)

    expect(result.ratio).toBeCloseTo(0.8, 12)
    expect(result.seconds).toBeCloseTo(0.8 * listScheduleMakespan(seconds, 3), 12)
    expect(result.secondsLow).toBeCloseTo(result.seconds, 12)
    expect(result.secondsHigh).toBeCloseTo(result.seconds, 12)
  })

  it("interval brackets the estimate", () => {
    const batches = batchesOf([3, 2, 2, 1])
    const pairs = [
      { predictedSeconds: 1, measuredSeconds: 1.2 },
      { predictedSeconds: 2, measuredSeconds: 1.9 },
      { predictedSeconds: 1, measuredSeconds: 1.1 }
    ]

    const result = extrapolate(pairs, 4, { batches, steps: 40 }, 2)

    expect(result.secondsLow).toBeLessThan(result.seconds)
    expect(result.secondsHigh).toBeGreaterThan(result.seconds)
  })
})

describe("run-to-run variation", () => {
  it("widens the interval", () => {
    const pairs = [1, 2, 3, 4].map((p, i) => ({ predictedSeconds: p, measuredSeconds: p * (1 + 0.01 * i) }))

    const steady = ratioEstimate(pairs, 0.1, [1.02, 1.02, 1.02])
    const noisy = ratioEstimate(pairs, 0.1, [0.95, 1.02, 1.09])

    expect(steady.standardError).toBeCloseTo(ratioEstimate(pairs, 0.1).standardError, 12)
    expect(noisy.standardError).toBeGreaterThan(steady.standardError)
    // Variance of the repeats 0.0049, added twice over three repeats.
    expect(noisy.standardError ** 2 - steady.standardError ** 2).toBeCloseTo((2 * 0.0049) / 3, 9)
  })
})
