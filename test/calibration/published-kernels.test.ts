import { describe, expect, it } from "vitest"
import { fitGenerationParameters, storedParameters } from "../../src/validate/fit.js"
import { loadPublishedSeries, predictPoint, seriesDevice } from "../../src/validate/published.js"

const seriesList = loadPublishedSeries()

describe("published kernel throughput", () => {
  it("fixtures are present", () => {
    expect(seriesList.length).toBeGreaterThan(0)
  })

  for (const series of seriesList) {
    it(`${series.id} within ${series.tolerancePct} %`, () => {
      const device = seriesDevice(series)
      const failures = series.points.flatMap((point) => {
        const prediction = predictPoint(series, point, device)
        if (Math.abs(prediction.errorPct) <= series.tolerancePct) return []
        const setting = `seqLen ${point.seqLen}, headDim ${point.headDim}, ${point.causal ? "causal" : "non-causal"}`
        return [
          `${setting}${point.softmaxOverlap === undefined ? "" : `, softmaxOverlap ${point.softmaxOverlap}`}: ` +
            `measured ${point.tflops} TFLOP/s, predicted ${prediction.predictedTflops.toFixed(1)} (${prediction.errorPct.toFixed(1)} %, ${prediction.tiling})`
        ]
      })

      expect(series.points.length).toBeGreaterThan(0)
      expect(failures).toEqual([])
    })
  }

  it("sources name paper and location", () => {
    // An arXiv id names the paper, and a figure, a table or a named section locates the number in it.
    const paper = /arXiv:\d{4}\.\d{4,5}/
    const location = /\b(figure|table|section|§|abstract|introduction)\b/i
    const unsourced = seriesList.filter((series) => !paper.test(series.source) || !location.test(series.source)).map((series) => `${series.id}: ${series.source}`)

    expect(unsourced).toEqual([])
  })
})

describe("fitted generation parameters", () => {
  // Fitting prices each target point about 40 times, so it runs once, on first use.
  let fits: ReturnType<typeof fitGenerationParameters> | undefined
  const fitted = (): ReturnType<typeof fitGenerationParameters> => (fits ??= fitGenerationParameters(seriesList))

  it("every stored parameter is fitted", () => {
    expect(fitted().map((fit) => fit.name).sort()).toEqual(Object.keys(storedParameters).sort())
  })

  for (const name of Object.keys(storedParameters)) {
    it(`${name} reproduces`, () => {
      const fit = fitted().find((candidate) => candidate.name === name)
      if (!fit) throw new Error(`${name} was not fitted`)
      // Both values are rounded to 3 decimals, so 0.002 lets a model change move a fit by two units in the last place.
      expect(Math.abs(fit.value - storedParameters[name]!), `fitted ${fit.value}, stored ${storedParameters[name]}`).toBeLessThanOrEqual(0.002)
      expect(fit.clamped, `${name} reached the end of its range`).toBe(false)
    })
  }
})
