import { describe, expect, it } from "vitest"
import { fillRow, roundMantissa, seededRandom, TensorId } from "../../src/exec/data.js"

describe("tile data", () => {
  it("same key gives same row", () => {
    const a = new Float32Array(64)
    const b = new Float32Array(64)
    const key = { seed: 3, tensor: TensorId.key, batch: 1, head: 2, position: 123456 }

    fillRow(a, 0, 64, key, "bf16")
    fillRow(b, 0, 64, key, "bf16")

    expect(Array.from(a)).toEqual(Array.from(b))
  })

  it("positions give different rows", () => {
    const a = new Float32Array(16)
    const b = new Float32Array(16)
    fillRow(a, 0, 16, { seed: 3, tensor: TensorId.key, batch: 0, head: 0, position: 10 }, "bf16")
    fillRow(b, 0, 16, { seed: 3, tensor: TensorId.key, batch: 0, head: 0, position: 11 }, "bf16")

    expect(Array.from(a)).not.toEqual(Array.from(b))
  })

  it("bf16 values are representable", () => {
    const row = new Float32Array(256)
    fillRow(row, 0, 256, { seed: 9, tensor: TensorId.query, batch: 0, head: 0, position: 0 }, "bf16")
    const bits = new Uint32Array(row.buffer)

    // bf16 keeps the top 16 bits of an FP32 word.
    expect(Array.from(bits).every((word) => (word & 0xffff) === 0)).toBe(true)
    expect(Array.from(row).every((x) => x >= -1 && x <= 1)).toBe(true)
  })

  it("rounds to nearest even", () => {
    // 1 + 2^-8 lies halfway between bf16 neighbours 1 and 1 + 2^-7; the even one is 1.
    expect(roundMantissa(1 + 2 ** -8, 7)).toBe(1)
    expect(roundMantissa(1 + 3 * 2 ** -8, 7)).toBe(1 + 2 ** -6)
    expect(roundMantissa(-0.5, 7)).toBe(-0.5)
  })

  it("seeded random repeats", () => {
    const a = seededRandom(5)
    const b = seededRandom(5)

    expect([a(), a(), a()]).toEqual([b(), b(), b()])
  })
})
