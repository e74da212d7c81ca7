import { defineScenario } from "../src/workload/scenario.js"

// One lightning-attention layer of MiniMax-Text-01 (64 heads × head dim 128,
// no GQA in the lightning layers) against softmax attention of the same shape,
// from 1k to 1M tokens. Lightning prefill time per token is flat, and its
// decode time does not depend on the context. Dense prefill grows with the
// square of the length, and dense decode with the cache. Each lightning row's estimate
// JSON carries `modeledSpeedupVsDense` and `crossoverSeqLen`, the length at
// which lightning becomes the faster of the two on that GPU and phase.
// Execution runs a seeded sample of every row's priced tiles through gpu.js.
const seqLens: [number, ...number[]] = [1024, 4096, 16384, 65536, 262144, 1048576]

export default defineScenario({
  name: "lightning-vs-dense",
  description:
    "Lightning attention (MiniMax-01: block 256, geometric per-head decay, FP32 state) against dense causal softmax attention, " +
    "one 64-head layer with head dim 128 in bf16: prefill of one sequence and decode of a batch of 8, at 1k to 1M tokens.",
  hardware: ["h100-sxm", "a100-sxm-80g"],
  model: { name: "MiniMax-Text-01 lightning layer", heads: 64, kvHeads: 64, headDim: 128 },
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "lightning", phase: "prefill", seqLens, causal: true, options: { blockSize: 256 } },
    { variant: "dense", phase: "prefill", seqLens, causal: true },
    { variant: "lightning", phase: "decode", seqLens, causal: true, batch: 8, options: { blockSize: 256 } },
    { variant: "dense", phase: "decode", seqLens, causal: true, batch: 8 }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 12, wholeItemMaxSteps: 4, backend: "webasm", workers: 2 }
})
