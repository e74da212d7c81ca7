import { Effect, Schema } from "effect"
import { describe, expect, it } from "vitest"
import { TilePool, tilePoolLayer } from "../../../src/exec/pool.js"
import type { AttentionTileResult } from "../../../src/exec/task.js"
import type { ExecUnit } from "../../../src/exec/unit.js"
import { deviceRates } from "../../../src/hardware/device.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { executeUnits, type ExecutionCheck } from "../../../src/validate/execute.js"
import { nsaVariant } from "../../../src/variants/nsa/index.js"
import { NsaData } from "../../../src/variants/nsa/data.js"
import { visibleCompressed } from "../../../src/variants/nsa/geometry.js"
import { NsaOptions } from "../../../src/variants/nsa/options.js"
import { planNsa, type NsaPlan } from "../../../src/variants/nsa/plan.js"
import { NsaTaskBuilder } from "../../../src/variants/nsa/tasks.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

// The pool runs the compiled worker in dist/: `npm test` builds before vitest runs.
const device = deviceRates(loadProfile("h800-sxm"), "bf16")
const run = <A>(effect: Effect.Effect<A, unknown, never>): Promise<A> => Effect.runPromise(effect)
const execute = (units: ReadonlyArray<ExecUnit>): Promise<ExecutionCheck> => run(executeUnits(units).pipe(Effect.provide(tilePoolLayer({ workers: 2 }))))
const options = (raw: Record<string, unknown> = {}): NsaOptions => Schema.decodeUnknownSync(NsaOptions)(raw)

function shape(fields: Partial<AttentionShape> & Pick<AttentionShape, "seqLenQ" | "seqLenKV">): AttentionShape {
  return { batch: 1, heads: 8, kvHeads: 2, headDim: 64, headDimV: 32, causal: true, dtype: "bf16", ...fields }
}

function sample(s: AttentionShape, phase: Phase, budgetSteps: number, raw: Record<string, unknown> = {}): ReadonlyArray<ExecUnit> {
  const plan = nsaVariant.plan({ variant: "nsa", shape: s, phase, options: options(raw) }, device)
  return plan.sample({ seed: 3, budgetSteps, wholeItemMaxSteps: 8, backend: "webasm" })
}

const stepsOf = (units: ReadonlyArray<ExecUnit>) => units.reduce((sum, u) => sum + u.tasks.reduce((n, t) => n + (t.kind === "attention-forward" ? t.stepStart.length : 0), 0), 0)

describe("NSA executed tiles", () => {
  it("prefill sample matches float64", async () => {
    const units = sample(shape({ seqLenQ: 1024, seqLenKV: 1024 }), "prefill", 80, { selectCount: 4, window: 128 })
    const kinds = units.map((u) => `${u.kind}:${u.reason}`)

    const check = await execute(units)

    expect(stepsOf(units)).toBeLessThanOrEqual(80)
    expect(kinds).toEqual(expect.arrayContaining(["compressed-step:first", "compressed-step:last", "selected-step:first", "selected-step:last", "gated:no compressed token"]))
    expect(kinds.some((k) => k.startsWith("gated:") && !k.endsWith("no compressed token"))).toBe(true)
    expect(kinds.some((k) => k.startsWith("window-"))).toBe(true)
    expect(check.maxAbsError).toBeLessThanOrEqual(1e-3)
    expect(check.countsMatch).toBe(true)
  })

  it("decode gated unit at paper settings", async () => {
    const s: AttentionShape = { batch: 2, heads: 64, kvHeads: 4, headDim: 192, headDimV: 128, seqLenQ: 1, seqLenKV: 4096, causal: true, dtype: "bf16" }
    const units = sample(s, "decode", 400)
    const gated = units.filter((u) => u.kind === "gated")

    const check = await execute(units)

    expect(gated.map((u) => u.reason)).toEqual(["last query"])
    expect(check.maxAbsError).toBeLessThanOrEqual(1e-3)
    expect(check.countsMatch).toBe(true)
    expect(check.units.every((u) => u.countsMatch)).toBe(true)
  })

  it("query before any compressed token", async () => {
    const units = sample(shape({ seqLenQ: 512, seqLenKV: 512 }), "prefill", 40, { selectCount: 4, window: 64 })
    const unit = units.find((u) => u.reason === "no compressed token")!
    const compressedTasks = unit.tasks.filter((t) => t.id.includes("compressed"))

    // Check the tasks before running them: the pool moves their buffers to the workers.
    expect(compressedTasks.length).toBeGreaterThan(0)
    // The compressed tile runs with every row masked: the schedule's item also contains later rows that do see tokens.
    expect(compressedTasks.every((t) => t.kind === "attention-forward" && t.stepStart.length >= 1 && t.rowHi.every((hi) => hi === 0))).toBe(true)

    const check = await execute([unit])

    // A NaN would make the error infinite.
    expect(check.units[0]!.maxAbsError).toBeLessThanOrEqual(1e-3)
    expect(check.countsMatch).toBe(true)
  })

  it("whole pass of a tiny case", async () => {
    const s = shape({ batch: 2, heads: 4, kvHeads: 2, headDim: 16, headDimV: 8, seqLenQ: 45, seqLenKV: 45 })
    const plan = nsaVariant.plan({ variant: "nsa", shape: s, phase: "prefill", options: options({ compressBlock: 8, compressStride: 4, selectBlock: 16, selectCount: 3, window: 10 }) }, device)
    const units = plan.fullUnits!({ seed: 5, backend: "webasm" })

    const check = await execute(units)

    expect(units.length).toBe(2 * 2 * 45)
    expect(check.maxAbsError).toBeLessThanOrEqual(1e-3)
    expect(check.countsMatch).toBe(true)
  })
})

describe("NSA executed causality", () => {
  const s = shape({ seqLenQ: 300, seqLenKV: 300 })
  const plan: NsaPlan = planNsa({ variant: "nsa", shape: s, phase: "prefill", options: options({ selectBlock: 32, selectCount: 4, window: 48 }) }, device)
  const cutoff = 150

  function gatedUnits(perturb: boolean, queries: ReadonlyArray<number>): ExecUnit[] {
    const data = new NsaData({ seed: 9, dtype: "bf16", headDim: s.headDim, headDimV: s.headDimV, geometry: plan.geometry, perturbation: perturb ? { after: cutoff, seed: 0x51 } : undefined })
    const builder = new NsaTaskBuilder(plan, data, "webasm", 9)
    return queries.map((query) => builder.gated(0, 1, query, "probe"))
  }

  /** Runs every task on the pool and returns its kernel state (row max, row sum, output accumulator). */
  async function kernelOutputs(units: ReadonlyArray<ExecUnit>): Promise<number[][]> {
    const tasks = units.flatMap((u) => u.tasks)
    const results = await run(
      Effect.gen(function* () {
        const pool = yield* TilePool
        return yield* Effect.forEach(tasks, (task) => pool.run(task), { concurrency: "unbounded" })
      }).pipe(Effect.provide(tilePoolLayer({ workers: 2 })))
    )
    return (results as ReadonlyArray<AttentionTileResult>).map((r) => [...r.kernelState.rowMax, ...r.kernelState.rowSum, ...r.kernelState.acc])
  }

  it("perturbing later tokens changes nothing earlier", async () => {
    const early = [0, 30, 31, 63, 64, 149, 150]
    expect(visibleCompressed(plan.geometry, cutoff)).toBeGreaterThan(0)

    const [base, perturbed] = await Promise.all([kernelOutputs(gatedUnits(false, early)), kernelOutputs(gatedUnits(true, early))])

    expect(perturbed.length).toBe(base.length)
    perturbed.forEach((output, index) => expect(output, `task ${index}`).toEqual(base[index]))
  })

  it("the probe sees later changes", async () => {
    const [base, perturbed] = await Promise.all([kernelOutputs(gatedUnits(false, [151])), kernelOutputs(gatedUnits(true, [151]))])
    expect(perturbed).not.toEqual(base)
  })
})
