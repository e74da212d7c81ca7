/**
 * FlashAttention kernel generations as priced by the cost model.
 *
 * fa2: warp-synchronous mma.sync; each warp computes its rows' softmax between
 * its own matrix products, so softmax overlaps the tensor cores only through
 * other warps. Runs on every NVIDIA part; AMD parts use it as the generic path.
 * fa3: warpgroup MMA (wgmma) with warp specialization and ping-pong scheduling
 * across two consumer warpgroups, so one group's softmax runs under the other's
 * matrix products. Needs asynchronous MMA (Hopper and later).
 */
export type KernelGeneration = "fa2" | "fa3"

export interface GenerationParameters {
  readonly mma: "sync" | "async"
  /**
   * Fraction of min(matrix-product time, softmax time) hidden behind the longer
   * of the two. Fitted: see the constants below.
   */
  readonly softmaxOverlap: number
  /**
   * Fraction of the achievable tensor rate the backward kernel's five matrix
   * products reach: register pressure forces smaller MMA tiles and dS makes a
   * round trip through shared memory between products. Fitted: see below.
   */
  readonly backwardMmaEfficiency: number
  /**
   * Consumers that each read a staged K/V tile from shared memory: the warps
   * (fa2) or consumer warpgroups (fa3) that hold at least one of the `rows`
   * MMA rows (16 per warp, 64 per warpgroup).
   */
  readonly readersPerCta: (warps: number, rows: number) => number
  /** Smallest MMA tile height; decode pads packed query rows up to it. */
  readonly mmaRows: number
}

/**
 * Parameters fitted to published measurements, one data point each; every other
 * published point is held out and checked (test/calibration). The fit is
 * reproducible: `node dist/scripts/fit-kernel-generations.js` prints these values
 * from the fixtures in fixtures/published/.
 *
 * - fa2.softmaxOverlap: FlashAttention-2 forward on A100 SXM4 80GB, non-causal,
 *   head dim 128, seqLen 16k, about 230 TFLOP/s (FlashAttention-2 paper, text).
 * - fa2.backwardMmaEfficiency: FlashAttention-2 forward+backward, same setting,
 *   203 TFLOP/s (FlashAttention-2 paper, Figure 4), given the forward fit.
 * - fa3.softmaxOverlap: FlashAttention-3 forward on H100 SXM5, non-causal, head
 *   dim 128, seqLen 16k, 648 TFLOP/s (FlashAttention-3 paper, Figure 5).
 * - fa3.backwardMmaEfficiency has no published point here; it reuses fa2's value.
 */
export const fitted = {
  fa2: { softmaxOverlap: 0.539, backwardMmaEfficiency: 0.782 },
  fa3: { softmaxOverlap: 0.47 }
} as const

export const generations: Record<KernelGeneration, GenerationParameters> = {
  fa2: {
    mma: "sync",
    softmaxOverlap: fitted.fa2.softmaxOverlap,
    backwardMmaEfficiency: fitted.fa2.backwardMmaEfficiency,
    readersPerCta: (warps, rows) => Math.max(1, Math.min(warps, Math.ceil(rows / 16))),
    mmaRows: 16
  },
  fa3: {
    mma: "async",
    softmaxOverlap: fitted.fa3.softmaxOverlap,
    backwardMmaEfficiency: fitted.fa2.backwardMmaEfficiency,
    readersPerCta: (warps, rows) => Math.max(1, Math.min(Math.floor(warps / 4) - 1, Math.ceil(rows / 64))),
    mmaRows: 64
  }
}

/**
 * FP32 vector work per score element, in FLOP at the FMA-peak convention (one
 * lane-instruction counts 2, as the FP32 peak counts an FMA as 2). Forward: one
 * fused scale-and-subtract, one max, one add into the row sum, one conversion of
 * P to 16 bits: 4 instructions. Backward: the same recomputation plus
 * dS = P ⊙ (dP − D) and its conversion: 6 instructions.
 */
export const vectorFlopsPerScore = { forward: 8, backward: 12 } as const

/**
 * Extra vector work per score of a partly masked tile: comparing the key index
 * with the row's visible range and selecting −∞, 2 instructions (4 FLOP at the
 * FMA convention). Fully visible tiles skip it.
 */
export const maskFlopsPerScore = 4

/** Extra vector work per row per key tile: rescaling the output accumulator by exp(m_old − m_new). */
export const rescaleFlopsPerOutputElement = 2
