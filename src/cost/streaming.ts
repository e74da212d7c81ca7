import type { DeviceRates } from "../hardware/device.js"
import type { KernelSpec } from "./kernel-time.js"

/**
 * An elementwise kernel that streams `bytes` through HBM once (read plus write),
 * spread over one CTA per SM slot. Used for small helper kernels: the backward
 * pass's dO·O row sums, FP32-to-16-bit conversion, GQA gradient reduction.
 */
export function streamingKernel(name: string, bytes: number, vectorFlops: number, device: DeviceRates): KernelSpec {
  const ctas = device.sms * 4
  return {
    name,
    ctasPerSm: 4,
    mma: "sync",
    softmaxOverlap: 0,
    latencyHidden: 0.75,
    classes: [
      {
        count: ctas,
        counts: {
          tensorFlops: 0,
          usefulFlops: 0,
          expOps: 0,
          vectorFlops: vectorFlops / ctas,
          bytes: { hbm: bytes / ctas, l2: bytes / ctas, smem: 0 }
        },
        prologueBytes: 0,
        epilogueBytes: 0
      }
    ]
  }
}
