/**
 * Work a kernel does, counted in the units the cost model prices. `bytes.l2` is
 * every global-memory load and store the tiles issue (all of it passes through
 * L2); `bytes.hbm` is the part that misses L2, from the variant's reuse model;
 * `bytes.smem` is shared-memory traffic (writes of staged tiles plus MMA reads).
 */
export interface WorkCounts {
  /** Tensor-core FLOPs the tiles execute, masked parts of partly masked tiles and MMA padding included. */
  readonly tensorFlops: number
  /** Tensor FLOPs for the (query, key) pairs the mask allows: 2 FLOPs per multiply-add. */
  readonly usefulFlops: number
  /** Special-function (exp) operations. */
  readonly expOps: number
  /** FP32 vector operations outside the MMA (scaling, row max, row sum, rescaling). */
  readonly vectorFlops: number
  readonly bytes: {
    readonly hbm: number
    readonly l2: number
    readonly smem: number
  }
}

export const zeroCounts: WorkCounts = { tensorFlops: 0, usefulFlops: 0, expOps: 0, vectorFlops: 0, bytes: { hbm: 0, l2: 0, smem: 0 } }

export function addCounts(a: WorkCounts, b: WorkCounts): WorkCounts {
  return {
    tensorFlops: a.tensorFlops + b.tensorFlops,
    usefulFlops: a.usefulFlops + b.usefulFlops,
    expOps: a.expOps + b.expOps,
    vectorFlops: a.vectorFlops + b.vectorFlops,
    bytes: { hbm: a.bytes.hbm + b.bytes.hbm, l2: a.bytes.l2 + b.bytes.l2, smem: a.bytes.smem + b.bytes.smem }
  }
}

export function scaleCounts(a: WorkCounts, factor: number): WorkCounts {
  return {
    tensorFlops: a.tensorFlops * factor,
    usefulFlops: a.usefulFlops * factor,
    expOps: a.expOps * factor,
    vectorFlops: a.vectorFlops * factor,
    bytes: { hbm: a.bytes.hbm * factor, l2: a.bytes.l2 * factor, smem: a.bytes.smem * factor }
  }
}

export const sumCounts = (items: ReadonlyArray<WorkCounts>): WorkCounts => items.reduce(addCounts, zeroCounts)
