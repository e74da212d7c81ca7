import { describe, expect, it } from "vitest"
import type { WorkCounts } from "../../../src/cost/counts.js"
import { DenseSchedule, type DenseWorkItem } from "../../../src/variants/dense/schedule.js"
import type { DenseTiling } from "../../../src/variants/dense/tiling.js"
import { visibleKeys } from "../../../src/workload/mask.js"
import type { AttentionShape, Phase } from "../../../src/workload/shape.js"

function tiling(fields: Partial<DenseTiling> & Pick<DenseTiling, "blockM" | "blockN">): DenseTiling {
  return {
    kernel: "fa2",
    stages: 1,
    warps: 4,
    ctasPerSm: 1,
    splits: 1,
    packGqa: false,
    softmaxOverlap: 0.5,
    backwardMmaEfficiency: 1,
    ...fields
  }
}

function shape(fields: Partial<AttentionShape> & Pick<AttentionShape, "seqLenQ" | "seqLenKV">): AttentionShape {
  return { batch: 1, heads: 1, kvHeads: 1, headDim: 16, headDimV: 16, causal: true, dtype: "bf16", ...fields }
}

interface ScheduleCase {
  readonly name: string
  readonly shape: AttentionShape
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling
}

const cases: ReadonlyArray<ScheduleCase> = [
  {
    name: "causal prefill",
    shape: shape({ batch: 2, heads: 2, kvHeads: 2, seqLenQ: 37, seqLenKV: 37 }),
    phase: "prefill",
    tiling: tiling({ blockM: 16, blockN: 8 })
  },
  {
    name: "non-causal cross lengths",
    shape: shape({ heads: 3, kvHeads: 3, seqLenQ: 20, seqLenKV: 29, causal: false }),
    phase: "prefill",
    tiling: tiling({ blockM: 8, blockN: 16 })
  },
  {
    name: "GQA unpacked causal",
    shape: shape({ batch: 2, heads: 4, kvHeads: 2, seqLenQ: 24, seqLenKV: 24 }),
    phase: "prefill",
    tiling: tiling({ blockM: 16, blockN: 8 })
  },
  {
    name: "GQA packed decode",
    shape: shape({ batch: 2, heads: 8, kvHeads: 2, seqLenQ: 1, seqLenKV: 50 }),
    phase: "decode",
    tiling: tiling({ blockM: 16, blockN: 16, packGqa: true })
  },
  {
    // A 16-row tile fits 4 positions of the 4 heads, so 5 positions need 2 items per group.
    name: "GQA packed chunked prefill",
    shape: shape({ heads: 4, kvHeads: 1, seqLenQ: 5, seqLenKV: 40 }),
    phase: "prefill",
    tiling: tiling({ blockM: 16, blockN: 8, packGqa: true })
  },
  {
    // 7 key tiles shared out over 3 splits.
    name: "split-KV decode",
    shape: shape({ batch: 2, heads: 4, kvHeads: 4, seqLenQ: 1, seqLenKV: 100 }),
    phase: "decode",
    tiling: tiling({ blockM: 16, blockN: 16, splits: 3 })
  },
  {
    name: "split-KV packed window",
    shape: shape({ heads: 4, kvHeads: 2, seqLenQ: 3, seqLenKV: 64, window: 10 }),
    phase: "decode",
    tiling: tiling({ blockM: 16, blockN: 8, splits: 4, packGqa: true })
  },
  {
    name: "more splits than key tiles",
    shape: shape({ heads: 2, kvHeads: 2, seqLenQ: 1, seqLenKV: 20 }),
    phase: "decode",
    tiling: tiling({ blockM: 16, blockN: 8, splits: 5 })
  },
  {
    name: "causal window prefill",
    shape: shape({ heads: 2, kvHeads: 2, seqLenQ: 40, seqLenKV: 40, window: 7 }),
    phase: "prefill",
    tiling: tiling({ blockM: 8, blockN: 8 })
  },
  {
    name: "window 1 prefill",
    shape: shape({ seqLenQ: 19, seqLenKV: 19, window: 1 }),
    phase: "prefill",
    tiling: tiling({ blockM: 8, blockN: 4 })
  },
  {
    // Queries 0..17 come before key 0 and attend to no key.
    name: "more queries than keys",
    shape: shape({ heads: 2, kvHeads: 2, seqLenQ: 30, seqLenKV: 12 }),
    phase: "prefill",
    tiling: tiling({ blockM: 8, blockN: 4 })
  },
  {
    name: "chunked prefill",
    shape: shape({ heads: 2, kvHeads: 1, seqLenQ: 9, seqLenKV: 45 }),
    phase: "prefill",
    tiling: tiling({ blockM: 8, blockN: 16 })
  },
  {
    name: "train causal GQA",
    shape: shape({ batch: 2, heads: 2, kvHeads: 1, seqLenQ: 33, seqLenKV: 33 }),
    phase: "train",
    tiling: tiling({ blockM: 16, blockN: 8 }),
    backwardTiling: tiling({ blockM: 8, blockN: 16 })
  },
  {
    name: "train causal window",
    shape: shape({ heads: 2, kvHeads: 2, seqLenQ: 20, seqLenKV: 26, window: 5 }),
    phase: "train",
    tiling: tiling({ blockM: 8, blockN: 8 }),
    backwardTiling: tiling({ blockM: 4, blockN: 8 })
  },
  {
    // Small odd tiles put the last query that attends to a key tile at the start of a query tile.
    name: "train window small tiles",
    shape: shape({ seqLenQ: 23, seqLenKV: 23, window: 3 }),
    phase: "train",
    tiling: tiling({ blockM: 4, blockN: 5 }),
    backwardTiling: tiling({ blockM: 2, blockN: 3 })
  },
  {
    name: "train non-causal",
    shape: shape({ heads: 4, kvHeads: 2, seqLenQ: 18, seqLenKV: 27, causal: false, headDimV: 8 }),
    phase: "train",
    tiling: tiling({ blockM: 8, blockN: 16, kernel: "fa3" }),
    backwardTiling: tiling({ blockM: 16, blockN: 8, kernel: "fa3" })
  },
  {
    name: "train more queries than keys",
    shape: shape({ seqLenQ: 25, seqLenKV: 10 }),
    phase: "train",
    tiling: tiling({ blockM: 8, blockN: 4 }),
    backwardTiling: tiling({ blockM: 4, blockN: 4 })
  }
]

function build(scheduleCase: ScheduleCase): DenseSchedule {
  return new DenseSchedule({
    shape: scheduleCase.shape,
    phase: scheduleCase.phase,
    tiling: scheduleCase.tiling,
    backwardTiling: scheduleCase.backwardTiling
  })
}

function allItems(schedule: DenseSchedule): DenseWorkItem[] {
  return Array.from({ length: schedule.size }, (_, index) => schedule.item(index))
}

/** Checks whether `query` attends to `key`, through the mask's own visibleKeys. */
function visible(attention: AttentionShape, query: number, key: number): boolean {
  const { lo, hi } = visibleKeys(attention, query)
  return key >= lo && key < hi
}

/** Coverage counters, one per (batch, query head, query, key) pair. */
class PairCoverage {
  readonly counts: Uint16Array

  constructor(private readonly attention: AttentionShape) {
    this.counts = new Uint16Array(attention.batch * attention.heads * attention.seqLenQ * attention.seqLenKV)
  }

  private index(batch: number, head: number, query: number, key: number): number {
    const { heads, seqLenQ, seqLenKV } = this.attention
    return ((batch * heads + head) * seqLenQ + query) * seqLenKV + key
  }

  add(batch: number, head: number, query: number, key: number): void {
    this.counts[this.index(batch, head, query, key)]! += 1
  }

  /** Lists the visible pairs covered other than exactly once, at most `limit` of them. */
  wrongVisible(limit = 10): string[] {
    const { batch: batches, heads, seqLenQ, seqLenKV } = this.attention
    const wrong: string[] = []
    for (let batch = 0; batch < batches; batch++) {
      for (let head = 0; head < heads; head++) {
        for (let query = 0; query < seqLenQ; query++) {
          for (let key = 0; key < seqLenKV; key++) {
            if (!visible(this.attention, query, key)) continue
            const covered = this.counts[this.index(batch, head, query, key)]!
            if (covered !== 1 && wrong.length < limit) wrong.push(`batch ${batch} head ${head} query ${query} key ${key}: covered ${covered} times`)
          }
        }
      }
    }
    return wrong
  }
}

function sumCountsOf(items: ReadonlyArray<{ count: number; counts: WorkCounts }>): WorkCounts {
  const total = { tensorFlops: 0, usefulFlops: 0, expOps: 0, vectorFlops: 0, hbm: 0, l2: 0, smem: 0 }
  for (const { count, counts } of items) {
    total.tensorFlops += count * counts.tensorFlops
    total.usefulFlops += count * counts.usefulFlops
    total.expOps += count * counts.expOps
    total.vectorFlops += count * counts.vectorFlops
    total.hbm += count * counts.bytes.hbm
    total.l2 += count * counts.bytes.l2
    total.smem += count * counts.bytes.smem
  }
  const { hbm, l2, smem, ...rest } = total
  return { ...rest, bytes: { hbm, l2, smem } }
}

describe("DenseSchedule", () => {
  for (const scheduleCase of cases) {
    describe(scheduleCase.name, () => {
      const schedule = build(scheduleCase)
      const attention = scheduleCase.shape
      const items = allItems(schedule)
      const forward = items.filter((item) => item.kernel === "forward")
      const backward = items.filter((item) => item.kernel === "backward")
      const combine = items.filter((item) => item.kernel === "combine")

      it("item indexes are their position", () => {
        expect(items.map((item) => item.index)).toEqual(items.map((_, index) => index))
        expect(forward.length).toBe(schedule.forwardItems)
        expect(combine.length).toBe(schedule.combineItems)
        expect(backward.length).toBe(schedule.backwardItems)
      })

      it("out-of-range index throws", () => {
        expect(() => schedule.item(-1)).toThrow(RangeError)
        expect(() => schedule.item(schedule.size)).toThrow(RangeError)
        expect(() => schedule.item(0.5)).toThrow(RangeError)
      })

      it("item heads share its KV head", () => {
        for (const item of items) {
          for (const head of item.heads) {
            expect(Math.floor(head / schedule.group), `item ${item.index}, head ${head}`).toBe(item.kvHead)
          }
        }
      })

      it("MMA rows hold the real rows", () => {
        // Forward rows are query rows of every packed head; backward rows are key rows.
        for (const item of forward) {
          expect(item.rows, `item ${item.index}`).toBeGreaterThanOrEqual((item.queryEnd - item.queryStart) * item.heads.length)
        }
        for (const item of backward) {
          expect(item.rows, `item ${item.index}`).toBeGreaterThanOrEqual(item.keyEnd - item.keyStart)
        }
      })

      it("forward covers each visible pair once", () => {
        const coverage = new PairCoverage(attention)
        const problems: string[] = []

        for (const item of forward) {
          let itemPairs = 0
          for (const step of schedule.steps(item)) {
            if (step.start < item.keyStart || step.end > item.keyEnd) problems.push(`item ${item.index}: step [${step.start}, ${step.end}) leaves the item's keys`)
            let positionPairs = 0
            for (let query = item.queryStart; query < item.queryEnd; query++) {
              for (let key = step.start; key < step.end; key++) {
                if (!visible(attention, query, key)) continue
                positionPairs++
                for (const head of item.heads) coverage.add(item.batch, head, query, key)
              }
            }
            if (positionPairs === 0) problems.push(`item ${item.index}: step [${step.start}, ${step.end}) has no visible pair`)

            // A tile needs masking when some pair of its full blockN width is hidden or past the last key.
            const fullTile = (item.queryEnd - item.queryStart) * schedule.tiling.blockN
            if (step.partial !== positionPairs < fullTile) problems.push(`item ${item.index}: step [${step.start}, ${step.end}) partial is ${step.partial}`)
            itemPairs += positionPairs * item.heads.length
          }

          const usefulFlops = 2 * (attention.headDim + attention.headDimV) * itemPairs
          if (schedule.counts(item).usefulFlops !== usefulFlops) {
            problems.push(`item ${item.index}: usefulFlops ${schedule.counts(item).usefulFlops}, visible pairs give ${usefulFlops}`)
          }
        }

        expect(problems).toEqual([])
        expect(coverage.wrongVisible()).toEqual([])
      })

      it("step summaries match steps", () => {
        for (const item of forward) {
          const steps = schedule.steps(item)
          const keys = steps.reduce((sum, step) => sum + step.end - step.start, 0)
          const partialSteps = steps.filter((step) => step.partial).length

          expect(schedule.forwardStepSummary(item), `item ${item.index}`).toEqual({ steps: steps.length, keys, partialSteps })
        }
        for (const item of backward) {
          const steps = schedule.steps(item)
          const rows = steps.reduce((sum, step) => sum + step.end - step.start, 0)

          expect(schedule.backwardStepSummary(item), `item ${item.index}`).toEqual({ steps: steps.length, rows })
        }
      })

      it("item counts sum to class counts", () => {
        const perItem = sumCountsOf(items.map((item) => ({ count: 1, counts: schedule.counts(item) })))
        const perClass = sumCountsOf(schedule.classes)

        expect(schedule.classes.reduce((sum, c) => sum + c.count, 0)).toBe(schedule.size)
        expect(perClass).toEqual(perItem)
      })

      if (scheduleCase.tiling.splits > 1) {
        it("combine covers each row once", () => {
          const rows = new Map<string, number>()
          for (const item of combine) {
            expect(schedule.steps(item), `item ${item.index}`).toEqual([])
            for (const head of item.heads) {
              for (let query = item.queryStart; query < item.queryEnd; query++) {
                const row = `batch ${item.batch} head ${head} query ${query}`
                rows.set(row, (rows.get(row) ?? 0) + 1)
              }
            }
          }

          expect(rows.size).toBe(attention.batch * attention.heads * attention.seqLenQ)
          expect([...rows.entries()].filter(([, times]) => times !== 1)).toEqual([])
        })
      }

      if (scheduleCase.phase === "train") {
        it("backward covers each visible pair once", () => {
          const coverage = new PairCoverage(attention)
          const problems: string[] = []
          const backwardTiling = scheduleCase.backwardTiling!

          for (const item of backward) {
            expect(item.heads, `item ${item.index}`).toHaveLength(1)
            const head = item.heads[0]!
            let itemPairs = 0
            for (const step of schedule.steps(item)) {
              let stepPairs = 0
              for (let query = step.start; query < step.end; query++) {
                for (let key = item.keyStart; key < item.keyEnd; key++) {
                  if (!visible(attention, query, key)) continue
                  stepPairs++
                  coverage.add(item.batch, head, query, key)
                }
              }
              if (stepPairs === 0) problems.push(`item ${item.index}: query tile [${step.start}, ${step.end}) has no visible pair`)

              const fullTile = backwardTiling.blockM * (item.keyEnd - item.keyStart)
              if (step.partial !== stepPairs < fullTile) problems.push(`item ${item.index}: query tile [${step.start}, ${step.end}) partial is ${step.partial}`)
              itemPairs += stepPairs
            }

            const usefulFlops = 2 * (3 * attention.headDim + 2 * attention.headDimV) * itemPairs
            if (schedule.counts(item).usefulFlops !== usefulFlops) {
              problems.push(`item ${item.index}: usefulFlops ${schedule.counts(item).usefulFlops}, visible pairs give ${usefulFlops}`)
            }
          }

          expect(problems).toEqual([])
          expect(coverage.wrongVisible()).toEqual([])
        })
      }
    })
  }
})
