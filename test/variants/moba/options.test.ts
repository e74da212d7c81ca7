import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeInput } from "../../../src/decode.js"
import { InputError } from "../../../src/errors.js"
import { MobaOptions, resolveMoba } from "../../../src/variants/moba/options.js"
import type { AttentionShape } from "../../../src/workload/shape.js"

const shape = (seqLenKV: number, causal = true): AttentionShape => ({
  batch: 1,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  headDimV: 128,
  seqLenQ: seqLenKV,
  seqLenKV,
  causal,
  dtype: "bf16"
})

function decode(raw: unknown): MobaOptions {
  const result = decodeInput(MobaOptions, raw, "test")
  if (Either.isLeft(result)) throw result.left
  return result.right
}

describe("MoBA options", () => {
  it("paper defaults at 1M", () => {
    const config = resolveMoba(decode({}), shape(1048576))

    expect(config).toMatchObject({ mode: "block-size", blockSize: 4096, topK: 12, blocks: 256 })
    expect(config.overlap).toEqual({ kind: "independent", origin: "assumed" })
  })

  it("fixed sparsity grows the block", () => {
    const config = resolveMoba(decode({ fixedSparsity: true }), shape(10485760))

    expect(config).toMatchObject({ mode: "fixed-blocks", blockSize: 163840, topK: 3, blocks: 64 })
  })

  it("fixed blocks imply the mode", () => {
    const config = resolveMoba(decode({ fixedBlocks: 16, topK: 2 }), shape(8192))

    expect(config).toMatchObject({ mode: "fixed-blocks", blockSize: 512, topK: 2, blocks: 16 })
  })

  it("head overlap from a string", () => {
    const options = decode({ headOverlap: "0.25" })

    expect(resolveMoba(options, shape(65536)).overlap).toEqual({ kind: "fraction", value: 0.25, origin: "given" })
  })

  it("measured overlap used when present", () => {
    const options = decode({})

    expect(resolveMoba(options, shape(65536), 0.1).overlap).toEqual({ kind: "fraction", value: 0.1, origin: "measured" })
    expect(resolveMoba(decode({ headOverlap: "independent" }), shape(65536), 0.1).overlap.origin).toBe("assumed")
  })

  it("rejects overlap outside [0, 1]", () => {
    expect(() => decode({ headOverlap: 1.5 })).toThrow(InputError)
    expect(() => decode({ headOverlap: "often" })).toThrow(InputError)
  })

  it("rejects non-causal shapes", () => {
    const error = captured(() => resolveMoba(decode({}), shape(8192, false)))

    expect(error.issues.map((issue) => issue.path)).toEqual(["causal"])
    expect(error.message).toContain("--causal")
  })

  it("rejects block size with fixed sparsity", () => {
    const error = captured(() => resolveMoba(decode({ blockSize: 512, fixedSparsity: true }), shape(8192)))

    expect(error.issues[0]!.path).toBe("blockSize")
  })

  it("rejects more blocks than keys", () => {
    const error = captured(() => resolveMoba(decode({ fixedBlocks: 64 }), shape(32)))

    expect(error.issues[0]!.path).toBe("fixedBlocks")
  })

  it("top-k above the blocks is clamped", () => {
    const config = resolveMoba(decode({ topK: 100, blockSize: 1024 }), shape(4096))

    expect(config.topK).toBe(100)
    expect(config.blocks).toBe(4)
  })
})

function captured(run: () => unknown): InputError {
  try {
    run()
  } catch (error) {
    if (error instanceof InputError) return error
    throw error
  }
  throw new Error("expected an InputError")
}
