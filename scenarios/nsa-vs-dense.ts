import { defineScenario } from "../src/workload/scenario.js"

// One attention layer of the NSA-27B backbone (Native Sparse Attention, arXiv
// 2502.11089: GQA with 4 groups of 16 query heads, query/key head dim 192,
// value head dim 128) with NSA at the paper's settings (l = 32, d = 16,
// l' = 64, n = 16, w = 512) against dense causal attention of the same shape,
// at 8k to 64k tokens: prefill and training of one sequence, decode of a batch
// of 16. Each NSA row's estimate carries keysPerQuery with its branches,
// speedupVsDense (the paper's memory-access model in decode, attended pairs
// otherwise), modeledSpeedupVsDense (dense time / NSA time on the same GPU
// and shape), timeShares and the hardware-alignment contrasts. Execution runs
// a seeded sample of every row's priced tiles, including, where the budget
// allows, one gated unit that checks the three branches and their gated sum
// against the float64 NSA pipeline.
const seqLens: [number, ...number[]] = [8192, 16384, 32768, 65536]

export default defineScenario({
  name: "nsa-vs-dense",
  description:
    "DeepSeek NSA (compressed, selected and sliding-window branches, gated) against dense causal attention, " +
    "one NSA-27B-like layer (64 query heads, 4 KV heads, dk 192, dv 128, bf16): prefill and training of one sequence, decode of a batch of 16, at 8k to 64k tokens.",
  hardware: ["a100-sxm-80g", "h800-sxm"],
  model: { name: "NSA-27B-like", heads: 64, kvHeads: 4, headDim: 192, headDimV: 128 },
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "nsa", phase: "decode", seqLens, causal: true, batch: 16 },
    { variant: "dense", phase: "decode", seqLens, causal: true, batch: 16 },
    { variant: "nsa", phase: "prefill", seqLens, causal: true },
    { variant: "dense", phase: "prefill", seqLens, causal: true },
    { variant: "nsa", phase: "train", seqLens, causal: true },
    { variant: "dense", phase: "train", seqLens, causal: true }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 48, wholeItemMaxSteps: 8, backend: "webasm", workers: 2 }
})
