import { describe, expect, it } from "vitest"
import { deviceRates } from "../../../src/hardware/device.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { planDense } from "../../../src/variants/dense/plan.js"
import { sampleDense, type SampledUnit } from "../../../src/variants/dense/sample.js"
import type { AttentionShape } from "../../../src/workload/shape.js"

const device = deviceRates(loadProfile("h100-sxm"), "bf16")
const options = { seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" as const }

function shape(seqLenQ: number, seqLenKV: number, batch = 1): AttentionShape {
  return { batch, heads: 32, kvHeads: 8, headDim: 128, headDimV: 128, seqLenQ, seqLenKV, causal: true, dtype: "bf16" }
}

const reasons = (units: ReadonlyArray<SampledUnit>) => units.map((u) => u.reason)
const steps = (units: ReadonlyArray<SampledUnit>) => units.reduce((sum, u) => sum + u.tasks.reduce((n, t) => n + t.stepStart.length, 0), 0)

describe("dense tile sampling", () => {
  it("128k prefill covers required tiles", () => {
    const plan = planDense({ shape: shape(131072, 131072), phase: "prefill" }, device)

    const units = sampleDense(plan.schedule, options)

    expect(reasons(units)).toEqual(expect.arrayContaining(["first", "last", "diagonal", "interior", "whole-item"]))
    expect(steps(units)).toBeLessThanOrEqual(options.budgetSteps)
  })

  it("first and last tiles are the schedule's", () => {
    const plan = planDense({ shape: shape(8192, 8192), phase: "prefill" }, device)
    const schedule = plan.schedule
    const lastItem = schedule.item(schedule.forwardItems - 1)
    const lastStep = schedule.steps(lastItem).at(-1)!

    const units = sampleDense(schedule, options)
    const first = units.find((u) => u.reason === "first")!
    const last = units.find((u) => u.reason === "last")!

    expect(first.itemIndices).toEqual([0])
    expect(first.tasks[0]!.stepStart[0]).toBe(0)
    expect(last.itemIndices).toEqual([schedule.forwardItems - 1])
    expect(last.tasks[0]!.stepStart[0]).toBe(lastStep.start)
  })

  it("split-KV decode samples a combine", () => {
    const plan = planDense({ shape: shape(1, 16384, 1), phase: "decode" }, device)
    expect(plan.tiling.splits).toBeGreaterThan(1)

    const units = sampleDense(plan.schedule, options)
    const combine = units.find((u) => u.kind === "splits")

    expect(combine).toBeDefined()
    expect(combine!.tasks.length).toBeGreaterThanOrEqual(2)
  })

  it("same seed, same sample", () => {
    const plan = planDense({ shape: shape(32768, 32768), phase: "prefill" }, device)

    const a = sampleDense(plan.schedule, options)
    const b = sampleDense(plan.schedule, options)

    expect(a.map((u) => [u.reason, u.itemIndices, Array.from(u.tasks[0]!.stepStart)])).toEqual(
      b.map((u) => [u.reason, u.itemIndices, Array.from(u.tasks[0]!.stepStart)])
    )
    expect(Array.from(a[2]!.tasks[0]!.q)).toEqual(Array.from(b[2]!.tasks[0]!.q))
  })

  it("expected counts come from the schedule", () => {
    const plan = planDense({ shape: shape(4096, 4096), phase: "prefill" }, device)
    const schedule = plan.schedule

    const units = sampleDense(schedule, options)
    const whole = units.find((u) => u.kind === "item")!
    const item = schedule.item(whole.itemIndices[0]!)
    const itemSteps = schedule.steps(item)

    expect(whole.expected[0]!.tensorFlops).toBe(itemSteps.length * 2 * item.rows * schedule.tiling.blockN * 256)
    expect(whole.tasks[0]!.stepStart.length).toBe(itemSteps.length)
  })
})
