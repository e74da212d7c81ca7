import type { AttentionShape, Phase } from "../../workload/shape.js"
import type { KeySpace } from "../dense/key-space.js"
import { DenseSchedule, itemQueryRows, type DenseWorkItem } from "../dense/schedule.js"
import type { DenseTiling } from "../dense/tiling.js"
import { compressedPairsInRange, compressedTokens, firstPositionSeeing, visibleCompressed, type NsaGeometry } from "./geometry.js"

/**
 * One CTA of the compressed-token attention: a dense work item whose keys are
 * compressed tokens. Backward items own one tile of compressed tokens of one
 * head and stream the query tiles that see it.
 */
export type CompressedWorkItem = DenseWorkItem

export const compressedQueryRows = itemQueryRows

export interface CompressedScheduleInput {
  readonly shape: AttentionShape
  readonly geometry: NsaGeometry
  readonly phase: Phase
  readonly tiling: DenseTiling
  readonly backwardTiling?: DenseTiling | undefined
}

/**
 * Compressed tokens as a key space: query i at position p = i + seqLenKV −
 * seqLenQ sees tokens [0, visibleCompressed(p)). Compressed K and V come from
 * separate compression MLPs, so each token loads dk + dv elements.
 */
export function compressedKeySpace(shape: AttentionShape, geometry: NsaGeometry): KeySpace {
  const offset = shape.seqLenKV - shape.seqLenQ
  return {
    keys: compressedTokens(geometry, shape.seqLenKV),
    rowElements: shape.headDim + shape.headDimV,
    visible: (query) => ({ lo: 0, hi: visibleCompressed(geometry, query + offset) }),
    pairs: (queryStart, queryEnd, keyStart, keyEnd) => compressedPairsInRange(geometry, queryStart + offset, queryEnd + offset, keyStart, keyEnd),
    queriesSeeing: (keyStart) => ({ lo: Math.min(Math.max(0, firstPositionSeeing(geometry, keyStart) - offset), shape.seqLenQ), hi: shape.seqLenQ })
  }
}

/**
 * The FlashAttention-style schedule of the compression branch: the dense
 * schedule (item order, split-KV, GQA packing, combine and backward items)
 * over the compressed-token key space. The output always carries its
 * log-sum-exp, because the selection scores normalize with it. Forward items
 * are priced in classes of equal work, since query tiles far outnumber the
 * distinct compressed-token tile counts.
 */
export class CompressedSchedule extends DenseSchedule {
  readonly geometry: NsaGeometry
  /** Compressed tokens the sequence produces: the key space's size. */
  readonly tokens: number
  /** Position of query 0 (bottom-right causal alignment). */
  readonly offset: number

  constructor(input: CompressedScheduleInput) {
    const keySpace = compressedKeySpace(input.shape, input.geometry)
    super({ ...input, keySpace, storeLogSumExp: true, classGrouping: "equal-work" })
    this.geometry = input.geometry
    this.tokens = keySpace.keys
    this.offset = input.shape.seqLenKV - input.shape.seqLenQ
  }

  /** Compressed tokens visible to query `queryIndex`. */
  visible(queryIndex: number): number {
    return visibleCompressed(this.geometry, queryIndex + this.offset)
  }
}
