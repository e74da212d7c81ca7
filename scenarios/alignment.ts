import { defineScenario } from "../src/workload/scenario.js"

// Why hardware-aligned sparsity wins: for the same number of attended keys, NSA
// (group-shared, contiguous 64-token blocks) and MoBA (per-head choice of
// 4096-token blocks) are priced against layouts that break the alignment:
// token-level selection (scattered rows, partial transactions), per-head
// instead of group-shared selection under GQA, and blocks smaller than the
// kernel's key tile. Each row's report section lists the contrasts.
export default defineScenario({
  name: "alignment",
  description:
    "Hardware-alignment contrasts at equal sparsity: NSA on the NSA-27B layer at 64k tokens (H800), MoBA on a Llama-3.1-8B layer at 1M tokens (H100), prefill and decode.",
  hardware: ["h800-sxm", "h100-sxm"],
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "nsa", phase: "decode", seqLens: [65536], batch: 16, hardware: ["h800-sxm"], model: { name: "NSA-27B-like", heads: 64, kvHeads: 4, headDim: 192, headDimV: 128 } },
    { variant: "nsa", phase: "prefill", seqLens: [65536], hardware: ["h800-sxm"], model: { name: "NSA-27B-like", heads: 64, kvHeads: 4, headDim: 192, headDimV: 128 } },
    { variant: "moba", phase: "decode", seqLens: [1048576], batch: 1, hardware: ["h100-sxm"], model: { name: "Llama-3.1-8B-like", heads: 32, kvHeads: 8, headDim: 128 }, options: { blockSize: 4096, topK: 12 } },
    { variant: "moba", phase: "prefill", seqLens: [1048576], hardware: ["h100-sxm"], model: { name: "Llama-3.1-8B-like", heads: 32, kvHeads: 8, headDim: 128 }, options: { blockSize: 4096, topK: 12 } }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" }
})
