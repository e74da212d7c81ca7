import { describe, expect, it } from "vitest"
import { variantOptionsFromArgs } from "../../../src/cli/estimate.js"
import { componentKeys, sumComponents } from "../../../src/cost/breakdown.js"
import { InputError } from "../../../src/errors.js"
import { planOperation, type PlannedOperation } from "../../../src/estimate.js"
import { loadProfile } from "../../../src/hardware/load.js"
import type { AlignmentAnalysis } from "../../../src/variants/nsa/alignment.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

/** Builds the NSA-27B attention shape (Native Sparse Attention, arXiv 2502.11089). */
function nsaShape(seqLen: number, phase: Phase, batch = 1): AttentionShape {
  return { batch, heads: 64, kvHeads: 4, headDim: 192, headDimV: 128, seqLenQ: phase === "decode" ? 1 : seqLen, seqLenKV: seqLen, causal: true, dtype: "bf16" }
}

const plans = new Map<string, PlannedOperation>()

function plan(hardware: string, shape: AttentionShape, phase: Phase, options: Record<string, unknown> = {}): PlannedOperation {
  const key = JSON.stringify([hardware, shape, phase, options])
  let planned = plans.get(key)
  if (!planned) {
    planned = planOperation({ variant: "nsa", shape, phase, options }, loadProfile(hardware))
    plans.set(key, planned)
  }
  return planned
}

describe("NSA decode memory access", () => {
  // Table 4 of the paper: tokens per decode step and the expected speedup over dense.
  const table = [
    { s: 8192, tokens: 2048, speedup: 4 },
    { s: 16384, tokens: 2560, speedup: 6.4 },
    { s: 32768, tokens: 3584, speedup: 9.1 },
    { s: 65536, tokens: 5632, speedup: 11.6 }
  ]

  for (const row of table) {
    it(`${row.s} tokens matches Table 4`, () => {
      const { estimate } = plan("h800-sxm", nsaShape(row.s, "decode"), "decode")

      expect(Math.abs((estimate.keysPerQuery as number) - row.tokens)).toBeLessThanOrEqual(2)
      expect(estimate.paperTableTokens).toBe(row.tokens)
      expect(estimate.branches).toEqual({ compressed: Math.floor((row.s - 32) / 16) + 1, selected: 1024, window: 512 })
      expect(Math.abs((estimate.speedupVsDense as number) - row.speedup)).toBeLessThanOrEqual(0.2)
      expect(String(estimate.keysPerQueryNote)).toContain("(2 fewer)")
      expect(estimate.tokensVsPaperTable).toBe(-1)
    })
  }
})

describe("NSA plan", () => {
  it("breakdown adds up in every phase", () => {
    for (const phase of ["decode", "prefill", "train"] as const) {
      const { plan: variantPlan, estimate } = plan("a100-sxm-80g", nsaShape(8192, phase), phase)
      const cost = variantPlan.cost

      expect(cost.seconds).toBeCloseTo(sumComponents(cost.components), 12)
      expect(cost.seconds).toBeCloseTo(cost.kernels.reduce((sum, k) => sum + k.seconds, 0), 12)
      for (const kernel of cost.kernels) expect(kernel.seconds, kernel.name).toBeCloseTo(componentKeys.reduce((sum, key) => sum + kernel.components[key], 0), 12)
      expect(estimate.modeledSpeedupVsDense).toBeCloseTo((estimate.denseSeconds as number) / cost.seconds, 12)
      const shares = estimate.timeShares as { attention: number; auxiliary: number; launch: number }
      expect(shares.attention + shares.auxiliary + shares.launch).toBeCloseTo(1, 12)
    }
  })

  it("prices every auxiliary kernel", () => {
    const names = (phase: Phase) => plan("a100-sxm-80g", nsaShape(8192, phase), phase).plan.cost.kernels.map((k) => k.name)
    for (const phase of ["decode", "prefill", "train"] as const) {
      expect(names(phase)).toEqual(expect.arrayContaining(["compress-mlp", "compressed-forward", "select-score", "selected-forward", "window-forward", "combine-gate"]))
    }
    expect(names("train")).toEqual(
      expect.arrayContaining(["gate-backward", "window-backward", "compressed-backward", "compress-mlp-backward", "selected-backward-dq", "selected-backward-dkv", "backward-dq-sum"])
    )
  })

  it("amortizes decode compression over d steps", () => {
    const decode = plan("h800-sxm", nsaShape(16384, "decode", 8), "decode").plan.cost.kernels.find((k) => k.name === "compress-mlp")!
    const everyFourth = plan("h800-sxm", nsaShape(16384, "decode", 8), "decode", { compressStride: 4, compressBlock: 32 }).plan.cost.kernels.find((k) => k.name === "compress-mlp")!
    // One launch in d steps: the amortized launch share is 1/d of a launch.
    const launch = loadProfile("h800-sxm").launchOverhead.value
    expect(decode.components.launch).toBeCloseTo(launch / 16, 12)
    expect(everyFourth.components.launch).toBeCloseTo(launch / 4, 12)
  })

  it("short sequences clamp and skip", () => {
    const { estimate, plan: variantPlan } = plan("h800-sxm", nsaShape(20, "prefill"), "prefill")
    const names = variantPlan.cost.kernels.map((k) => k.name)

    // Fewer than l tokens: no compressed token, so no compression kernels and no block scores.
    expect(names).not.toContain("compressed-forward")
    expect(names).not.toContain("select-score")
    expect(estimate.branches).toEqual({ compressed: 0, selected: 20, window: 20 })
  })

  it("modeled speedup grows with context", () => {
    const speedups = [8192, 16384, 32768, 65536].map((s) => plan("h800-sxm", nsaShape(s, "decode", 16), "decode").estimate.modeledSpeedupVsDense as number)
    for (let i = 1; i < speedups.length; i++) expect(speedups[i]!).toBeGreaterThan(speedups[i - 1]!)
    expect(speedups[3]!).toBeGreaterThan(1)
  })

  it("rejects fa3 on Ampere", () => {
    expect(() => planOperation({ variant: "nsa", shape: nsaShape(8192, "decode"), phase: "decode", kernel: "fa3", options: {} }, loadProfile("a100-sxm-80g"))).toThrow(/fa3/)
  })
})

describe("NSA alignment analysis", () => {
  const cases = (phase: Phase) => (plan("h800-sxm", nsaShape(32768, phase, phase === "decode" ? 16 : 1), phase).estimate.alignment as AlignmentAnalysis).cases

  it("prices four selection layouts", () => {
    for (const phase of ["decode", "prefill"] as const) {
      const [blockwise, tokens, perHead, small] = cases(phase)
      expect(blockwise!.relativeTime).toBe(1)
      expect(tokens!.name).toBe("token-level selection")
      expect(perHead!.name).toBe("per-head selection")
      expect(small!.name).toContain("16 < key tile 64")
      for (const c of cases(phase)) {
        expect(c.seconds).toBeGreaterThan(0)
        expect(typeof c.bound).toBe("string")
      }
    }
  })

  it("shows the cost of each departure", () => {
    const [blockwise, tokens, perHead, small] = cases("decode")
    const group = 16

    // Token-level: the same keys but index reads and scattered HBM access.
    expect(tokens!.bytes.hbm).toBeGreaterThan(blockwise!.bytes.hbm)
    expect(tokens!.seconds).toBeGreaterThan(blockwise!.seconds)
    // Per-head: each head loads its own blocks and its one row pads to the MMA height.
    expect(perHead!.bytes.l2).toBeGreaterThan(0.9 * group * blockwise!.bytes.l2)
    expect(perHead!.mmaRows).toBeGreaterThanOrEqual(16)
    expect(perHead!.seconds).toBeGreaterThan(blockwise!.seconds)
    // Small blocks: three quarters of every 64-key tile are padding.
    expect(small!.tensorFlops / small!.usefulFlops).toBeGreaterThan(3.5 * (blockwise!.tensorFlops / blockwise!.usefulFlops))
  })
})

describe("NSA options", () => {
  const expectIssue = (options: Record<string, unknown>, path: string, shape = nsaShape(4096, "decode")) => {
    try {
      planOperation({ variant: "nsa", shape, phase: "decode", options }, loadProfile("h800-sxm"))
    } catch (error) {
      expect(error).toBeInstanceOf(InputError)
      expect((error as InputError).issues.map((issue) => issue.path)).toContain(path)
      return
    }
    throw new Error(`options ${JSON.stringify(options)} were accepted`)
  }

  it("rejects inconsistent blocks", () => {
    expectIssue({ compressStride: 64 }, "compressStride")
    expectIssue({ compressStride: 12 }, "selectBlock")
    expectIssue({ selectBlock: 40 }, "selectBlock")
    expectIssue({ selectCount: 2 }, "selectCount")
    expectIssue({ localBlocks: 0 }, "localBlocks")
    expectIssue({ window: 0 }, "window")
    expectIssue({ blockSize: 64 }, "blockSize")
  })

  it("rejects a non-causal shape", () => {
    expectIssue({}, "causal", { ...nsaShape(4096, "decode"), causal: false })
  })

  it("reads its command-line flags", () => {
    const options = variantOptionsFromArgs("nsa", {
      "nsa-block": "64",
      "nsa-stride": "32",
      "nsa-select-block": "128",
      "nsa-select-count": "8",
      "nsa-window": "1024"
    })
    expect(options).toEqual({ compressBlock: 64, compressStride: 32, selectBlock: 128, selectCount: 8, window: 1024 })

    const { estimate } = plan("h800-sxm", nsaShape(65536, "decode"), "decode", options)
    expect(estimate.branches).toEqual({ compressed: Math.floor((65536 - 64) / 32) + 1, selected: 1024, window: 1024 })
  })
})

describe("NSA selection count", () => {
  it("clamps to the existing blocks", () => {
    // At 4k tokens there are 64 selection blocks of 64 keys, so n = 1000 picks the same keys as n = 64.
    const all = plan("h100-sxm", nsaShape(4096, "prefill"), "prefill", { selectCount: 64 }).estimate
    const beyond = plan("h100-sxm", nsaShape(4096, "prefill"), "prefill", { selectCount: 1000 }).estimate

    expect(beyond.keysPerQuery).toBe(all.keysPerQuery)
    expect(beyond.bytes.hbm).toBe(all.bytes.hbm)
    expect(beyond.seconds).toBe(all.seconds)
  })

  it("notes negative sparsity", () => {
    const { estimate } = plan("h100-sxm", nsaShape(4096, "prefill"), "prefill", { selectCount: 64 })

    expect(estimate.sparsity).toBeLessThan(0)
    expect(estimate.sparsityNote).toContain("own K/V")
  })
})
