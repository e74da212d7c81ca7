import { describe, expect, it } from "vitest"
import {
  currentBlockGroups,
  historyDemand,
  historySlots,
  historyUnion,
  keysAttended,
  overlapOfUnion,
  queryBlocks,
  queryPosition,
  roundPreservingTotal
} from "../../../src/variants/moba/blocks.js"
import type { AttentionShape } from "../../../src/workload/shape.js"

function shape(seqLenQ: number, seqLenKV: number): AttentionShape {
  return { batch: 1, heads: 32, kvHeads: 8, headDim: 128, headDimV: 128, seqLenQ, seqLenKV, causal: true, dtype: "bf16" }
}

const oneMillion = 1048576

describe("MoBA block arithmetic", () => {
  it("1M decode attends 49152 keys", () => {
    const last = oneMillion - 1

    const keys = keysAttended(last, { blockSize: 4096, topK: 12 })

    expect(keys).toBe(49152)
    expect(1 - keys / oneMillion).toBeCloseTo(0.953125, 12)
  })

  it("8k block 512 top-3 is 81.25 % sparse", () => {
    const keys = keysAttended(8191, { blockSize: 512, topK: 3 })

    expect(keys).toBe(1536)
    expect(1 - keys / 8192).toBe(0.8125)
  })

  it("keys clamp to what exists", () => {
    // Query 100 of block 0: no history, 101 keys of its own block.
    expect(keysAttended(100, { blockSize: 4096, topK: 12 })).toBe(101)
    // Block 2: both past blocks and 5 keys of its own.
    expect(keysAttended(2 * 4096 + 4, { blockSize: 4096, topK: 12 })).toBe(2 * 4096 + 5)
    // A partial last block: 100 keys of it plus 11 whole history blocks.
    expect(keysAttended(oneMillion + 99, { blockSize: 4096, topK: 12 })).toBe(100 + 11 * 4096)
  })

  it("top-1 keeps only the current block", () => {
    for (const position of [0, 4095, 4096, 123_456]) {
      expect(historySlots(Math.floor(position / 4096), 1)).toBe(0)
      expect(keysAttended(position, { blockSize: 4096, topK: 1 })).toBe((position % 4096) + 1)
    }
  })

  it("current-block groups cover every query", () => {
    // Chunked prefill: 1000 queries after a cached prefix of 1300 keys, block 256.
    const chunk = shape(1000, 2300)

    const groups = currentBlockGroups(chunk, 256)

    const covered = groups.reduce((sum, g) => sum + g.seqLenQ * g.blocks.length, 0)
    expect(covered).toBe(1000)
    // A partial first block (1300 is 20 keys into block 5), full blocks, a partial last block.
    expect(groups.map((g) => [g.seqLenQ, g.seqLenKV, g.blocks.length])).toEqual([
      [236, 256, 1],
      [256, 256, 2],
      [252, 252, 1]
    ])
  })

  it("history demand total is exact", () => {
    const config = { blockSize: 64, topK: 4, blocks: Math.ceil(1000 / 64) }
    const prefill = shape(1000, 1000)

    const demand = historyDemand(prefill, config)

    let bruteForce = 0
    for (let i = 0; i < 1000; i++) bruteForce += Math.min(3, Math.floor(queryPosition(prefill, i) / 64))
    expect(demand.total).toBe(bruteForce)
    expect(demand.readers.reduce((a, b) => a + b, 0)).toBe(bruteForce)
    expect(demand.hasChoice).toBe(true)
    // The last block has no later queries, so no query reads it as history.
    expect(demand.readers[config.blocks - 1]).toBe(0)
  })

  it("history demand spread follows uniform picks", () => {
    const config = { blockSize: 16, topK: 3, blocks: 8 }
    const prefill = shape(128, 128)

    const demand = historyDemand(prefill, config)

    // Brute force: a query in block c picks each past block with probability min(1, 2/c).
    const expected = Array.from({ length: 8 }, (_, j) => {
      let sum = 0
      for (const { block, queryStart, queryEnd } of queryBlocks(prefill, 16)) if (block > j) sum += (queryEnd - queryStart) * Math.min(1, 2 / block)
      return sum
    })
    demand.readers.forEach((readers, j) => expect(Math.abs(readers - expected[j]!)).toBeLessThan(1))
  })

  it("rounding keeps the total", () => {
    const values = Float64Array.from([0.4, 0.4, 0.4, 1.7, 2.1])

    const rounded = roundPreservingTotal(values, 5)

    expect(Array.from(rounded).reduce((a, b) => a + b, 0)).toBe(5)
    values.forEach((value, i) => expect(Math.abs(rounded[i]! - value)).toBeLessThan(1))
  })

  it("independent union matches enumeration", () => {
    // Every way 2 heads can each pick 2 of 5 blocks, equally likely.
    const subsets: number[][] = []
    for (let a = 0; a < 5; a++) for (let b = a + 1; b < 5; b++) subsets.push([a, b])
    let total = 0
    for (const first of subsets) for (const second of subsets) total += new Set([...first, ...second]).size
    const expected = total / (subsets.length * subsets.length)

    expect(historyUnion(5, 2, 2, { kind: "independent", origin: "assumed" })).toBeCloseTo(expected, 12)
  })

  it("overlap fraction bounds the union", () => {
    const agree = historyUnion(255, 11, 4, { kind: "fraction", value: 1, origin: "given" })
    const spread = historyUnion(255, 11, 4, { kind: "fraction", value: 0, origin: "given" })

    expect(agree).toBe(11)
    expect(spread).toBe(44)
    expect(overlapOfUnion(255, 11, 4, 27.5)).toBeCloseTo(0.5, 12)
    // Few past blocks cap the union: 4 heads × 2 picks among 3 blocks.
    expect(historyUnion(3, 2, 4, { kind: "fraction", value: 0, origin: "given" })).toBe(3)
  })
})
