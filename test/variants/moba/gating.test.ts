import { describe, expect, it } from "vitest"
import { blockMeanKey, gateScores, seededData, selectBlocks, unionExcess } from "../../../src/variants/moba/gating.js"

describe("MoBA gating selection", () => {
  it("takes top scores plus current", () => {
    const scores = [0.1, 0.9, 0.3, 0.7, 0.2]

    expect(selectBlocks(scores, 5, 3)).toEqual([1, 3, 5])
  })

  it("ties select exactly k", () => {
    const equal = new Array(10).fill(0.5)

    for (const topK of [1, 2, 4, 11, 20]) {
      const selected = selectBlocks(equal, 10, topK)
      expect(selected).toHaveLength(Math.min(topK, 11))
      expect(new Set(selected).size).toBe(selected.length)
    }
  })

  it("ties go to the earlier block", () => {
    const scores = [0.2, 0.5, 0.5, 0.5, 0.1]

    expect(selectBlocks(scores, 5, 3)).toEqual([1, 2, 5])
  })

  it("never selects a future block", () => {
    // Scores past the current block are ignored however high they are.
    const scores = [0.1, 0.2, 0.3, 99, 99, 99]

    const selected = selectBlocks(scores, 3, 5)

    expect(selected).toEqual([0, 1, 2, 3])
    expect(Math.max(...selected)).toBe(3)
  })

  it("top-1 is the current block only", () => {
    expect(selectBlocks([5, 4, 3], 3, 1)).toEqual([3])
  })

  it("block mean is the key average", () => {
    const data = seededData("bf16")
    const at = { seed: 3, batch: 0, kvHead: 1 }

    const mean = blockMeanKey(data, at, 2, 8, 4)

    const row = new Float32Array(4)
    const sum = new Float64Array(4)
    for (let position = 16; position < 24; position++) {
      data.fill(row, 0, 4, { seed: 3, tensor: 2, batch: 0, head: 1, position })
      for (let c = 0; c < 4; c++) sum[c] = sum[c]! + row[c]!
    }
    sum.forEach((value, c) => expect(mean[c]).toBeCloseTo(value / 8, 14))
  })

  it("gate score is a dot product", () => {
    const scores = gateScores([1, 2], [Float64Array.from([3, 4]), Float64Array.from([-1, 0.5])], 2)

    expect(Array.from(scores)).toEqual([11, 0])
  })

  it("union excess counts spread", () => {
    // Two heads, h = 2 among 6 past blocks: union {0, 1, 4} has one block beyond h.
    const spread = unionExcess([[0, 1, 6], [1, 4, 6]], 6, 3)

    expect(spread).toEqual({ excess: 1, maxExcess: 2 })
  })
})
