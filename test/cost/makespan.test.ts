import { describe, expect, it } from "vitest"
import { longestFirstMakespan, type DurationClass } from "../../src/cost/makespan.js"
import { SeededRandom } from "../support/random.js"

/**
 * Computes the makespan by definition: expand the classes into single CTAs, sort
 * them longest first and give each to the slot with the least load so far.
 */
function greedyMakespan(classes: ReadonlyArray<DurationClass>, slots: number): number {
  const ctas: number[] = []
  for (const { count, seconds } of classes) {
    if (seconds <= 0) continue
    for (let k = 0; k < count; k++) ctas.push(seconds)
  }
  ctas.sort((a, b) => b - a)

  const loads = new Array<number>(slots).fill(0)
  for (const seconds of ctas) {
    let lightest = 0
    for (let slot = 1; slot < slots; slot++) {
      if (loads[slot]! < loads[lightest]!) lightest = slot
    }
    loads[lightest]! += seconds
  }
  return Math.max(0, ...loads)
}

function expectRelativeClose(actual: number, expected: number, context: string): void {
  // Loads are sums in a different order, so they may differ in the last bits.
  expect(Math.abs(actual - expected), `${context}: got ${actual}, expected ${expected}`).toBeLessThanOrEqual(Math.abs(expected) * 1e-9)
}

describe("longestFirstMakespan", () => {
  it("matches per-CTA greedy on random classes", () => {
    const random = new SeededRandom(4242)

    for (let draw = 0; draw < 1500; draw++) {
      const slots = random.int(1, 12)
      const classes = Array.from({ length: random.int(1, 6) }, () => ({ count: random.int(0, 40), seconds: random.int(1, 25) }))
      const context = `${slots} slots, ${JSON.stringify(classes)}`

      expectRelativeClose(longestFirstMakespan(classes, slots), greedyMakespan(classes, slots), context)
    }
  })

  it("matches greedy with fractional seconds", () => {
    const random = new SeededRandom(99)

    for (let draw = 0; draw < 500; draw++) {
      const slots = random.int(1, 20)
      const classes = Array.from({ length: random.int(1, 8) }, () => ({ count: random.int(1, 60), seconds: 1e-6 * (0.1 + random.next()) }))
      const context = `${slots} slots, ${JSON.stringify(classes)}`

      expectRelativeClose(longestFirstMakespan(classes, slots), greedyMakespan(classes, slots), context)
    }
  })

  it("matches greedy at GPU scale", () => {
    // Causal prefill: one class per query tile, each tile one key tile longer than the last.
    const classes = Array.from({ length: 32 }, (_, tile) => ({ count: 48, seconds: (tile + 1) * 1e-6 }))

    expectRelativeClose(longestFirstMakespan(classes, 132), greedyMakespan(classes, 132), "32 causal classes on 132 slots")
  })

  it("short CTAs fill the idle slot", () => {
    // Slot 1 idles while slot 0 runs the 10 s CTA, so both 1 s CTAs go to slot 1.
    const classes = [
      { count: 1, seconds: 10 },
      { count: 2, seconds: 1 }
    ]

    expect(longestFirstMakespan(classes, 2)).toBe(10)
  })

  it("no CTAs take no time", () => {
    expect(longestFirstMakespan([], 8)).toBe(0)
    expect(longestFirstMakespan([{ count: 0, seconds: 5 }], 8)).toBe(0)
    expect(longestFirstMakespan([{ count: 3, seconds: 0 }], 8)).toBe(0)
  })

  it("fewer CTAs than slots", () => {
    const classes = [
      { count: 2, seconds: 3 },
      { count: 3, seconds: 7 }
    ]

    expect(longestFirstMakespan(classes, 16)).toBe(7)
  })

  it("one giant CTA sets the makespan", () => {
    // 40 one-second CTAs spread over the other 9 slots finish long before 100 s.
    const classes = [
      { count: 40, seconds: 1 },
      { count: 1, seconds: 100 }
    ]

    expect(longestFirstMakespan(classes, 10)).toBe(100)
  })

  it("equal CTAs round up to waves", () => {
    // 25 CTAs on 8 slots: 3 full waves and one CTA in a fourth.
    expect(longestFirstMakespan([{ count: 25, seconds: 2 }], 8)).toBe(8)
  })

  it("order of classes is irrelevant", () => {
    const classes = [
      { count: 7, seconds: 3 },
      { count: 13, seconds: 5 },
      { count: 4, seconds: 11 }
    ]

    expect(longestFirstMakespan([...classes].reverse(), 5)).toBe(longestFirstMakespan(classes, 5))
  })

  it("rejects zero slots", () => {
    expect(() => longestFirstMakespan([{ count: 1, seconds: 1 }], 0)).toThrow(RangeError)
  })
})
