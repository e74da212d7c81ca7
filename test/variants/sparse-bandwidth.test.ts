import { describe, expect, it } from "vitest"
import { decodeVariantOptions } from "../../src/estimate.js"
import { deviceRates, type DeviceRates } from "../../src/hardware/device.js"
import { loadProfile } from "../../src/hardware/load.js"
import { variantModule } from "../../src/variants/registry.js"
import type { VariantId } from "../../src/variants/variant.js"
import type { AttentionShape, Phase } from "../../src/workload/shape.js"

function attention(fields: Partial<AttentionShape> & Pick<AttentionShape, "seqLenQ" | "seqLenKV">): AttentionShape {
  return { batch: 1, heads: 64, kvHeads: 4, headDim: 128, headDimV: 128, causal: true, dtype: "bf16", ...fields }
}

const decode = (seqLen: number, fields: Partial<AttentionShape> = {}): AttentionShape => attention({ seqLenQ: 1, seqLenKV: seqLen, ...fields })
const prefill = (seqLen: number, fields: Partial<AttentionShape> = {}): AttentionShape => attention({ seqLenQ: seqLen, seqLenKV: seqLen, ...fields })

/**
 * Sparse operations whose planners choose split-KV tilings that add kernels
 * (split combines, a separate top-k, larger merges). Several sizes sit where
 * the choice flips as HBM bandwidth grows.
 */
const cases: ReadonlyArray<{ variant: VariantId; phase: Phase; shape: AttentionShape }> = [
  { variant: "nsa", phase: "decode", shape: decode(4096, { batch: 16 }) },
  { variant: "nsa", phase: "decode", shape: decode(16384) },
  { variant: "nsa", phase: "decode", shape: decode(8192, { heads: 8, kvHeads: 8 }) },
  { variant: "nsa", phase: "prefill", shape: prefill(2048) },
  { variant: "moba", phase: "decode", shape: decode(65536, { batch: 16 }) },
  { variant: "moba", phase: "decode", shape: decode(65536) },
  { variant: "moba", phase: "prefill", shape: prefill(4096) },
  { variant: "lightning", phase: "decode", shape: decode(65536, { batch: 8, kvHeads: 64 }) },
  { variant: "lightning", phase: "prefill", shape: prefill(4096, { kvHeads: 64 }) }
]

const profileIds = ["h100-sxm", "a100-sxm-80g"]

/**
 * Multiples of the profile's HBM bandwidth. The profile check keeps HBM below
 * L2 bandwidth, which on the A100 rules out 1.5× through `--set`, so the test
 * scales the device rates that `memory.hbm.bandwidth` sets.
 */
const factors = [1, 1.5, 2, 3]

function withBandwidth(base: DeviceRates, factor: number): DeviceRates {
  return { ...base, hbmBytesPerSecond: base.hbmBytesPerSecond * factor }
}

function plannedSeconds(variant: VariantId, phase: Phase, shape: AttentionShape, device: DeviceRates): number {
  const options = decodeVariantOptions(variant, {}, "test")
  return variantModule(variant).plan({ variant, shape, phase, options }, device).cost.seconds
}

describe("sparse variants with more HBM bandwidth", () => {
  // Each planner keeps the fastest tiling by the cost the estimate prices, so a
  // faster device never plans slower. An increase means a planner compared
  // costs that the estimate does not price.
  const rounding = 1e-12

  for (const id of profileIds) {
    const base = deviceRates(loadProfile(id), "bf16")
    for (const { variant, phase, shape } of cases) {
      it(`${variant} ${phase} ${shape.seqLenKV} batch ${shape.batch} on ${id}`, () => {
        let previous = plannedSeconds(variant, phase, shape, base)
        for (const factor of factors.slice(1)) {
          const seconds = plannedSeconds(variant, phase, shape, withBandwidth(base, factor))

          expect(seconds, `${factor}× HBM bandwidth`).toBeLessThanOrEqual(previous * (1 + rounding))
          previous = seconds
        }
      })
    }
  }
})
