import { describe, expect, it } from "vitest"
import { sumClamped, visibleKeys, visiblePairs, visiblePairsInTile, type MaskSpec } from "../../src/workload/mask.js"
import { SeededRandom } from "../support/random.js"

/**
 * Checks whether query `query` attends to key `key`, from the definition: with a
 * causal mask the last query sits at the last key (bottom-right alignment), so
 * query i is at key position i + seqLenKV − seqLenQ and attends to the `window`
 * keys ending there.
 */
function isVisible(mask: MaskSpec, query: number, key: number): boolean {
  if (key < 0 || key >= mask.seqLenKV) return false
  if (!mask.causal) return true
  const position = query + mask.seqLenKV - mask.seqLenQ
  if (key > position) return false
  return mask.window === undefined || key > position - mask.window
}

/** Counts the visible pairs of a tile one (query, key) at a time, through visibleKeys. */
function bruteForcePairs(mask: MaskSpec, queryStart: number, queryEnd: number, keyStart: number, keyEnd: number): number {
  let pairs = 0
  for (let query = queryStart; query < queryEnd; query++) {
    const { lo, hi } = visibleKeys(mask, query)
    for (let key = keyStart; key < keyEnd; key++) {
      if (key >= lo && key < hi) pairs++
    }
  }
  return pairs
}

interface MaskCase {
  readonly name: string
  readonly mask: MaskSpec
  /** Visible pairs over the whole sequence, worked out by hand. */
  readonly pairs: number
}

const cases: ReadonlyArray<MaskCase> = [
  // 8·9/2 = 36: row i attends to i + 1 keys.
  { name: "causal prefill", mask: { seqLenQ: 8, seqLenKV: 8, causal: true }, pairs: 36 },
  { name: "non-causal prefill", mask: { seqLenQ: 8, seqLenKV: 8, causal: false }, pairs: 64 },
  { name: "non-causal cross lengths", mask: { seqLenQ: 5, seqLenKV: 11, causal: false }, pairs: 55 },
  // One query at the end of a 16-token cache attends to all of it.
  { name: "causal decode", mask: { seqLenQ: 1, seqLenKV: 16, causal: true }, pairs: 16 },
  // A chunk of 4 queries after a 6-token prefix: rows attend to 7, 8, 9 and 10 keys.
  { name: "chunked prefill", mask: { seqLenQ: 4, seqLenKV: 10, causal: true }, pairs: 34 },
  // Queries 0..5 come before key 0 and attend to no key. Queries 6..9 attend to 1..4 keys.
  { name: "more queries than keys", mask: { seqLenQ: 10, seqLenKV: 4, causal: true }, pairs: 10 },
  // Window 1 keeps only the diagonal.
  { name: "window 1", mask: { seqLenQ: 8, seqLenKV: 8, causal: true, window: 1 }, pairs: 8 },
  // Row i attends to min(i + 1, 3) keys: 1 + 2 + 3·6.
  { name: "window 3", mask: { seqLenQ: 8, seqLenKV: 8, causal: true, window: 3 }, pairs: 21 },
  { name: "window beyond sequence", mask: { seqLenQ: 8, seqLenKV: 8, causal: true, window: 100 }, pairs: 36 },
  { name: "decode with window 3", mask: { seqLenQ: 1, seqLenKV: 16, causal: true, window: 3 }, pairs: 3 },
  // Rows at positions 6..9 each attend to 3 keys.
  { name: "chunked prefill window 3", mask: { seqLenQ: 4, seqLenKV: 10, causal: true, window: 3 }, pairs: 12 },
  // Rows at positions 0..3 attend to 1, 2, 2 and 2 keys.
  { name: "more queries window 2", mask: { seqLenQ: 10, seqLenKV: 4, causal: true, window: 2 }, pairs: 7 }
]

describe("isVisible oracle", () => {
  it("matches visibleKeys per query", () => {
    for (const { name, mask } of cases) {
      for (let query = 0; query < mask.seqLenQ; query++) {
        const { lo, hi } = visibleKeys(mask, query)
        for (let key = -1; key <= mask.seqLenKV; key++) {
          const inRange = key >= lo && key < hi
          expect(inRange, `${name}: query ${query}, key ${key}`).toBe(isVisible(mask, query, key))
        }
      }
    }
  })
})

describe("visiblePairs", () => {
  for (const { name, mask, pairs } of cases) {
    it(`${name} counts ${pairs} pairs`, () => {
      expect(visiblePairs(mask)).toBe(pairs)
      expect(bruteForcePairs(mask, 0, mask.seqLenQ, 0, mask.seqLenKV)).toBe(pairs)
    })
  }

  it("random masks match brute force", () => {
    const random = new SeededRandom(20240601)

    for (let draw = 0; draw < 300; draw++) {
      const causal = random.next() < 0.75
      const window = causal && random.next() < 0.5 ? random.int(1, 40) : undefined
      const mask: MaskSpec = { seqLenQ: random.int(1, 40), seqLenKV: random.int(1, 40), causal, window }

      expect(visiblePairs(mask), JSON.stringify(mask)).toBe(bruteForcePairs(mask, 0, mask.seqLenQ, 0, mask.seqLenKV))
    }
  })
})

describe("visiblePairsInTile", () => {
  for (const { name, mask } of cases) {
    it(`${name} random tiles`, () => {
      const random = new SeededRandom(name.length * 7919 + mask.seqLenQ * 131 + mask.seqLenKV)

      for (let draw = 0; draw < 200; draw++) {
        const queryStart = random.int(0, mask.seqLenQ)
        const queryEnd = random.int(queryStart, mask.seqLenQ)
        const keyStart = random.int(0, mask.seqLenKV)
        const keyEnd = random.int(keyStart, mask.seqLenKV)
        const tile = `queries [${queryStart}, ${queryEnd}), keys [${keyStart}, ${keyEnd})`

        expect(visiblePairsInTile(mask, queryStart, queryEnd, keyStart, keyEnd), tile).toBe(
          bruteForcePairs(mask, queryStart, queryEnd, keyStart, keyEnd)
        )
      }
    })
  }

  it("aligned tiles sum to the total", () => {
    const mask: MaskSpec = { seqLenQ: 37, seqLenKV: 53, causal: true, window: 9 }
    let sum = 0
    for (let queryStart = 0; queryStart < mask.seqLenQ; queryStart += 8) {
      for (let keyStart = 0; keyStart < mask.seqLenKV; keyStart += 16) {
        sum += visiblePairsInTile(mask, queryStart, Math.min(queryStart + 8, mask.seqLenQ), keyStart, Math.min(keyStart + 16, mask.seqLenKV))
      }
    }

    expect(sum).toBe(visiblePairs(mask))
  })
})

describe("sumClamped", () => {
  /** Sums clamp(start + i, low, high) over i in [0, n), one term at a time. */
  function loopSum(n: number, start: number, low: number, high: number): number {
    let sum = 0
    for (let i = 0; i < n; i++) sum += Math.min(high, Math.max(low, start + i))
    return sum
  }

  it("matches a loop on random inputs", () => {
    const random = new SeededRandom(77)

    for (let draw = 0; draw < 2000; draw++) {
      const n = random.int(-3, 40)
      const start = random.int(-50, 50)
      const low = random.int(-20, 20)
      const high = random.int(low, 30)
      const input = `n ${n}, start ${start}, low ${low}, high ${high}`

      expect(sumClamped(n, start, low, high), input).toBe(loopSum(n, start, low, high))
    }
  })

  it("empty range sums to zero", () => {
    expect(sumClamped(0, 5, 0, 10)).toBe(0)
    expect(sumClamped(-4, 5, 0, 10)).toBe(0)
  })

  it("all terms clamped high", () => {
    // Every start + i is above 3, so each of the 6 terms is 3.
    expect(sumClamped(6, 10, 0, 3)).toBe(18)
  })

  it("all terms clamped low", () => {
    // Every start + i is below 2, so each of the 5 terms is 2.
    expect(sumClamped(5, -20, 2, 9)).toBe(10)
  })
})
