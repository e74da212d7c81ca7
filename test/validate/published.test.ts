import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeInput } from "../../src/decode.js"
import { planOperation } from "../../src/estimate.js"
import { loadProfile } from "../../src/hardware/load.js"
import { MeasuredSeries } from "../../src/validate/measured-schema.js"
import { loadPublishedSeries, predictPublished } from "../../src/validate/published.js"
import { validatePublished } from "../../src/validate/published-validation.js"

/** A measured series in the fixture format; the point's seconds are invented for the test, not a measurement. */
const measuredRaw = {
  id: "test-h100-dense-decode",
  source: "unit test: a hand-written series that exercises the fixture format",
  hardware: "h100-sxm",
  set: [],
  gpu: "NVIDIA H100 80GB HBM3",
  software: { driver: "550.54.15", cuda: "12.4", torch: "2.3.0", "flash-attn": "2.5.8" },
  date: "2026-01-15",
  method: "CUDA events around 100 calls after 10 warm-up calls; median",
  variant: "dense",
  dtype: "bf16",
  phase: "decode",
  tolerancePct: 20,
  points: [{ batch: 8, heads: 32, kvHeads: 8, headDim: 128, seqLen: 32768, causal: true, seconds: 1e-4, spreadPct: 2, repeats: 100 }]
}

function decodeMeasured(raw: unknown) {
  const decoded = decodeInput(MeasuredSeries, raw, "test")
  if (Either.isLeft(decoded)) throw decoded.left
  return decoded.right
}

describe("published validation", () => {
  it("document has the contract shape", () => {
    const document = validatePublished("attnsim validate --published", loadPublishedSeries(), [])

    expect(document.kind).toBe("published")
    expect(document.poolSpeedup).toBeNull()
    const dense = document.variants.find((v) => v.variant === "dense")!
    expect(dense.cases.length).toBe(predictPublished().length)
    for (const c of dense.cases) {
      expect(c.predictedSeconds).toBeGreaterThan(0)
      expect(c.measuredSeconds).toBeGreaterThan(0)
      expect(c.countsMatch).toBeNull()
      expect(c.errorPct).toBeCloseTo(((c.predictedSeconds - c.measuredSeconds) / c.measuredSeconds) * 100, 9)
    }
    expect(Number.isFinite(dense.medianAbsErrorPct)).toBe(true)
    expect(dense.p90AbsErrorPct).toBeGreaterThanOrEqual(dense.medianAbsErrorPct)
  })

  it("seconds error mirrors throughput error", () => {
    const document = validatePublished("test", loadPublishedSeries(), [])
    const predictions = predictPublished()
    const dense = document.variants.find((v) => v.variant === "dense")!

    // Same FLOPs, so predicted/measured seconds = measured/predicted throughput.
    dense.cases.forEach((c, index) => {
      const p = predictions[index]!
      expect(c.measuredSeconds / c.predictedSeconds).toBeCloseTo(p.predictedTflops / p.measuredTflops, 9)
    })
  })

  it("fit targets are left out", () => {
    const document = validatePublished("test", loadPublishedSeries(), [])
    const fitted = document.fittedPointsExcluded as ReadonlyArray<string>

    expect(fitted.length).toBe(3)
    expect(document.variants[0]!.verdict).toContain("3 fit targets left out")
  })

  it("sources are summarized", () => {
    const document = validatePublished("test", loadPublishedSeries(), [])
    const sources = document.sources as ReadonlyArray<{ series: string[]; points: number }>

    expect(sources.reduce((sum, s) => sum + s.points, 0)).toBe(predictPublished().length)
  })
})

describe("measured fixtures", () => {
  it("format decodes", () => {
    const series = decodeMeasured(measuredRaw)

    expect(series.software["flash-attn"]).toBe("2.5.8")
    expect(series.points[0]!.seconds).toBe(1e-4)
  })

  it("missing provenance is rejected", () => {
    const { gpu: _gpu, date: _date, ...withoutProvenance } = measuredRaw

    expect(() => decodeMeasured(withoutProvenance)).toThrow(/gpu|date/)
  })

  it("prices a point like estimate", () => {
    const series = decodeMeasured(measuredRaw)

    const document = validatePublished("test", [], [series])
    const only = document.variants[0]!.cases[0]!
    const shape = { batch: 8, heads: 32, kvHeads: 8, headDim: 128, headDimV: 128, seqLenQ: 1, seqLenKV: 32768, causal: true, dtype: "bf16" as const }
    const expected = planOperation({ variant: "dense", shape, phase: "decode" }, loadProfile("h100-sxm")).estimate.seconds

    expect(only.predictedSeconds).toBe(expected)
    expect(only.measuredSeconds).toBe(1e-4)
    expect(only.gpu).toBe("NVIDIA H100 80GB HBM3")
  })
})
