import { defineScenario } from "../src/workload/scenario.js"

// The main job: dense attention of a Llama-3.1-8B-like layer (GQA: 32 query
// heads share 8 KV heads, head dim 128) on four datacenter GPUs, prefill and
// decode from 4k to 128k tokens. Every row is priced and a seeded sample of the
// very tiles that were priced is executed through gpu.js and checked.
export default defineScenario({
  name: "default",
  description:
    "Dense attention, one Llama-3.1-8B-like layer (32 query heads, 8 KV heads, head dim 128, bf16), " +
    "prefill of one sequence and decode of a batch of 8 sequences, at 4k to 128k tokens.",
  hardware: ["h100-sxm", "h800-sxm", "h20", "a100-sxm-80g"],
  model: { name: "Llama-3.1-8B-like", heads: 32, kvHeads: 8, headDim: 128 },
  dtype: "bf16",
  batch: 1,
  cases: [
    { variant: "dense", phase: "prefill", seqLens: [4096, 16384, 65536, 131072], causal: true },
    { variant: "dense", phase: "decode", seqLens: [4096, 16384, 65536, 131072], causal: true, batch: 8 }
  ],
  execution: { enabled: true, seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend: "webasm" }
})
