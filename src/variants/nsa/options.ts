import { Schema } from "effect"
import { InputError, type FieldIssue } from "../../errors.js"
import type { AttentionShape } from "../../workload/shape.js"
import type { VariantFlag } from "../variant.js"
import type { NsaGeometry } from "./geometry.js"

const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())
const NonNegativeInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/**
 * NSA options. Defaults are the settings of Native Sparse Attention (arXiv
 * 2502.11089): compression block l = 32 with stride d = 16, selection block
 * l' = 64, n = 16 selected blocks counting 1 initial and 2 local blocks,
 * sliding window w = 512. The two MLP widths are this model's assumptions.
 */
export const NsaOptions = Schema.Struct({
  compressBlock: Schema.optionalWith(PositiveInt, { default: () => 32 }),
  compressStride: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  selectBlock: Schema.optionalWith(PositiveInt, { default: () => 64 }),
  selectCount: Schema.optionalWith(PositiveInt, { default: () => 16 }),
  window: Schema.optionalWith(PositiveInt, { default: () => 512 }),
  /** Selection blocks at the start of the sequence that every query keeps. */
  initialBlocks: Schema.optionalWith(NonNegativeInt, { default: () => 1 }),
  /** Selection blocks ending at the query (its own block included) that every query keeps. */
  localBlocks: Schema.optionalWith(PositiveInt, { default: () => 2 }),
  /** Hidden width of the compression MLP; undefined means the head dim of the tensor it compresses (dk for keys, dv for values). */
  compressHidden: Schema.optional(PositiveInt),
  /** Hidden width of the per-head gate MLP (query → hidden → 3 gates). */
  gateHidden: Schema.optionalWith(PositiveInt, { default: () => 64 })
})
export type NsaOptions = typeof NsaOptions.Type

export const nsaFlags: ReadonlyArray<VariantFlag> = [
  { flag: "nsa-block", key: "compressBlock", type: "integer", describe: "compression block length l, in tokens" },
  { flag: "nsa-stride", key: "compressStride", type: "integer", describe: "compression stride d, in tokens (at most l, and dividing l')" },
  { flag: "nsa-select-block", key: "selectBlock", type: "integer", describe: "selection block length l', in tokens (a multiple of d)" },
  { flag: "nsa-select-count", key: "selectCount", type: "integer", describe: "selected blocks n per query, counting the initial and local blocks" },
  { flag: "nsa-window", key: "window", type: "integer", describe: "sliding window w, in tokens, counting the query itself" },
  { flag: "nsa-initial-blocks", key: "initialBlocks", type: "integer", describe: "leading selection blocks every query keeps" },
  { flag: "nsa-local-blocks", key: "localBlocks", type: "integer", describe: "selection blocks ending at the query that every query keeps (at least 1: its own block)" },
  { flag: "nsa-compress-hidden", key: "compressHidden", type: "integer", describe: "hidden width of the compression MLP; default: the head dim it compresses" },
  { flag: "nsa-gate-hidden", key: "gateHidden", type: "integer", describe: "hidden width of the per-head gate MLP" }
]

/**
 * Checks the options against each other and against the shape; every broken
 * rule becomes one issue naming the option, its value and the rule. A
 * selection count larger than the blocks that exist at a position is not an
 * error: the mechanism clamps it to the blocks that exist.
 */
export function checkNsaOptions(options: NsaOptions, shape: AttentionShape): void {
  const issues: FieldIssue[] = []
  const { compressBlock: l, compressStride: d, selectBlock, selectCount, initialBlocks, localBlocks } = options

  if (!shape.causal) {
    issues.push({ path: "causal", value: false, expected: "a causal mask (--causal): compression visibility, block selection and the window are defined looking back from each query" })
  }
  if (d > l) {
    issues.push({ path: "compressStride", value: d, expected: `at most compressBlock (${l}), so the compression blocks cover every key` })
  }
  if (selectBlock % d !== 0) {
    issues.push({ path: "selectBlock", value: selectBlock, expected: `a multiple of compressStride (${d}), so compressed tokens map onto selection blocks` })
  }
  if (initialBlocks + localBlocks > selectCount) {
    issues.push({
      path: "selectCount",
      value: selectCount,
      expected: `at least initialBlocks + localBlocks (${initialBlocks} + ${localBlocks}): the always-kept blocks count towards n`
    })
  }
  if (issues.length > 0) throw new InputError({ origin: "nsa options", issues })
}

/**
 * Builds the NSA geometry for sequences of `seqLenKV` keys. A selection count
 * above the blocks that exist at the last key is clamped to them (never below
 * the always-kept blocks), so per-position index buffers are not priced for
 * blocks that cannot be picked.
 */
export function geometryOf(options: NsaOptions, seqLenKV = Number.POSITIVE_INFINITY): NsaGeometry {
  const blocks = Math.ceil(seqLenKV / options.selectBlock)
  return {
    compressBlock: options.compressBlock,
    compressStride: options.compressStride,
    selectBlock: options.selectBlock,
    selectCount: Math.max(options.initialBlocks + options.localBlocks, Math.min(options.selectCount, blocks)),
    initialBlocks: options.initialBlocks,
    localBlocks: options.localBlocks,
    window: options.window
  }
}
