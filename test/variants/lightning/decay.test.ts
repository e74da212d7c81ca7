import { describe, expect, it } from "vitest"
import { alibiSlopes, depthFactor, fastestDecayHead, geometricLogDecay, negligibleDistance } from "../../../src/variants/lightning/decay.js"

describe("lightning decay rates", () => {
  it("power-of-two heads are geometric", () => {
    const slopes = alibiSlopes(64)

    expect(slopes[0]).toBeCloseTo(Math.pow(2, -1 / 8), 15)
    expect(slopes[63]).toBeCloseTo(Math.pow(2, -8), 15)
    for (let h = 1; h < 64; h++) expect(slopes[h]! / slopes[h - 1]!).toBeCloseTo(Math.pow(2, -1 / 8), 12)
  })

  it("other head counts interleave", () => {
    // ALiBi for 12 heads: the 8 slopes of 8 heads, then slopes 0, 2, 4, 6 of 16 heads.
    const expected = [1, 2, 3, 4, 5, 6, 7, 8].map((i) => Math.pow(2, -i)).concat([0.5, 1.5, 2.5, 3.5].map((i) => Math.pow(2, -i)))

    const slopes = alibiSlopes(12)

    expect(slopes).toHaveLength(12)
    slopes.forEach((slope, h) => expect(slope).toBeCloseTo(expected[h]!, 15))
  })

  it("deeper layers decay slower", () => {
    const first = geometricLogDecay(64, 0, 80)
    const last = geometricLogDecay(64, 79, 80)

    expect(depthFactor(0, 80)).toBeCloseTo(1 + 1e-5, 15)
    expect(depthFactor(79, 80)).toBeCloseTo(1e-5, 15)
    expect(Math.exp(first[0]!)).toBeCloseTo(0.3997, 4)
    expect(Math.exp(last[63]!)).toBeGreaterThan(0.99999)
    expect(fastestDecayHead(first)).toBe(0)
  })

  it("negligible distance bounds the weight", () => {
    const logDecay = Math.log(0.4)
    const distance = negligibleDistance(logDecay)

    expect(Math.exp(distance * logDecay)).toBeLessThan(Math.pow(2, -60))
    expect(Math.exp((distance - 1) * logDecay)).toBeGreaterThanOrEqual(Math.pow(2, -60))
    expect(negligibleDistance(0)).toBe(Infinity)
  })
})
