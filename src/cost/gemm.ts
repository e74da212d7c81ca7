import type { DeviceRates } from "../hardware/device.js"
import type { KernelSpec } from "./kernel-time.js"

/**
 * A dense matrix product (projections around attention) priced as one wave of
 * one CTA per SM, each doing an equal share of `flops` and moving an equal share
 * of `bytes` through HBM and L2. A deliberately plain model: GEMM tiling detail
 * matters less here than counting the work at all.
 */
export function gemmKernel(name: string, flops: number, bytes: number, device: DeviceRates): KernelSpec {
  const ctas = device.sms
  return {
    name,
    ctasPerSm: 1,
    mma: device.asyncMma ? "async" : "sync",
    softmaxOverlap: 0,
    latencyHidden: 0.5,
    classes: [
      {
        count: ctas,
        counts: {
          tensorFlops: flops / ctas,
          usefulFlops: flops / ctas,
          expOps: 0,
          vectorFlops: 0,
          bytes: { hbm: bytes / ctas, l2: bytes / ctas, smem: bytes / ctas }
        },
        prologueBytes: 0,
        epilogueBytes: 0
      }
    ]
  }
}
