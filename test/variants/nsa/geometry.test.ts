import { describe, expect, it } from "vitest"
import {
  blocksExisting,
  compressedPairsInRange,
  compressedPrefixSum,
  forcedBlockCount,
  forcedBlocks,
  forcedUnion,
  keysAt,
  keysOverPositions,
  selectedBlocksOverPositions,
  selectedKeys,
  visibleCompressed,
  type NsaGeometry
} from "../../../src/variants/nsa/geometry.js"
import { blockScores, selectBlocks } from "../../../src/variants/nsa/selection.js"
import { SeededRandom } from "../../support/random.js"

const paper: NsaGeometry = { compressBlock: 32, compressStride: 16, selectBlock: 64, selectCount: 16, initialBlocks: 1, localBlocks: 2, window: 512 }

const small: ReadonlyArray<NsaGeometry> = [
  { compressBlock: 8, compressStride: 4, selectBlock: 8, selectCount: 4, initialBlocks: 1, localBlocks: 2, window: 10 },
  { compressBlock: 6, compressStride: 3, selectBlock: 12, selectCount: 3, initialBlocks: 0, localBlocks: 1, window: 5 },
  { compressBlock: 4, compressStride: 4, selectBlock: 4, selectCount: 5, initialBlocks: 2, localBlocks: 3, window: 1 }
]

/** Compressed tokens whose whole block [i·d, i·d + l − 1] lies at or before p, counted one by one. */
function bruteVisible(g: NsaGeometry, p: number): number {
  let count = 0
  for (let i = 0; i * g.compressStride + g.compressBlock - 1 <= p; i++) count++
  return count
}

describe("compressed visibility", () => {
  it("counts whole blocks at or before the query", () => {
    for (const g of [paper, ...small]) {
      for (let p = 0; p < 300; p++) expect(visibleCompressed(g, p), `l=${g.compressBlock} d=${g.compressStride} p=${p}`).toBe(bruteVisible(g, p))
    }
  })

  it("sees nothing before position l − 1", () => {
    expect(visibleCompressed(paper, 30)).toBe(0)
    expect(visibleCompressed(paper, 31)).toBe(1)
    expect(visibleCompressed(paper, 46)).toBe(1)
    expect(visibleCompressed(paper, 47)).toBe(2)
  })

  it("prefix sums match brute force", () => {
    for (const g of small) {
      let running = 0
      for (let x = 0; x < 120; x++) {
        expect(compressedPrefixSum(g, x)).toBe(running)
        running += bruteVisible(g, x)
      }
    }
  })

  it("pairs in a range match brute force", () => {
    const random = new SeededRandom(3)
    for (const g of small) {
      for (let trial = 0; trial < 200; trial++) {
        const first = random.int(0, 80)
        const end = first + random.int(0, 40)
        const keyStart = random.int(0, 25)
        const keyEnd = keyStart + random.int(0, 12)
        let brute = 0
        for (let p = first; p < end; p++) brute += Math.max(0, Math.min(bruteVisible(g, p), keyEnd) - keyStart)
        expect(compressedPairsInRange(g, first, end, keyStart, keyEnd)).toBe(brute)
      }
    }
  })
})

describe("always-kept blocks", () => {
  it("counts and unions match the lists", () => {
    for (const g of [paper, ...small]) {
      for (let p = 0; p < 400; p += 3) {
        const blocks = forcedBlocks(g, p)
        expect(forcedBlockCount(g, p)).toBe(blocks.length)
        expect(blocks).toContain(Math.floor(p / g.selectBlock))
        expect(blocks.every((b) => b <= Math.floor(p / g.selectBlock))).toBe(true)
      }
      for (let first = 0; first < 20; first++) {
        for (let last = first; last < first + 6; last++) {
          const union = new Set<number>()
          for (let current = first; current <= last; current++) forcedBlocks(g, current * g.selectBlock).forEach((b) => union.add(b))
          expect(forcedUnion(g, first, last), `blocks ${first}..${last}`).toBe(union.size)
        }
      }
    }
  })
})

describe("block scores", () => {
  it("add each token to every overlapped block", () => {
    const random = new SeededRandom(5)
    for (const g of [paper, ...small]) {
      const p = 250
      const tokens = visibleCompressed(g, p)
      const tokenScores = Array.from({ length: tokens }, () => random.next())
      const scores = blockScores(g, p, tokenScores)

      expect(scores.length).toBe(blocksExisting(g, p))
      scores.forEach((score, block) => {
        let brute = 0
        for (let i = 0; i < tokens; i++) {
          const start = i * g.compressStride
          const end = start + g.compressBlock - 1
          if (end >= block * g.selectBlock && start <= (block + 1) * g.selectBlock - 1) brute += tokenScores[i]!
        }
        expect(score).toBeCloseTo(brute, 12)
      })
    }
  })
})

describe("block selection", () => {
  it("keeps forced blocks, then the top scores", () => {
    const random = new SeededRandom(9)
    for (const g of [paper, ...small]) {
      for (let trial = 0; trial < 50; trial++) {
        const p = random.int(0, 40 * g.selectBlock)
        const scores = Array.from({ length: blocksExisting(g, p) }, () => Math.round(random.next() * 4) / 4)
        const chosen = selectBlocks(g, p, scores)

        // Oracle: forced blocks, then the others by score descending, earlier first on ties.
        const forced = forcedBlocks(g, p)
        const others = scores.map((score, block) => ({ score, block })).filter((c) => !forced.includes(c.block))
        others.sort((a, b) => b.score - a.score || a.block - b.block)
        const count = Math.min(g.selectCount, blocksExisting(g, p))
        const expected = [...forced, ...others.slice(0, count - forced.length).map((c) => c.block)].sort((a, b) => a - b)
        expect(chosen).toEqual(expected)
      }
    }
  })

  it("clamps n to the blocks that exist", () => {
    expect(selectBlocks(paper, 100, [0, 0])).toEqual([0, 1])
    expect(selectBlocks(paper, 0, [0])).toEqual([0])
  })

  it("selected keys match the chosen blocks", () => {
    const random = new SeededRandom(11)
    for (const g of [paper, ...small]) {
      for (let trial = 0; trial < 50; trial++) {
        const p = random.int(0, 40 * g.selectBlock)
        const chosen = selectBlocks(g, p, Array.from({ length: blocksExisting(g, p) }, () => random.next()))
        const keys = chosen.reduce((sum, b) => sum + Math.max(0, Math.min((b + 1) * g.selectBlock, p + 1) - b * g.selectBlock), 0)
        expect(selectedKeys(g, p)).toBe(keys)
      }
    }
  })
})

describe("keys over positions", () => {
  it("sums per-position counts", () => {
    for (const g of [paper, ...small]) {
      for (const [first, end] of [[0, 1], [0, 700], [37, 1300], [1200, 1201]] as const) {
        let compressed = 0
        let selected = 0
        let window = 0
        let blocks = 0
        for (let p = first; p < end; p++) {
          const keys = keysAt(g, p)
          compressed += keys.compressed
          selected += keys.selected
          window += keys.window
          blocks += Math.min(g.selectCount, blocksExisting(g, p))
        }
        expect(keysOverPositions(g, first, end)).toEqual({ compressed, selected, window, total: compressed + selected + window })
        expect(selectedBlocksOverPositions(g, first, end)).toBe(blocks)
      }
    }
  })
})

describe("decode keys at paper settings", () => {
  // Native Sparse Attention (arXiv 2502.11089), Table 4: tokens loaded per decode step.
  const table = [
    { s: 8192, tokens: 2048 },
    { s: 16384, tokens: 2560 },
    { s: 32768, tokens: 3584 },
    { s: 65536, tokens: 5632 }
  ]

  it("are within 2 tokens of Table 4", () => {
    for (const { s, tokens } of table) {
      const keys = keysAt(paper, s - 1)
      expect(keys.selected).toBe(1024)
      expect(keys.window).toBe(512)
      expect(keys.total).toBe(Math.floor((s - 32) / 16) + 1 + 16 * 64 + 512)
      expect(Math.abs(keys.total - tokens)).toBeLessThanOrEqual(2)
    }
  })
})
