import { Schema } from "effect"
import { InputError, type FieldIssue } from "../../errors.js"
import type { AttentionShape } from "../../workload/shape.js"
import type { VariantFlag } from "../variant.js"

/**
 * Defaults from the MoBA paper (Mixture of Block Attention for Long-Context
 * LLMs, arXiv 2502.13189): block 4096 and top-12 in the 1M-token continual
 * training of Llama-3.1-8B; the fixed-sparsity series keeps 64 blocks and top-3
 * from 8k to 10M tokens.
 */
export const mobaDefaults = {
  blockSize: 4096,
  topK: 12,
  fixedBlocks: 64,
  fixedTopK: 3
} as const

const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())
const Fraction = Schema.Number.pipe(Schema.between(0, 1))

/**
 * Agreement of the query heads of one GQA group on their history blocks, in
 * [0, 1]: 1 means they all pick the same blocks, 0 means their picks overlap as
 * little as the number of past blocks allows. "independent" assumes that every
 * head picks uniformly at random and on its own. "measured" takes the overlap
 * from executed gating, or "independent" when nothing was executed.
 */
export const HeadOverlap = Schema.Union(Schema.Literal("measured", "independent"), Fraction, Schema.NumberFromString.pipe(Schema.between(0, 1))).annotations({
  message: () => ({ message: 'a number in [0, 1], "measured" or "independent"', override: true })
})
export type HeadOverlap = typeof HeadOverlap.Type

export const MobaOptions = Schema.Struct({
  /** Keys per block b; default 4096 (not allowed with fixed sparsity, where b = seqLenKV / blocks). */
  blockSize: Schema.optional(PositiveInt),
  /** Blocks each query attends, counting its own (current) block; default 12, or 3 with fixed sparsity. */
  topK: Schema.optional(PositiveInt),
  headOverlap: Schema.optionalWith(HeadOverlap, { default: () => "measured" as const, exact: true }),
  /** Keep the block count fixed and grow the block with the sequence (b = seqLenKV / fixedBlocks). */
  fixedSparsity: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  /** Block count in fixed-sparsity mode; setting it turns the mode on. Default 64. */
  fixedBlocks: Schema.optional(PositiveInt)
})
export type MobaOptions = typeof MobaOptions.Type

export const mobaFlags: ReadonlyArray<VariantFlag> = [
  { flag: "moba-block", key: "blockSize", type: "integer", describe: "keys per MoBA block (default 4096)" },
  { flag: "moba-top-k", key: "topK", type: "integer", describe: "blocks attended per query, counting the current block (default 12; 3 with fixed sparsity)" },
  {
    flag: "moba-head-overlap",
    key: "headOverlap",
    type: "string",
    describe: 'agreement of a GQA group\'s heads on history blocks: a number in [0, 1], "independent", or "measured" (default: from executed gating, else independent)'
  },
  { flag: "moba-fixed-sparsity", key: "fixedSparsity", type: "boolean", describe: "fixed-sparsity mode: fixed block count, block size = seq-len / blocks" },
  { flag: "moba-fixed-blocks", key: "fixedBlocks", type: "integer", describe: "block count in fixed-sparsity mode (default 64; implies --moba-fixed-sparsity true)" }
]

/** Origin of the overlap used for pricing. */
export type OverlapOrigin = "measured" | "assumed" | "given"

/** The overlap used for pricing: a fraction, or the independent-heads model. */
export type OverlapModel = { readonly kind: "fraction"; readonly value: number; readonly origin: OverlapOrigin } | { readonly kind: "independent"; readonly origin: "assumed" }

/** Options resolved against one shape: the block size and top-k actually used. */
export interface MobaConfig {
  readonly mode: "block-size" | "fixed-blocks"
  readonly blockSize: number
  readonly topK: number
  /** Blocks the key sequence splits into: ceil(seqLenKV / blockSize). */
  readonly blocks: number
  readonly overlap: OverlapModel
}

/**
 * Resolve the options for a shape, or raise an InputError naming the field.
 * MoBA is causal by construction (future blocks are never candidates and the
 * current block is causal inside), so a non-causal shape is rejected. A top-k
 * above the blocks that exist is not an error: each query is clamped to the
 * blocks before it, as the paper's gating does.
 */
export function resolveMoba(options: MobaOptions, shape: AttentionShape, measuredOverlap?: number): MobaConfig {
  const issues: FieldIssue[] = []
  const fixed = options.fixedSparsity || options.fixedBlocks !== undefined
  if (!shape.causal) {
    issues.push({ path: "causal", value: false, expected: "a causal mask: MoBA selects among past blocks and keeps the current block causal (pass --causal)" })
  }
  if (shape.window !== undefined) {
    issues.push({ path: "window", value: shape.window, expected: "no sliding window: MoBA's block selection replaces it" })
  }
  if (fixed && options.blockSize !== undefined) {
    issues.push({
      path: "blockSize",
      value: options.blockSize,
      expected: "no block size in fixed-sparsity mode, where the block size is seqLenKV / fixedBlocks; set fixedBlocks instead"
    })
  }
  const fixedBlocks = options.fixedBlocks ?? mobaDefaults.fixedBlocks
  if (fixed && fixedBlocks > shape.seqLenKV) {
    issues.push({ path: "fixedBlocks", value: fixedBlocks, expected: `at most seqLenKV (${shape.seqLenKV}) blocks, so that every block holds a key` })
  }
  if (issues.length > 0) throw new InputError({ origin: "moba options", issues })

  const blockSize = fixed ? Math.ceil(shape.seqLenKV / fixedBlocks) : (options.blockSize ?? mobaDefaults.blockSize)
  const topK = options.topK ?? (fixed ? mobaDefaults.fixedTopK : mobaDefaults.topK)
  return {
    mode: fixed ? "fixed-blocks" : "block-size",
    blockSize,
    topK,
    blocks: Math.ceil(shape.seqLenKV / blockSize),
    overlap: overlapModel(options.headOverlap, measuredOverlap)
  }
}

function overlapModel(option: HeadOverlap, measured: number | undefined): OverlapModel {
  if (typeof option === "number") return { kind: "fraction", value: option, origin: "given" }
  if (option === "measured" && measured !== undefined) return { kind: "fraction", value: measured, origin: "measured" }
  return { kind: "independent", origin: "assumed" }
}
