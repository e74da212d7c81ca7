import { TensorId } from "../../exec/data.js"
import type { AttentionShape } from "../../workload/shape.js"
import { blockOf, queryPosition } from "./blocks.js"
import { blockMeanKey, gateScores, selectBlocks, type TensorData } from "./gating.js"
import type { MobaConfig } from "./options.js"

/**
 * Float64 MoBA, written from the definition. It gates every past block by
 * q · mean(K_block), keeps the top-k with the current block, and runs a
 * two-pass softmax over exactly the selected keys: the current block up to the
 * query and the history blocks whole. It shares the gating helpers with the
 * host side of execution but none of the tiled attention code.
 */

export interface ReferenceQuery {
  readonly seed: number
  readonly batch: number
  readonly head: number
  /** Key position of the query. */
  readonly position: number
}

export interface ReferenceRow {
  /** Selected blocks in ascending order, the current block last. */
  readonly selected: ReadonlyArray<number>
  readonly output: Float64Array
}

/** Selected blocks of one query from float64 gating. */
export function referenceSelection(data: TensorData, shape: AttentionShape, config: Pick<MobaConfig, "blockSize" | "topK">, query: ReferenceQuery): number[] {
  const dk = shape.headDim
  const kvHead = Math.floor(query.head / (shape.heads / shape.kvHeads))
  const current = blockOf(query.position, config.blockSize)
  const q = new Float32Array(dk)
  data.fill(q, 0, dk, { seed: query.seed, tensor: TensorId.query, batch: query.batch, head: query.head, position: query.position })
  const means = Array.from({ length: current }, (_, block) => blockMeanKey(data, { seed: query.seed, batch: query.batch, kvHead }, block, config.blockSize, dk))
  return selectBlocks(gateScores(q, means, dk), current, config.topK)
}

/**
 * Output of one query over its selected keys. `covers(key)`, when given,
 * narrows the keys to those an execution actually covered (leading tiles of
 * each block); selection itself is never narrowed.
 */
export function referenceRow(
  data: TensorData,
  shape: AttentionShape,
  config: Pick<MobaConfig, "blockSize" | "topK">,
  query: ReferenceQuery,
  covers?: (key: number) => boolean,
  selected: ReadonlyArray<number> = referenceSelection(data, shape, config, query)
): ReferenceRow {
  const dk = shape.headDim
  const dv = shape.headDimV
  const kvHead = Math.floor(query.head / (shape.heads / shape.kvHeads))
  const q = new Float32Array(dk)
  data.fill(q, 0, dk, { seed: query.seed, tensor: TensorId.query, batch: query.batch, head: query.head, position: query.position })

  const keys: number[] = []
  for (const block of selected) {
    const end = Math.min((block + 1) * config.blockSize, query.position + 1)
    for (let key = block * config.blockSize; key < end; key++) if (!covers || covers(key)) keys.push(key)
  }

  const k = new Float32Array(dk)
  const v = new Float32Array(dv)
  const scores = keys.map((key) => {
    data.fill(k, 0, dk, { seed: query.seed, tensor: TensorId.key, batch: query.batch, head: kvHead, position: key })
    let dot = 0
    for (let c = 0; c < dk; c++) dot += q[c]! * k[c]!
    return dot / Math.sqrt(dk)
  })
  const output = new Float64Array(dv)
  if (keys.length === 0) return { selected, output }

  const max = scores.reduce((best, score) => Math.max(best, score), -Infinity)
  const weights = scores.map((score) => Math.exp(score - max))
  const total = weights.reduce((sum, w) => sum + w, 0)
  keys.forEach((key, index) => {
    data.fill(v, 0, dv, { seed: query.seed, tensor: TensorId.value, batch: query.batch, head: kvHead, position: key })
    const p = weights[index]! / total
    for (let c = 0; c < dv; c++) output[c] = output[c]! + p * v[c]!
  })
  return { selected, output }
}

/** Computes every output of a small shape, indexed [batch][head][query], with the selection of each query. */
export function referenceOutputs(data: TensorData, shape: AttentionShape, config: Pick<MobaConfig, "blockSize" | "topK">, seed: number): ReferenceRow[][][] {
  return Array.from({ length: shape.batch }, (_, batch) =>
    Array.from({ length: shape.heads }, (_, head) =>
      Array.from({ length: shape.seqLenQ }, (_, i) => referenceRow(data, shape, config, { seed, batch, head, position: queryPosition(shape, i) }))
    )
  )
}
