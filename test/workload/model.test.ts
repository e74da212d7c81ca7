import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { InputError, NotFoundError } from "../../src/errors.js"
import { loadProfile } from "../../src/hardware/load.js"
import { estimateModel } from "../../src/model-estimate.js"
import { layerMemory } from "../../src/workload/memory.js"
import { layerCount, loadModel, shippedModelIds } from "../../src/workload/model.js"

const dir = mkdtempSync(join(tmpdir(), "attnsim-model-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function writeJson(name: string, value: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(value))
  return path
}

describe("shipped models", () => {
  it("ids are the expected ones", () => {
    expect(shippedModelIds()).toEqual(expect.arrayContaining(["minimax-text-01", "llama-3.1-8b-moba-1m", "nsa-27b", "deepseek-v3"]))
  })

  it("layer counts match the papers", () => {
    expect(layerCount(loadModel("minimax-text-01"))).toBe(80)
    expect(layerCount(loadModel("llama-3.1-8b-moba-1m"))).toBe(32)
    expect(layerCount(loadModel("nsa-27b"))).toBe(30)
    expect(layerCount(loadModel("deepseek-v3"))).toBe(61)
  })

  it("minimax is 7 lightning then 1 softmax", () => {
    const groups = loadModel("minimax-text-01").layers

    expect(groups.filter((g) => g.variant === "lightning").reduce((n, g) => n + g.count, 0)).toBe(70)
    expect(groups.filter((g) => g.variant === "dense").reduce((n, g) => n + g.count, 0)).toBe(10)
    expect(groups[0]).toMatchObject({ variant: "lightning", count: 7 })
    expect(groups[1]).toMatchObject({ variant: "dense", count: 1, kvHeads: 8 })
  })

  it("moba model keeps the last 3 layers dense", () => {
    const groups = loadModel("llama-3.1-8b-moba-1m").layers

    expect(groups.at(-1)).toMatchObject({ variant: "dense", count: 3 })
    expect(groups[0]).toMatchObject({ variant: "moba", count: 29, options: { blockSize: 4096, topK: 12 } })
  })

  it("unknown model lists known ids", () => {
    expect(() => loadModel("gpt-5")).toThrow(NotFoundError)
    expect(() => loadModel("gpt-5")).toThrow(/minimax-text-01/)
  })
})

describe("memory accounting", () => {
  it("deepseek-v3 caches 70,272 bytes per token", () => {
    const estimate = estimateModel({ model: loadModel("deepseek-v3"), phase: "decode", seqLen: 4096, batch: 1, dtype: "bf16" }, loadProfile("h800-sxm"))

    // 61 layers × (512 + 64) elements × 2 bytes.
    expect(estimate.kvCacheBytesPerToken).toBe(70272)
    expect(estimate.stateBytesPerSequence).toBe(0)
    expect(estimate.layers).toHaveLength(61)
  })

  it("minimax layer memory in bf16", () => {
    const softmax = layerMemory("dense", { heads: 64, kvHeads: 8, headDim: 128, headDimV: 128 }, {}, "bf16")
    const lightning = layerMemory("lightning", { heads: 64, kvHeads: 64, headDim: 128, headDimV: 128 }, {}, "bf16")

    // Per token: 10 softmax layers × 8 KV heads × 128 × (K + V) × 2 bytes = 40,960.
    expect(10 * softmax.kvCacheBytesPerToken).toBe(40960)
    // Per sequence: 70 lightning layers × 64 heads × 128 × 128 FP32 values = 280 MiB.
    expect(70 * lightning.stateBytesPerSequence).toBe(280 * 2 ** 20)
    expect(lightning.kvCacheBytesPerToken).toBe(0)
  })

  it("low-precision lightning state halves", () => {
    const fp32 = layerMemory("lightning", { heads: 64, kvHeads: 64, headDim: 128, headDimV: 128 }, {}, "bf16")
    const bf16 = layerMemory("lightning", { heads: 64, kvHeads: 64, headDim: 128, headDimV: 128 }, { stateDtype: "bf16" }, "bf16")

    expect(bf16.stateBytesPerSequence * 2).toBe(fp32.stateBytesPerSequence)
  })
})

describe("Hugging Face config", () => {
  const llama = {
    model_type: "llama",
    hidden_size: 4096,
    num_hidden_layers: 32,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    torch_dtype: "bfloat16"
  }

  it("derives head dim from hidden size", () => {
    const model = loadModel(writeJson("llama.json", llama))

    expect(model.layers).toHaveLength(1)
    expect(model.layers[0]).toMatchObject({ count: 32, variant: "dense", heads: 32, kvHeads: 8, headDim: 128 })
    expect(model.dtype).toBe("bf16")
  })

  it("explicit head_dim wins", () => {
    const model = loadModel(writeJson("qwen.json", { ...llama, hidden_size: 5120, head_dim: 128, num_attention_heads: 64 }))

    expect(model.layers[0]!.headDim).toBe(128)
  })

  it("kv_lora_rank gives MLA", () => {
    const deepseek = {
      model_type: "deepseek_v3",
      hidden_size: 7168,
      num_hidden_layers: 61,
      num_attention_heads: 128,
      num_key_value_heads: 128,
      kv_lora_rank: 512,
      qk_rope_head_dim: 64,
      qk_nope_head_dim: 128,
      v_head_dim: 128
    }
    const model = loadModel(writeJson("deepseek.json", deepseek))
    const estimate = estimateModel({ model, phase: "decode", seqLen: 1024, batch: 1, dtype: "bf16" }, loadProfile("h800-sxm"))

    expect(model.layers[0]).toMatchObject({ variant: "mla", count: 61 })
    expect(estimate.kvCacheBytesPerToken).toBe(70272)
  })

  it("layer_types give sliding layers", () => {
    const types = Array.from({ length: 6 }, (_, i) => (i % 3 === 2 ? "full_attention" : "sliding_attention"))
    const model = loadModel(writeJson("gemma.json", { ...llama, num_hidden_layers: 6, layer_types: types, sliding_window: 1024 }))

    expect(model.layers.map((g) => [g.count, g.options?.window ?? "full"])).toEqual([
      [2, 1024],
      [1, "full"],
      [2, 1024],
      [1, "full"]
    ])
  })

  it("mistral window is state, not cache", () => {
    const model = loadModel(writeJson("mistral.json", { ...llama, model_type: "mistral", sliding_window: 4096 }))
    const estimate = estimateModel({ model, phase: "decode", seqLen: 32768, batch: 1, dtype: "bf16" }, loadProfile("h100-sxm"))

    expect(model.layers[0]).toMatchObject({ count: 32, options: { window: 4096 } })
    expect(estimate.kvCacheBytesPerToken).toBe(0)
    expect(estimate.stateBytesPerSequence).toBe(32 * 4096 * 8 * 256 * 2)
  })

  it("qwen2 window starts at max_window_layers", () => {
    const config = { ...llama, model_type: "qwen2", use_sliding_window: true, sliding_window: 2048, max_window_layers: 28 }
    const model = loadModel(writeJson("qwen2.json", config))

    expect(model.layers.map((g) => [g.count, g.options?.window ?? "full"])).toEqual([
      [28, "full"],
      [4, 2048]
    ])
  })

  it("qwen2 window off by default", () => {
    const config = { ...llama, model_type: "qwen2", sliding_window: 4096, max_window_layers: 21 }
    const model = loadModel(writeJson("qwen2-default.json", config))

    expect(model.layers).toEqual([expect.objectContaining({ count: 32, variant: "dense" })])
  })

  it("short sequence fills part of window", () => {
    const model = loadModel(writeJson("mistral-short.json", { ...llama, model_type: "mistral", sliding_window: 4096 }))
    const estimate = estimateModel({ model, phase: "decode", seqLen: 1024, batch: 2, dtype: "bf16" }, loadProfile("h100-sxm"))

    expect(estimate.stateBytesPerSequence).toBe(32 * 4096 * 4096)
    expect(estimate.memoryBytes).toBe(2 * 32 * 1024 * 4096)
  })

  it("disabled window gives full layers", () => {
    const model = loadModel(writeJson("qwen2-off.json", { ...llama, use_sliding_window: false, sliding_window: 4096 }))

    expect(model.layers).toEqual([expect.objectContaining({ count: 32, variant: "dense" })])
    expect(model.layers[0]!.options).toBeUndefined()
  })

  it("unknown torch_dtype is named", () => {
    expect(() => loadModel(writeJson("f64.json", { ...llama, torch_dtype: "float64" }))).toThrow(/torch_dtype: got "float64"/)
  })

  it("indivisible hidden size is named", () => {
    expect(() => loadModel(writeJson("odd.json", { ...llama, hidden_size: 4001 }))).toThrow(/hidden_size: got 4001/)
  })

  it("attn_type_list gives lightning layers", () => {
    const list = [0, 0, 0, 1]
    const model = loadModel(writeJson("minimax.json", { ...llama, num_hidden_layers: 4, attn_type_list: list }))

    expect(model.layers.map((g) => [g.variant, g.count])).toEqual([
      ["lightning", 3],
      ["dense", 1]
    ])
  })

  it("bad heads are named", () => {
    const error = (() => {
      try {
        loadModel(writeJson("broken.json", { ...llama, num_key_value_heads: 5 }))
      } catch (caught) {
        return caught
      }
    })()

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toContain("num_key_value_heads")
    expect((error as InputError).message).toContain("broken.json")
  })
})
