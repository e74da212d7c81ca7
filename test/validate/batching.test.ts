import { describe, expect, it } from "vitest"
import { seededRandom } from "../../src/exec/data.js"
import { groupIntoBatches, type PlannedTask } from "../../src/validate/batching.js"
import { listScheduleMakespan, type HostModel } from "../../src/validate/host-model.js"

const model: HostModel = { backend: "webasm", workers: 2, dispatchSeconds: 1e-4, dispatchPerTaskSeconds: 0, referenceTaskSeconds: undefined, stepModels: {} }

function tasks(seconds: ReadonlyArray<number>): PlannedTask[] {
  return seconds.map((s, index) => ({ seconds: s, task: { id: `t${index}` } as never, expected: undefined as never, work: { model: "m", counts: {} } }))
}

/** Brute force: try every assignment of durations to workers and keep the best finish (an LPT list schedule can only be as good or worse). */
function optimalMakespan(durations: ReadonlyArray<number>, workers: number): number {
  let best = Number.POSITIVE_INFINITY
  const loads = new Array<number>(workers).fill(0)
  const place = (index: number): void => {
    if (index === durations.length) {
      best = Math.min(best, Math.max(...loads))
      return
    }
    for (let w = 0; w < workers; w++) {
      loads[w]! += durations[index]!
      place(index + 1)
      loads[w]! -= durations[index]!
    }
  }
  place(0)
  return best
}

describe("list schedule makespan", () => {
  it("one worker sums durations", () => {
    expect(listScheduleMakespan([3, 1, 2], 1)).toBe(6)
  })

  it("matches a hand schedule", () => {
    // Workers free at 0, 0 → 5 | 4 → 5 | 4+3 → 5+2 | 7 → finish 8 with the 1 on the first free.
    expect(listScheduleMakespan([5, 4, 3, 2, 1], 2)).toBe(8)
  })

  it("longest first is within 4/3 of optimal", () => {
    const random = seededRandom(7)
    for (let trial = 0; trial < 40; trial++) {
      const durations = Array.from({ length: 7 }, () => 1 + Math.floor(random() * 9)).sort((a, b) => b - a)
      const workers = 2 + (trial % 2)
      const optimal = optimalMakespan(durations, workers)

      const lpt = listScheduleMakespan(durations, workers)

      expect(lpt).toBeGreaterThanOrEqual(optimal)
      expect(lpt).toBeLessThanOrEqual((4 / 3) * optimal + 1e-9)
    }
  })

  it("rejects a fractional worker count", () => {
    expect(() => listScheduleMakespan([1], 1.5)).toThrow(RangeError)
  })
})

describe("batching", () => {
  it("every task in exactly one batch", () => {
    const random = seededRandom(3)
    const planned = tasks(Array.from({ length: 200 }, () => random() * 0.01))

    const batches = groupIntoBatches(model, planned, 2)

    const ids = batches.flatMap((b) => b.tasks.map((t) => t.task.id)).sort()
    expect(ids).toEqual(planned.map((t) => t.task.id).sort())
  })

  it("batches go longest first", () => {
    const random = seededRandom(4)
    const batches = groupIntoBatches(model, tasks(Array.from({ length: 100 }, () => random() * 0.02)), 2)

    for (let i = 1; i < batches.length; i++) expect(batches[i]!.seconds).toBeLessThanOrEqual(batches[i - 1]!.seconds)
  })

  it("small work still spreads over workers", () => {
    // 40 tasks of 1 ms: below the 4 ms batch target, yet at least 4 batches per worker.
    const batches = groupIntoBatches(model, tasks(new Array(40).fill(0.001)), 2)

    expect(batches.length).toBeGreaterThanOrEqual(8)
  })

  it("tiny tasks share batches", () => {
    // 1000 tasks of 0.1 ms against a 4 ms target: about 40 tasks per batch.
    const batches = groupIntoBatches(model, tasks(new Array(1000).fill(1e-4)), 2)

    expect(batches.length).toBeLessThanOrEqual(30)
    expect(batches.length).toBeGreaterThanOrEqual(20)
  })

  it("batch time adds dispatch", () => {
    const batches = groupIntoBatches(model, tasks([0.5]), 1)

    expect(batches[0]!.seconds).toBeCloseTo(0.5 + model.dispatchSeconds, 12)
  })
})
