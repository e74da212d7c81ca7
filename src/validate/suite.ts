import type { VariantId } from "../variants/variant.js"
import type { AttentionShape, Phase } from "../workload/shape.js"

/**
 * The default validation workload: per variant a small model shape, options
 * that keep each schedule small enough to run whole on a two-core machine in
 * seconds, and the sizes per phase. Options differ from the papers' defaults
 * where those would make a 1k-token case run for minutes on a CPU (NSA's
 * per-position units, MoBA's 4096-token blocks). The schedules are still the
 * variants' own, priced and executed the same way.
 */
export interface SuiteEntry {
  readonly variant: VariantId
  readonly shape: Omit<AttentionShape, "seqLenQ" | "seqLenKV" | "batch" | "causal">
  readonly options: Readonly<Record<string, unknown>>
  readonly phases: Readonly<Partial<Record<Phase, { readonly batch: number; readonly sizes: ReadonlyArray<number> }>>>
}

export const defaultSuite: ReadonlyArray<SuiteEntry> = [
  {
    variant: "dense",
    shape: { heads: 4, kvHeads: 2, headDim: 128, headDimV: 128, dtype: "bf16" },
    options: {},
    phases: { prefill: { batch: 1, sizes: [512, 1024, 2048] }, decode: { batch: 4, sizes: [4096, 16384] } }
  },
  {
    variant: "nsa",
    shape: { heads: 16, kvHeads: 1, headDim: 64, headDimV: 64, dtype: "bf16" },
    options: { compressBlock: 16, compressStride: 8, selectBlock: 32, selectCount: 4, window: 64 },
    phases: { prefill: { batch: 1, sizes: [256, 512, 1024] }, decode: { batch: 16, sizes: [2048, 8192] } }
  },
  {
    variant: "moba",
    shape: { heads: 4, kvHeads: 2, headDim: 128, headDimV: 128, dtype: "bf16" },
    options: { blockSize: 128, topK: 3 },
    phases: { prefill: { batch: 1, sizes: [512, 1024, 2048] }, decode: { batch: 4, sizes: [4096, 16384] } }
  },
  {
    variant: "lightning",
    shape: { heads: 4, kvHeads: 4, headDim: 64, headDimV: 64, dtype: "bf16" },
    options: { blockSize: 64 },
    phases: { prefill: { batch: 1, sizes: [1024, 2048, 4096] }, decode: { batch: 16, sizes: [4096, 65536] } }
  },
  {
    variant: "mla",
    shape: { heads: 16, kvHeads: 16, headDim: 128, headDimV: 128, dtype: "bf16" },
    options: {},
    phases: { decode: { batch: 2, sizes: [1024, 4096] } }
  }
]

/** Build the entry of a registered variant the default workload does not list: a small GQA shape with the variant's default options. */
export function genericEntry(variant: VariantId): SuiteEntry {
  return {
    variant,
    shape: { heads: 4, kvHeads: 2, headDim: 128, headDimV: 128, dtype: "bf16" },
    options: {},
    phases: { prefill: { batch: 1, sizes: [512, 1024] }, decode: { batch: 4, sizes: [4096] } }
  }
}

/** One case of the workload: a variant, phase and size with its full shape. */
export interface SuiteCase {
  readonly variant: VariantId
  readonly phase: Phase
  readonly seqLen: number
  readonly shape: AttentionShape
  readonly options: Readonly<Record<string, unknown>>
}

export function suiteCases(
  suite: ReadonlyArray<SuiteEntry>,
  filter: { readonly variants?: ReadonlyArray<string> | undefined; readonly phases?: ReadonlyArray<Phase> | undefined; readonly sizes?: ReadonlyArray<number> | undefined }
): ReadonlyArray<SuiteCase> {
  return suite
    .filter((entry) => !filter.variants || filter.variants.includes(entry.variant))
    .flatMap((entry) =>
      (Object.entries(entry.phases) as Array<[Phase, { batch: number; sizes: ReadonlyArray<number> }]>)
        .filter(([phase]) => !filter.phases || filter.phases.includes(phase))
        .flatMap(([phase, setting]) =>
          (filter.sizes ?? setting.sizes).map((seqLen) => ({
            variant: entry.variant,
            phase,
            seqLen,
            options: entry.options,
            shape: {
              ...entry.shape,
              batch: setting.batch,
              seqLenQ: phase === "decode" ? 1 : seqLen,
              seqLenKV: seqLen,
              causal: true
            }
          }))
        )
    )
}
