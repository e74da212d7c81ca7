import { nsaBranches, type AttendedBranch, type NsaBranch, type NsaData } from "./data.js"
import { visibleCompressed, type NsaGeometry } from "./geometry.js"
import { blockScores, selectBlocks } from "./selection.js"

/**
 * The float64 reference of the whole NSA pipeline for one query position and
 * one KV-head group, written as plain loops from the mechanism's definition.
 * It runs compressed-token attention, scores blocks from its probabilities,
 * selects the top n, attends over the selected blocks and over the window,
 * and sums the branches with their gates. It shares no code with the tile
 * schedules or the gpu.js kernels; the executed tiles take their selected
 * blocks from `selectionAt`.
 */
export interface PositionRequest {
  readonly batch: number
  readonly kvHead: number
  readonly position: number
  /** Query heads per KV head (G). */
  readonly group: number
}

export interface Selection {
  readonly blocks: ReadonlyArray<number>
  /** Compressed-attention probability of each visible compressed token, summed over the group's heads. */
  readonly tokenScores: Float64Array
}

export interface PositionReference {
  /** Query heads of the group, in row order. */
  readonly heads: ReadonlyArray<number>
  /** Gated output, G × dv, row-major. */
  readonly output: Float64Array
  /** Each branch's normalized output, G × dv (zeros where a branch sees no key). */
  readonly branches: Readonly<Record<NsaBranch, Float64Array>>
  readonly selectedBlocks: ReadonlyArray<number>
}

const headsOf = (request: PositionRequest): number[] => Array.from({ length: request.group }, (_, k) => request.kvHead * request.group + k)

/** Selects the blocks for the group's query at `position` from float64 compressed-attention probabilities. */
export function selectionAt(data: NsaData, g: NsaGeometry, request: PositionRequest): Selection {
  const { batch, kvHead, position } = request
  const tokens = visibleCompressed(g, position)
  const keys = data.compressedKeys(batch, kvHead, tokens)
  const tokenScores = new Float64Array(tokens)
  for (const head of headsOf(request)) {
    const q = data.query(batch, head, position)
    const probabilities = softmax(keys.map((k) => dot(q, k) / Math.sqrt(q.length)))
    probabilities.forEach((p, i) => (tokenScores[i] = tokenScores[i]! + p))
  }
  return { blocks: selectBlocks(g, position, blockScores(g, position, tokenScores)), tokenScores }
}

/** Computes every branch and the gated output at one position, in float64. */
export function referencePosition(data: NsaData, g: NsaGeometry, request: PositionRequest): PositionReference {
  const { batch, kvHead, position } = request
  const heads = headsOf(request)
  const dv = data.headDimV

  // Compressed branch: one softmax per head, whose probabilities also score the selection blocks.
  const tokens = visibleCompressed(g, position)
  const compressedKeys = data.compressedKeys(batch, kvHead, tokens)
  const compressedValues = Array.from({ length: tokens }, (_, i) => data.compressedValue(batch, kvHead, i))
  const compressed = new Float64Array(heads.length * dv)
  const tokenScores = new Float64Array(tokens)
  heads.forEach((head, row) => {
    const q = data.query(batch, head, position)
    const probabilities = softmax(compressedKeys.map((k) => dot(q, k) / Math.sqrt(q.length)))
    probabilities.forEach((p, i) => {
      tokenScores[i] = tokenScores[i]! + p
      const v = compressedValues[i]!
      for (let c = 0; c < dv; c++) compressed[row * dv + c] = compressed[row * dv + c]! + p * v[c]!
    })
  })
  const selectedBlocks = selectBlocks(g, position, blockScores(g, position, tokenScores))

  const selectedPositions = selectedBlocks.flatMap((block) => range(block * g.selectBlock, Math.min((block + 1) * g.selectBlock, position + 1)))
  const windowPositions = range(Math.max(0, position - g.window + 1), position + 1)
  const rowsOf = (branch: AttendedBranch, positions: ReadonlyArray<number>) => ({
    keys: positions.map((p) => data.key(branch, batch, kvHead, p)),
    values: positions.map((p) => data.value(branch, batch, kvHead, p))
  })
  const selectedRows = rowsOf("selected", selectedPositions)
  const windowRows = rowsOf("window", windowPositions)

  const branches: Record<NsaBranch, Float64Array> = {
    compressed,
    selected: new Float64Array(heads.length * dv),
    window: new Float64Array(heads.length * dv)
  }
  const output = new Float64Array(heads.length * dv)
  heads.forEach((head, row) => {
    const q = data.query(batch, head, position)
    branches.selected.set(attend(q, selectedRows.keys, selectedRows.values, dv), row * dv)
    branches.window.set(attend(q, windowRows.keys, windowRows.values, dv), row * dv)
    for (const branch of nsaBranches) {
      const gate = data.gate(batch, head, position, branch)
      for (let c = 0; c < dv; c++) output[row * dv + c] = output[row * dv + c]! + gate * branches[branch][row * dv + c]!
    }
  })
  return { heads, output, branches, selectedBlocks }
}

/** Computes softmax attention of one query over the given rows, two-pass, in float64; zeros when there are no rows. */
function attend(q: Float32Array, keys: ReadonlyArray<Float32Array>, values: ReadonlyArray<Float32Array>, dv: number): Float64Array {
  const out = new Float64Array(dv)
  if (keys.length === 0) return out
  const weights = softmax(keys.map((k) => dot(q, k) / Math.sqrt(q.length)))
  weights.forEach((w, i) => {
    const v = values[i]!
    for (let c = 0; c < dv; c++) out[c] = out[c]! + w * v[c]!
  })
  return out
}

function softmax(scores: ReadonlyArray<number>): number[] {
  if (scores.length === 0) return []
  const max = scores.reduce((m, s) => Math.max(m, s), -Infinity)
  const exps = scores.map((s) => Math.exp(s - max))
  const total = exps.reduce((sum, e) => sum + e, 0)
  return exps.map((e) => e / total)
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!
  return sum
}

const range = (start: number, end: number): number[] => Array.from({ length: Math.max(0, end - start) }, (_, i) => start + i)
