import { defineScenario } from "../src/workload/scenario.js"

// MiniMax-Text-01 at 1M and 4M tokens of context: the 10 softmax layers keep a
// KV cache that grows with the context, the 70 lightning layers a constant
// FP32 state. The report gives both per token / per sequence, the memory one
// sequence needs, and how the decode and prefill time splits between the kinds.
export default defineScenario({
  name: "minimax-memory",
  description:
    "MiniMax-Text-01 (80 layers: 7 lightning : 1 softmax) at 1M and 4M tokens on H100, H200 and B200: " +
    "KV cache of the softmax layers, constant lightning state, and where decode and prefill time goes.",
  hardware: ["h100-sxm", "h200-sxm", "b200"],
  dtype: "bf16",
  batch: 1,
  cases: [
    { model: "minimax-text-01", phase: "decode", seqLens: [1048576, 4194304] },
    { model: "minimax-text-01", phase: "prefill", seqLens: [1048576] }
  ],
  execution: { enabled: false }
})
