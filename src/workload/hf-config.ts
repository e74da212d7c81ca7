import { dedupeByPath, InputError, type FieldIssue } from "../errors.js"
import type { Dtype } from "../hardware/profile-schema.js"
import type { LayerGroup, ModelSpec } from "./model-schema.js"

/**
 * Read a Hugging Face `config.json` into a layer stack. Recognized:
 * - `num_attention_heads`, `num_key_value_heads` (default: heads), `head_dim`
 *   (an explicit value wins over hidden_size / num_attention_heads);
 * - MLA when `kv_lora_rank` is present (DeepSeek-V2/V3: qk_rope_head_dim,
 *   qk_nope_head_dim, v_head_dim);
 * - per-layer kinds from `layer_types` ("full_attention", "sliding_attention",
 *   "linear_attention") or MiniMax's `attn_type_list` (0 linear, 1 softmax),
 *   with `sliding_window` for sliding layers, or, without those lists, the
 *   sliding-window conventions of Mistral, Qwen2 and Gemma 2/3;
 * - `torch_dtype` (or `dtype`) bfloat16, float16, float32, float8_e4m3fn.
 */
export function fromHuggingFaceConfig(config: Record<string, unknown>, origin: string): ModelSpec {
  const issues: FieldIssue[] = []
  const integer = (key: string, fallback?: number): number => {
    const value = config[key] ?? fallback
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      issues.push({ path: key, value: config[key], expected: "a positive integer" })
      return 1
    }
    return value
  }

  if ("n_head" in config && !("num_attention_heads" in config)) {
    throw new InputError({ origin, issues: [{ path: "num_attention_heads", value: undefined, expected: "a positive integer; GPT-2-style configs (n_head, n_embd, n_layer) are not read, so write num_attention_heads, hidden_size and num_hidden_layers" }] })
  }
  const layers = integer("num_hidden_layers")
  const heads = integer("num_attention_heads")
  const hidden = integer("hidden_size")
  const kvHeads = integer("num_key_value_heads", heads)
  const explicitHeadDim = config.head_dim !== undefined && config.head_dim !== null
  if (issues.length === 0 && !explicitHeadDim && config.kv_lora_rank === undefined && hidden % heads !== 0) {
    issues.push({ path: "hidden_size", value: hidden, expected: `a multiple of num_attention_heads (${heads}), or an explicit head_dim` })
  }
  const headDim = explicitHeadDim ? integer("head_dim") : Math.floor(hidden / heads)
  if (issues.length === 0 && heads % kvHeads !== 0) issues.push({ path: "num_key_value_heads", value: kvHeads, expected: `a divisor of num_attention_heads (${heads})` })
  const dtype = configDtype(config, issues)

  const kinds = layerKinds(config, layers, issues)
  const window = config.sliding_window
  if (kinds.includes("sliding") && (typeof window !== "number" || !Number.isInteger(window) || window <= 0)) {
    issues.push({ path: "sliding_window", value: window, expected: "a positive integer for the sliding-window layers" })
  }
  if (issues.length > 0) throw new InputError({ origin, issues })

  const layerFor = (kind: LayerKind): Omit<LayerGroup, "count"> => {
    if (config.kv_lora_rank !== undefined) {
      const options = {
        kvLoraRank: integer("kv_lora_rank"),
        ropeDim: integer("qk_rope_head_dim"),
        qkNopeDim: integer("qk_nope_head_dim"),
        vHeadDim: integer("v_head_dim")
      }
      return { variant: "mla", heads, kvHeads: heads, headDim: options.qkNopeDim + options.ropeDim, headDimV: options.vHeadDim, options }
    }
    if (kind === "linear") return { variant: "lightning", heads, kvHeads: heads, headDim, headDimV: headDim }
    if (kind === "sliding") return { variant: "dense", heads, kvHeads, headDim, headDimV: headDim, options: { window: window as number } }
    return { variant: "dense", heads, kvHeads, headDim, headDimV: headDim }
  }

  const groups: LayerGroup[] = []
  for (const kind of kinds) {
    const layer = layerFor(kind)
    const last = groups[groups.length - 1]
    if (last && JSON.stringify({ ...last, count: 0 }) === JSON.stringify({ ...layer, count: 0 })) groups[groups.length - 1] = { ...last, count: last.count + 1 }
    else groups.push({ ...layer, count: 1 })
  }
  // Each layer kind reads the MLA keys again, so a missing key is listed once per kind.
  if (issues.length > 0) throw new InputError({ origin, issues: dedupeByPath(issues) })

  const modelType = typeof config.model_type === "string" ? config.model_type : "model"
  return {
    id: modelType.toLowerCase().replace(/[^a-z0-9._-]/g, "-"),
    name: `${modelType} (from ${origin})`,
    source: `Hugging Face configuration ${origin}`,
    hiddenSize: hidden,
    ...(dtype ? { dtype } : {}),
    layers: groups as [LayerGroup, ...LayerGroup[]]
  }
}

type LayerKind = "full" | "sliding" | "linear"

/** Maps `torch_dtype` (or the newer `dtype`) to a dtype the cost model prices; absent means the caller's choice. */
function configDtype(config: Record<string, unknown>, issues: FieldIssue[]): Dtype | undefined {
  const key = config.torch_dtype !== undefined ? "torch_dtype" : "dtype"
  const value = config[key]
  if (value === undefined || value === null) return undefined
  const known: Record<string, Dtype> = { bfloat16: "bf16", float16: "fp16", float32: "fp32", float8_e4m3fn: "fp8" }
  if (typeof value === "string" && value in known) return known[value]
  issues.push({ path: key, value, expected: `one of ${Object.keys(known).join(", ")}` })
  return undefined
}

function layerKinds(config: Record<string, unknown>, layers: number, issues: FieldIssue[]): LayerKind[] {
  const types = config.layer_types
  if (Array.isArray(types)) {
    if (types.length !== layers) issues.push({ path: "layer_types", value: types.length, expected: `one entry per layer (${layers})` })
    return types.map((type, index) => {
      if (type === "full_attention") return "full"
      if (type === "sliding_attention") return "sliding"
      if (type === "linear_attention") return "linear"
      issues.push({ path: `layer_types.${index}`, value: type, expected: '"full_attention", "sliding_attention" or "linear_attention"' })
      return "full"
    })
  }
  const minimax = config.attn_type_list
  if (Array.isArray(minimax)) {
    if (minimax.length !== layers) issues.push({ path: "attn_type_list", value: minimax.length, expected: `one entry per layer (${layers})` })
    return minimax.map((type, index) => {
      if (type === 0) return "linear"
      if (type === 1) return "full"
      issues.push({ path: `attn_type_list.${index}`, value: type, expected: "0 (linear attention) or 1 (softmax attention)" })
      return "full"
    })
  }
  // Without layer_types, the transformers conventions apply. Qwen2 (the
  // configs with max_window_layers) uses a window only when use_sliding_window
  // is true, and then from max_window_layers onwards. Gemma 3 keeps every
  // sliding_window_pattern-th layer full, Gemma 2 every other layer, and
  // Mistral windows all layers.
  const window = config.sliding_window
  const qwen2Off = typeof config.max_window_layers === "number" && config.use_sliding_window !== true
  if (config.use_sliding_window === false || qwen2Off || typeof window !== "number") return Array.from({ length: layers }, () => "full")
  const pattern = config.sliding_window_pattern
  const from = config.max_window_layers
  return Array.from({ length: layers }, (_, index): LayerKind => {
    if (typeof from === "number" && config.use_sliding_window === true) return index >= from ? "sliding" : "full"
    if (typeof pattern === "number" && pattern > 0) return (index + 1) % pattern === 0 ? "full" : "sliding"
    if (config.model_type === "gemma2") return index % 2 === 0 ? "sliding" : "full"
    return "sliding"
  })
}
