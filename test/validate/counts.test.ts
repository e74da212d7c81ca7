import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { runAttentionTile } from "../../src/exec/attention-step.js"
import { tilePoolLayer } from "../../src/exec/pool.js"
import type { AttentionTileTask } from "../../src/exec/task.js"
import type { ExecUnit } from "../../src/exec/unit.js"
import { deviceRates } from "../../src/hardware/device.js"
import { loadProfile } from "../../src/hardware/load.js"
import { groupIntoBatches, planTasks } from "../../src/validate/batching.js"
import type { HostModel } from "../../src/validate/host-model.js"
import { runBatches } from "../../src/validate/run-schedule.js"
import { planDense } from "../../src/variants/dense/plan.js"
import { fullDenseUnits } from "../../src/variants/dense/sample.js"
import type { AttentionShape } from "../../src/workload/shape.js"

// Runs the compiled worker in dist/: `npm test` builds before vitest runs.
const device = deviceRates(loadProfile("h100-sxm"), "bf16")
const shape: AttentionShape = { batch: 1, heads: 2, kvHeads: 1, headDim: 32, headDimV: 32, seqLenQ: 256, seqLenKV: 256, causal: true, dtype: "bf16" }

const model: HostModel = {
  backend: "webasm",
  workers: 2,
  dispatchSeconds: 1e-4,
  dispatchPerTaskSeconds: 2e-5,
  referenceTaskSeconds: undefined,
  stepModels: { "attention-forward": { task: 5e-5, step: 3e-5, rowStep: 4e-7, flop: 6e-10, score: 2e-8, fill: 2e-8 } }
}

function plannedTasks(units: ReadonlyArray<ExecUnit>) {
  return units.flatMap((unit) => unit.tasks.map((task, index) => ({ task, expected: unit.expected[index]! })))
}

describe("exact count check", () => {
  it("whole dense schedule counts equal", async () => {
    const plan = planDense({ shape, phase: "prefill" }, device)
    const units = fullDenseUnits(plan.schedule, { seed: 1, backend: "webasm", dataInWorker: true })
    const batches = groupIntoBatches(model, planTasks(model, plannedTasks(units)), 2)

    const run = await Effect.runPromise(runBatches(batches, { reference: false }).pipe(Effect.provide(tilePoolLayer({ workers: 2 }))))

    expect(run.countsMatch).toBe(true)
    expect(run.mismatchedTasks).toBe(0)
    expect(run.counted).toEqual(run.expected)
    expect(run.counted.tensorFlops).toBe(plan.schedule.classes.filter((c) => c.kernel === "forward").reduce((sum, c) => sum + c.count * c.counts.tensorFlops, 0))
    expect(run.tasks).toBe(units.length)
  })

  it("one wrong expectation is caught", async () => {
    const plan = planDense({ shape, phase: "prefill" }, device)
    const units = fullDenseUnits(plan.schedule, { seed: 1, backend: "webasm", dataInWorker: true })
    const tasks = plannedTasks(units)
    const wrong = tasks.map((t, index) => (index === 3 ? { ...t, expected: { ...t.expected, loadBytes: t.expected.loadBytes + 2 } } : t))
    const batches = groupIntoBatches(model, planTasks(model, wrong), 2)

    const run = await Effect.runPromise(runBatches(batches, { reference: false }).pipe(Effect.provide(tilePoolLayer({ workers: 2 }))))

    expect(run.countsMatch).toBe(false)
    expect(run.mismatchedTasks).toBe(1)
    expect(run.expected.loadBytes - run.counted.loadBytes).toBe(2)
  })
})

describe("tile data made in the worker", () => {
  it("equals data made on the main thread", () => {
    const plan = planDense({ shape: { ...shape, seqLenQ: 128, seqLenKV: 128 }, phase: "prefill" }, device)
    const carried = fullDenseUnits(plan.schedule, { seed: 9, backend: "webasm" })
    const coordinates = fullDenseUnits(plan.schedule, { seed: 9, backend: "webasm", dataInWorker: true })

    for (let index = 0; index < carried.length; index++) {
      const a = carried[index]!.tasks[0] as AttentionTileTask
      const b = coordinates[index]!.tasks[0] as AttentionTileTask
      expect(b.q.length).toBe(0)
      expect(b.fill).toBeDefined()

      const fromMain = runAttentionTile(a)
      const fromCoordinates = runAttentionTile(b)

      expect(Array.from(fromCoordinates.kernelState.acc)).toEqual(Array.from(fromMain.kernelState.acc))
      expect(Array.from(fromCoordinates.referenceOutput!)).toEqual(Array.from(fromMain.referenceOutput!))
    }
  })

  it("reference off leaves it empty", () => {
    const plan = planDense({ shape: { ...shape, seqLenQ: 64, seqLenKV: 64 }, phase: "prefill" }, device)
    const task = fullDenseUnits(plan.schedule, { seed: 9, backend: "webasm" })[0]!.tasks[0] as AttentionTileTask

    const result = runAttentionTile({ ...task, reference: false })

    expect(result.referenceAcc.length).toBe(0)
    expect(result.referenceOutput).toBeUndefined()
    expect(result.counted.steps).toBe(task.stepStart.length)
  })
})
