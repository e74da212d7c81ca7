import { defineScenario } from "../src/workload/scenario.js"

// The main job. Part 1: dense attention of a Llama-3.1-8B-like layer (GQA: 32
// query heads share 8 KV heads, head dim 128) on four datacenter GPUs, prefill
// and decode from 4k to 128k tokens. Part 2: every other variant against dense
// attention of the same layer shape, each on the shape of the model that
// introduced it. Every row is priced, and a seeded sample of the very tiles that
// were priced is executed through gpu.js and checked against float64.
const llama = { name: "Llama-3.1-8B-like", heads: 32, kvHeads: 8, headDim: 128 }
const nsa27b = { name: "NSA-27B-like", heads: 64, kvHeads: 4, headDim: 192, headDimV: 128 }
const minimax = { name: "MiniMax-Text-01-like", heads: 64, kvHeads: 64, headDim: 128 }
const deepseek = { name: "DeepSeek-V3-like (MLA; dense rows: the same heads as plain MHA)", heads: 128, kvHeads: 128, headDim: 192, headDimV: 128 }

const comparisons = ["h100-sxm", "h800-sxm"] as const

export default defineScenario({
  name: "default",
  description:
    "Dense attention of one Llama-3.1-8B-like layer (32 query heads, 8 KV heads, head dim 128, bf16) on H100, H800, H20 and A100: " +
    "prefill of one sequence and decode of a batch of 8, at 4k to 128k tokens. Then NSA, MoBA, lightning attention and MLA against " +
    "dense attention of the same layer shape on H100 and H800, each on the shape of the model that introduced it.",
  hardware: ["h100-sxm", "h800-sxm", "h20", "a100-sxm-80g"],
  model: llama,
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "dense", phase: "prefill", seqLens: [4096, 16384, 65536, 131072] },
    { variant: "dense", phase: "decode", seqLens: [4096, 16384, 65536, 131072], batch: 8 },

    // MoBA with the 1M-context setting (block 4096, top-12) on the same Llama layer.
    { variant: "moba", phase: "prefill", seqLens: [65536, 131072], hardware: [...comparisons], options: { blockSize: 4096, topK: 12 } },
    { variant: "moba", phase: "decode", seqLens: [65536, 131072], batch: 8, hardware: [...comparisons], options: { blockSize: 4096, topK: 12 } },

    // NSA with its paper defaults on the NSA-27B layer, and dense attention of that layer.
    { variant: "nsa", phase: "prefill", seqLens: [16384, 65536], hardware: [...comparisons], model: nsa27b },
    { variant: "dense", phase: "prefill", seqLens: [16384, 65536], hardware: [...comparisons], model: nsa27b },
    { variant: "nsa", phase: "decode", seqLens: [16384, 65536], batch: 8, hardware: [...comparisons], model: nsa27b },
    { variant: "dense", phase: "decode", seqLens: [16384, 65536], batch: 8, hardware: [...comparisons], model: nsa27b },

    // Lightning attention on the MiniMax-Text-01 layer; its estimate carries the dense comparison.
    { variant: "lightning", phase: "prefill", seqLens: [16384, 131072], hardware: [...comparisons], model: minimax },
    { variant: "lightning", phase: "decode", seqLens: [16384, 131072], batch: 8, hardware: [...comparisons], model: minimax },

    // MLA decode on the DeepSeek-V3 layer against the same heads as plain multi-head attention.
    { variant: "mla", phase: "decode", seqLens: [16384, 65536], batch: 8, hardware: [...comparisons], model: deepseek },
    { variant: "dense", phase: "decode", seqLens: [16384, 65536], batch: 8, hardware: [...comparisons], model: deepseek }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" }
})
