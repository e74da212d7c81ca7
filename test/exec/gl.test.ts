import { describe, expect, it } from "vitest"
import { Effect } from "effect"
import { executeUnits } from "../../src/validate/execute.js"
import { tilePoolLayer } from "../../src/exec/pool.js"
import { deviceRates } from "../../src/hardware/device.js"
import { loadProfile } from "../../src/hardware/load.js"
import { planDense } from "../../src/variants/dense/plan.js"
import { sampleDense } from "../../src/variants/dense/sample.js"

// The headless-GL lane. CI runs it under xvfb-run with ATTNSIM_REQUIRE_GL=1, where
// it must see the gl backend really run: npm drops the optional `gl` package
// silently when its build fails, and gpu.js would then fall back to WebAssembly.
const required = process.env.ATTNSIM_REQUIRE_GL === "1"

describe.skipIf(!required)("headless GL backend", () => {
  it("runs sampled tiles on gl", async () => {
    const device = deviceRates(loadProfile("h100-sxm"), "bf16")
    const shape = { batch: 1, heads: 8, kvHeads: 2, headDim: 64, headDimV: 64, seqLenQ: 1024, seqLenKV: 1024, causal: true, dtype: "bf16" as const }
    const plan = planDense({ shape, phase: "prefill" }, device)
    const units = sampleDense(plan.schedule, { seed: 3, budgetSteps: 8, wholeItemMaxSteps: 4, backend: "gl" })

    const check = await Effect.runPromise(executeUnits(units).pipe(Effect.provide(tilePoolLayer({ backend: "gl" }))))

    expect(check.backends).toEqual(["gl"])
    expect(check.maxAbsError).toBeLessThan(1e-3)
    expect(check.countsMatch).toBe(true)
  })
})
