import { defineScenario } from "../src/workload/scenario.js"

// MoBA (Mixture of Block Attention, arXiv 2502.13189) against dense causal
// attention for one Llama-3.1-8B layer (32 query heads, 8 KV heads, head dim
// 128, bf16), the model the MoBA paper continues to 1M tokens.
//
// - Block-size series: block 4096, top-12 (the paper's 1M-token setting), 32k
//   to 1M tokens, prefill of one sequence and decode of a batch of 8. At 32k
//   there are 8 blocks, so every query takes all its blocks (MoBA degenerates
//   to dense attention plus the merge).
// - Fixed-sparsity series: 64 blocks and top-3 from 8k to 10M tokens (the
//   block grows to seq-len / 64), prefill only.
//
// Dense prefill rows stop at 128k tokens, because a full dense tiling search
// at 1M takes 10 to 15 seconds per GPU. Longer MoBA rows compare with dense
// priced over the full shape with the dense planner's 128k tiling (see
// src/variants/moba/dense-baseline.ts). Where no dense row exists, the
// report's "vs dense" column shows that modeled speedup. Dense decode rows are
// cheap and cover every length.
//
// Each MoBA row's estimate JSON carries keysPerQuery, sparsity,
// blocksLoadedPerKvHead, headOverlap (measured from the executed gating),
// modeledSpeedupVsDense and details.alignment. Execution samples each row's
// priced tiles, 10M rows included: gating and merged checks run for an early
// block whose past blocks fit the host's pooling budget.
const blockSeries: [number, ...number[]] = [32768, 131072, 1048576]
const fixedSeries: [number, ...number[]] = [8192, 32768, 131072, 1048576, 10485760]
const paperBlocks = { blockSize: 4096, topK: 12 }

export default defineScenario({
  name: "moba-vs-dense",
  description:
    "MoBA against dense causal attention, one Llama-3.1-8B layer (32 query heads, 8 KV heads, head dim 128, bf16): " +
    "block 4096 / top-12 for prefill (batch 1) and decode (batch 8) at 32k to 1M tokens, " +
    "and the fixed-sparsity series (64 blocks, top-3) for prefill at 8k to 10M tokens.",
  hardware: ["h100-sxm", "a100-sxm-80g"],
  model: { name: "Llama-3.1-8B", heads: 32, kvHeads: 8, headDim: 128 },
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "moba", phase: "prefill", seqLens: blockSeries, causal: true, options: paperBlocks },
    { variant: "dense", phase: "prefill", seqLens: [32768, 131072], causal: true },
    { variant: "moba", phase: "decode", seqLens: blockSeries, causal: true, batch: 8, options: paperBlocks },
    { variant: "dense", phase: "decode", seqLens: blockSeries, causal: true, batch: 8 },
    { variant: "moba", phase: "prefill", seqLens: fixedSeries, causal: true, options: { fixedSparsity: true, fixedBlocks: 64, topK: 3 } }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm", workers: 2 }
})
