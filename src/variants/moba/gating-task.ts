import type { Backend, CountedWork } from "../../exec/task.js"

/**
 * One executed gating tile: `rows` query rows (the G heads of a KV head at some
 * positions, padded to the MMA height) scored against block means in steps of
 * `blockTile` blocks. Step s covers blocks stepStart[s] .. + stepBlocks[s] − 1;
 * `means` holds blockTile × headDim FP32 values per step (zero past the real
 * blocks) and `meansReference` the same layout in float64. Row r's candidates
 * are the blocks before its current block currentBlock[r]; later blocks are
 * masked in the kernel, so they can never be selected.
 */
export interface MobaGatingTask {
  readonly kind: "moba-gating"
  readonly id: string
  readonly backend: Backend
  readonly rows: number
  readonly realRows: number
  readonly blockTile: number
  readonly headDim: number
  /** Bytes per element of the stored block means at the modeled dtype, for counting loads. */
  readonly elementBytes: number
  readonly topK: number
  readonly stepStart: Float32Array
  readonly stepBlocks: Float32Array
  readonly q: Float32Array
  readonly means: Float32Array
  readonly meansReference: Float64Array
  readonly currentBlock: Float32Array
}

export interface MobaGatingResult {
  readonly kind: "moba-gating"
  readonly id: string
  /** The gpu.js backend that actually ran, which may differ from the one requested. */
  readonly backend: Backend
  /** Kernel scores, rows × candidate blocks (all steps' blocks in order); masked entries hold the kernel's sentinel. */
  readonly scores: Float32Array
  readonly referenceScores: Float64Array
  /** Selected blocks per row from the kernel's scores, topK slots in ascending order, −1 where unused (exact in FP32 below 2^24 blocks). */
  readonly selected: Float32Array
  /** The same from the float64 scores. */
  readonly referenceSelected: Float32Array
  readonly counted: CountedWork
  readonly kernelSeconds: number
  readonly referenceSeconds: number
  /** Set by the worker entry: the handler's wall time and the worker's thread id. */
  readonly workerSeconds?: number | undefined
  readonly threadId?: number | undefined
}

export function mobaGatingTaskArrays(task: MobaGatingTask): Array<Float32Array | Float64Array> {
  return [task.stepStart, task.stepBlocks, task.q, task.means, task.meansReference, task.currentBlock]
}

export function mobaGatingResultArrays(result: MobaGatingResult): Array<Float32Array | Float64Array> {
  return [result.scores, result.referenceScores, result.selected, result.referenceSelected]
}

export function isMobaGatingResult(result: object): result is MobaGatingResult {
  return "kind" in result && result.kind === "moba-gating"
}

/** Candidate blocks a gating task covers: the blocks of all its steps. */
export const gatingCandidates = (task: Pick<MobaGatingTask, "stepStart" | "stepBlocks">): number =>
  task.stepStart.length === 0 ? 0 : task.stepStart[task.stepStart.length - 1]! + task.stepBlocks[task.stepBlocks.length - 1]!
