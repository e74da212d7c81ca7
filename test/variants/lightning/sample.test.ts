import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { tilePoolLayer } from "../../../src/exec/pool.js"
import { executeUnits } from "../../../src/validate/execute.js"
import { LightningOptions, resolveSettings } from "../../../src/variants/lightning/options.js"
import { planLightning } from "../../../src/variants/lightning/plan.js"
import { sampleLightning, type LightningUnit } from "../../../src/variants/lightning/sample.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"
import { device, minimaxShape } from "./helpers.js"

const options = { seed: 1, budgetSteps: 8, wholeItemMaxSteps: 4, backend: "webasm" as const }

function planned(shape: AttentionShape, phase: Phase, overrides: Partial<LightningOptions> = {}) {
  const settings = resolveSettings(LightningOptions.make(overrides), shape)
  return planLightning({ shape, phase, settings }, device("h100-sxm"))
}

const reasons = (units: ReadonlyArray<LightningUnit>) => units.map((u) => u.reason)
const steps = (units: ReadonlyArray<LightningUnit>) => units.reduce((sum, u) => sum + u.tasks.reduce((n, t) => n + t.stepRows.length, 0), 0)

describe("lightning sampling", () => {
  it("1M prefill covers required blocks", () => {
    const plan = planned(minimaxShape(1048576), "prefill")

    const units = sampleLightning(plan.schedule, options)

    expect(reasons(units)).toEqual(expect.arrayContaining(["first", "last", "fastest-decay", "chain"]))
    expect(steps(units)).toBeLessThanOrEqual(options.budgetSteps)
  })

  it("first and last are the schedule's", () => {
    const plan = planned(minimaxShape(5000), "prefill")
    const schedule = plan.schedule

    const units = sampleLightning(schedule, options)
    const first = units.find((u) => u.reason === "first")!
    const last = units.find((u) => u.reason === "last")!

    expect(first.itemIndices[0]).toBe(0)
    expect(first.tasks[0]!.state).toBeUndefined()
    expect(Array.from(last.tasks[0]!.stepRows)).toEqual([5000 - 19 * 256])
    expect(last.itemIndices).toContain(schedule.lanes - 1)
  })

  it("fastest-decay block is full", () => {
    const plan = planned(minimaxShape(65536), "prefill")

    const unit = sampleLightning(plan.schedule, options).find((u) => u.reason === "fastest-decay")!

    expect(unit.tasks[0]!.logDecay).toBe(Math.fround(-Math.pow(2, -1 / 8) * (1 + 1e-5)))
    expect(Array.from(unit.tasks[0]!.stepRows)).toEqual([256])
  })

  it("same seed, same sample", () => {
    const plan = planned(minimaxShape(65536), "prefill")

    const a = sampleLightning(plan.schedule, options)
    const b = sampleLightning(plan.schedule, options)

    expect(a.map((u) => [u.reason, u.itemIndices])).toEqual(b.map((u) => [u.reason, u.itemIndices]))
    expect(Array.from(a[3]!.tasks[0]!.state!)).toEqual(Array.from(b[3]!.tasks[0]!.state!))
  })

  it("expected counts come from the schedule", () => {
    const plan = planned(minimaxShape(1, 4096), "decode")
    const schedule = plan.schedule

    const units = sampleLightning(schedule, options)

    for (const unit of units) expect(unit.expected[0]).toEqual(schedule.taskCounts(0, 1, true))
    expect(units.every((u) => u.tasks[0]!.loadsState)).toBe(true)
  })

  it("chunk after a prefix loads its state", () => {
    const plan = planned(minimaxShape(2048, 6144), "prefill")

    const first = sampleLightning(plan.schedule, options).find((u) => u.reason === "first")!

    expect(first.tasks[0]!.loadsState).toBe(true)
    expect(first.tasks[0]!.state!.some((x) => x !== 0)).toBe(true)
  })
})

// The pool runs the compiled worker in dist/: `npm test` builds before vitest runs.
describe("lightning sampled execution", () => {
  const cases: ReadonlyArray<[string, AttentionShape, Phase, Partial<LightningOptions>]> = [
    ["1M prefill, fused", minimaxShape(1048576), "prefill", {}],
    ["prefill, split layout", minimaxShape(5000), "prefill", { scheme: "split" }],
    ["chunked prefill, block 64", minimaxShape(3000, 7000), "prefill", { blockSize: 64 }],
    ["1M decode", minimaxShape(1, 1048576, 4), "decode", {}]
  ]
  for (const [name, shape, phase, overrides] of cases) {
    it(`${name} matches float64`, async () => {
      const units = sampleLightning(planned(shape, phase, overrides).schedule, options)
      // Counted before running: the pool moves the task buffers to the workers.
      const sampledSteps = steps(units)

      const check = await Effect.runPromise(executeUnits(units).pipe(Effect.provide(tilePoolLayer({ workers: 2 }))))

      expect(check.countsMatch).toBe(true)
      expect(check.maxAbsError).toBeLessThanOrEqual(1e-3)
      expect(check.tilesExecuted).toBe(sampledSteps)
    })
  }
})
