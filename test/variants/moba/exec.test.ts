import { assert, describe as effectDescribe, it as effectIt } from "@effect/vitest"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { TensorId } from "../../../src/exec/data.js"
import { handlers } from "../../../src/exec/handlers.js"
import { tilePoolLayer } from "../../../src/exec/pool.js"
import type { AttentionTileResult, AttentionTileTask, TileResult, TileTask } from "../../../src/exec/task.js"
import type { ExecUnit } from "../../../src/exec/unit.js"
import { deviceRates } from "../../../src/hardware/device.js"
import { loadProfile } from "../../../src/hardware/load.js"
import { checkUnit, executeUnits } from "../../../src/validate/execute.js"
import { queryPosition } from "../../../src/variants/moba/blocks.js"
import { seededData, type TensorData } from "../../../src/variants/moba/gating.js"
import { runMobaGating } from "../../../src/variants/moba/gating-run.js"
import type { MobaGatingResult, MobaGatingTask } from "../../../src/variants/moba/gating-task.js"
import { measuredOverlap } from "../../../src/variants/moba/index.js"
import { resolveMoba, type MobaOptions } from "../../../src/variants/moba/options.js"
import { planMoba } from "../../../src/variants/moba/plan.js"
import { referenceOutputs } from "../../../src/variants/moba/reference.js"
import { sampleMoba } from "../../../src/variants/moba/sample.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

const device = deviceRates(loadProfile("h100-sxm"), "bf16")
const sampleOptions = { seed: 5, budgetSteps: 40, wholeItemMaxSteps: 8, backend: "webasm" as const }

function shape(seqLen: number, phase: Phase): AttentionShape {
  return { batch: 1, heads: 4, kvHeads: 2, headDim: 32, headDimV: 32, seqLenQ: phase === "decode" ? 1 : seqLen, seqLenKV: seqLen, causal: true, dtype: "bf16" }
}

function plan(seqLen: number, phase: Phase, options: Partial<MobaOptions>) {
  const s = shape(seqLen, phase)
  const config = resolveMoba({ headOverlap: "measured", fixedSparsity: false, ...options }, s)
  return planMoba({ shape: s, phase }, config, device)
}

/** Run a unit's tasks in this thread with the worker's handlers. */
function run(unit: ExecUnit): ReadonlyArray<TileResult> {
  return unit.tasks.map((task) => (handlers as Record<string, (t: TileTask) => TileResult>)[task.kind]!(task))
}

describe("MoBA executed tiles", () => {
  it("prefill units match float64", () => {
    const units = sampleMoba(plan(512, "prefill", { blockSize: 32, topK: 3 }), sampleOptions)

    const outcomes = units.map((unit) => checkUnit(unit, run(unit)).outcome)

    expect(outcomes.map((o) => o.reason)).toEqual(expect.arrayContaining(["gating", "merged", "current-first", "current-last", "history-first", "history-last"]))
    for (const outcome of outcomes) {
      expect(outcome.maxAbsError, outcome.reason).toBeLessThanOrEqual(1e-3)
      expect(outcome.countsMatch, outcome.reason).toBe(true)
    }
  })

  it("decode units match float64", () => {
    const units = sampleMoba(plan(2048, "decode", { blockSize: 64, topK: 4 }), sampleOptions)

    const outcomes = units.map((unit) => checkUnit(unit, run(unit)).outcome)

    expect(outcomes.map((o) => o.reason)).toEqual(expect.arrayContaining(["gating", "merged"]))
    for (const outcome of outcomes) {
      expect(outcome.maxAbsError, outcome.reason).toBeLessThanOrEqual(1e-3)
      expect(outcome.countsMatch, outcome.reason).toBe(true)
    }
  })

  it("top-1 runs the current block", () => {
    const p = plan(512, "prefill", { blockSize: 32, topK: 1 })

    const units = sampleMoba(p, sampleOptions)

    expect(p.history).toBeUndefined()
    const merged = units.find((unit) => unit.kind === "merged")!
    expect(merged.reason).toBe("merged")
    const outcome = checkUnit(merged, run(merged)).outcome
    expect(outcome.maxAbsError).toBeLessThanOrEqual(1e-3)
    expect(outcome.countsMatch).toBe(true)
    // Every task is a current-block tile: rows see only their own block.
    for (const task of merged.tasks as ReadonlyArray<AttentionTileTask>) {
      for (let r = 0; r < task.realRows; r++) expect(Math.floor(task.rowLo[r]! / 32)).toBe(Math.floor((task.rowHi[r]! - 1) / 32))
    }
  })

  it("merged check fails on wrong output", () => {
    const units = sampleMoba(plan(512, "prefill", { blockSize: 32, topK: 3 }), sampleOptions)
    const merged = units.find((unit) => unit.kind === "merged")!
    const results = run(merged) as ReadonlyArray<AttentionTileResult>

    // Drop one history block's partial state: the merge then misses its keys.
    const broken = results.map((result, index) =>
      index === results.length - 1 ? { ...result, kernelState: { ...result.kernelState, rowMax: new Float32Array(result.kernelState.rowMax.length).fill(-1e30) } } : result
    )

    expect(checkUnit(merged, broken).outcome.maxAbsError).toBeGreaterThan(1e-3)
  })

  it("gating check fails on a wrong pick", () => {
    const units = sampleMoba(plan(2048, "decode", { blockSize: 64, topK: 4 }), sampleOptions)
    const gating = units.find((unit) => unit.kind === "gating")!
    const [result] = run(gating) as ReadonlyArray<MobaGatingResult>
    const selected = Float32Array.from(result!.selected)
    // Replace the first row's best history block with a block the float64 gate ranks lowest.
    const reference = result!.referenceScores.subarray(0, 31)
    const worst = Array.from(reference).indexOf(Math.min(...reference))
    selected[0] = worst

    expect(checkUnit(gating, [{ ...result!, selected }]).outcome.maxAbsError).toBe(Infinity)
  })
})

describe("MoBA causality probe", () => {
  const p = 200
  /** Seeded data with every key and value after position p replaced. */
  const perturbed: TensorData = {
    dtype: "bf16",
    fill: (out, offset, dims, key) => {
      const changed = (key.tensor === TensorId.key || key.tensor === TensorId.value) && key.position > p
      seededData("bf16").fill(out, offset, dims, changed ? { ...key, seed: key.seed + 1000 } : key)
    }
  }

  it("reference outputs before p unchanged", () => {
    const s = shape(256, "prefill")
    const config = { blockSize: 16, topK: 3 }

    const before = referenceOutputs(seededData("bf16"), s, config, 1)
    const after = referenceOutputs(perturbed, s, config, 1)

    let changedAfter = 0
    for (let head = 0; head < s.heads; head++) {
      for (let i = 0; i < s.seqLenQ; i++) {
        const same = before[0]![head]![i]!.output.every((value, c) => value === after[0]![head]![i]!.output[c])
        if (queryPosition(s, i) <= p) {
          expect(same).toBe(true)
          expect(after[0]![head]![i]!.selected).toEqual(before[0]![head]![i]!.selected)
        } else if (!same) changedAfter++
      }
    }
    expect(changedAfter).toBeGreaterThan(0)
  })

  it("executed rows before p unchanged", () => {
    // Block 16: the focus tile is block 15 (positions 240 to 255); p = 247 cuts it.
    const cut = 247
    const probe = plan(256, "prefill", { blockSize: 16, topK: 3 })
    const options = { ...sampleOptions, budgetSteps: 64 }
    const changedAfterCut: TensorData = {
      dtype: "bf16",
      fill: (out, offset, dims, key) => {
        const changed = (key.tensor === TensorId.key || key.tensor === TensorId.value) && key.position > cut
        seededData("bf16").fill(out, offset, dims, changed ? { ...key, seed: key.seed + 1000 } : key)
      }
    }

    const before = sampleMoba(probe, options)
    const after = sampleMoba(probe, options, changedAfterCut)

    expect(after.map((u) => u.reason)).toEqual(before.map((u) => u.reason))
    let rowsCompared = 0
    let rowsChanged = 0
    before.forEach((unit, u) => {
      const a = run(unit)
      const b = run(after[u]!)
      unit.tasks.forEach((task, t) => {
        if (task.kind === "moba-gating") {
          // A row's candidates are the blocks before its current block, all before the cut.
          for (let r = 0; r < task.realRows; r++) {
            expect(task.currentBlock[r]! * 16).toBeLessThanOrEqual(cut + 1)
            const picks = (result: TileResult) => Array.from((result as MobaGatingResult).selected.subarray(r * 3, r * 3 + 3))
            expect(picks(b[t]!)).toEqual(picks(a[t]!))
            rowsCompared++
          }
          return
        }
        const attention = task as AttentionTileTask
        const stateA = (a[t] as AttentionTileResult).kernelState
        const stateB = (b[t] as AttentionTileResult).kernelState
        for (let r = 0; r < attention.realRows; r++) {
          const same = stateA.rowSum[r] === stateB.rowSum[r] && stateA.acc.subarray(r * 32, r * 32 + 32).every((v, c) => v === stateB.acc[r * 32 + c])
          if (attention.rowHi[r]! <= cut + 1) {
            rowsCompared++
            expect(same).toBe(true)
          } else if (!same) rowsChanged++
        }
      })
    })
    expect(rowsCompared).toBeGreaterThan(0)
    expect(rowsChanged).toBeGreaterThan(0)
  })
})

describe("MoBA executed gating", () => {
  function tieTask(topK: number): MobaGatingTask {
    const rows = 16
    const blocks = 10
    const headDim = 8
    const q = new Float32Array(rows * headDim).map((_, i) => ((i * 7) % 5) - 2)
    // Every block has the same mean, so every score ties.
    const means = new Float32Array(64 * headDim)
    const meansReference = new Float64Array(64 * headDim)
    for (let j = 0; j < blocks; j++) {
      for (let c = 0; c < headDim; c++) {
        means[j * headDim + c] = 0.25
        meansReference[j * headDim + c] = 0.25
      }
    }
    return {
      kind: "moba-gating",
      id: "ties",
      backend: "webasm",
      rows,
      realRows: 4,
      blockTile: 64,
      headDim,
      elementBytes: 2,
      topK,
      stepStart: Float32Array.from([0]),
      stepBlocks: Float32Array.from([blocks]),
      q,
      means,
      meansReference,
      currentBlock: Float32Array.from([10, 10, 6, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }
  }

  it("ties select exactly k", () => {
    const result = runMobaGating(tieTask(4))

    const row = (r: number) => Array.from(result.selected.subarray(r * 4, r * 4 + 4)).filter((b) => b >= 0)
    // Earlier blocks win ties; rows with fewer past blocks take them all.
    expect(row(0)).toEqual([0, 1, 2, 10])
    expect(row(1)).toEqual([0, 1, 2, 10])
    expect(row(2)).toEqual([0, 1, 2, 6])
    expect(row(3)).toEqual([0, 1, 2])
    expect(Array.from(result.referenceSelected)).toEqual(Array.from(result.selected))
  })

  it("future blocks score as masked", () => {
    const result = runMobaGating(tieTask(4))

    // Row 2 sits in block 6: blocks 6 to 9 are masked in the kernel and −∞ in float64.
    for (let j = 6; j < 10; j++) {
      expect(result.scores[2 * 10 + j]).toBeLessThan(-1e29)
      expect(result.referenceScores[2 * 10 + j]).toBe(-Infinity)
    }
  })

  it("measured overlap from gating", () => {
    const units = sampleMoba(plan(2048, "decode", { blockSize: 64, topK: 4 }), sampleOptions)
    const gating = units.find((unit) => unit.kind === "gating")!

    const { outcome } = checkUnit(gating, run(gating))
    const overlap = measuredOverlap(outcome.measured!)

    // One decode position with 31 past blocks, 2 heads of 3 picks each.
    expect(outcome.measured!["moba.unionExcessMax"]).toBe(3)
    expect(overlap!.value).toBeGreaterThanOrEqual(0)
    expect(overlap!.value).toBeLessThanOrEqual(1)
  })
})

effectDescribe("MoBA on the worker pool", () => {
  effectIt.effect("gating runs in a worker", () =>
    Effect.gen(function* () {
      const units = sampleMoba(plan(2048, "decode", { blockSize: 64, topK: 4 }), sampleOptions)

      const check = yield* executeUnits(units)

      assert.isTrue(check.countsMatch)
      assert.isAtMost(check.maxAbsError, 1e-3)
      assert.isAbove(check.measured["moba.unionExcessMax"] ?? 0, 0)
    }).pipe(Effect.provide(tilePoolLayer({ workers: 2 })))
  )
})

