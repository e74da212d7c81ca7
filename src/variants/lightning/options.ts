import { Schema } from "effect"
import { InputError, type FieldIssue } from "../../errors.js"
import type { AttentionShape } from "../../workload/shape.js"
import type { VariantFlag } from "../variant.js"
import { explicitLogDecay, geometricLogDecay } from "./decay.js"

const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive())

export const stateDtypes = ["fp32", "bf16", "fp16"] as const
export type StateDtype = (typeof stateDtypes)[number]

/** Kernel layouts the planner may choose from; "auto" tries both. */
export const schemeChoices = ["auto", "fused", "split"] as const
export type SchemeChoice = (typeof schemeChoices)[number]

export const LightningOptions = Schema.Struct({
  /** Rows per block B: the intra-block product is B × B (MiniMax-01 uses 256). */
  blockSize: Schema.optionalWith(PositiveInt, { default: () => 256 }),
  /**
   * Per-head decay rates λ: "geometric" (ALiBi slopes with the layer-depth
   * factor, see decay.ts), or explicit rates in (0, 1), one for all heads or one
   * per head, as an array or a comma-separated string.
   */
  decay: Schema.optionalWith(Schema.Union(Schema.String, Schema.Array(Schema.Number)), { default: () => "geometric" }),
  /** Layer index l for the geometric scheme's depth factor 1 − l/(L − 1); 0 decays fastest. */
  layer: Schema.optionalWith(Schema.Number.pipe(Schema.int(), Schema.nonNegative()), { default: () => 0 }),
  /** Layers L in the stack for the depth factor (MiniMax-Text-01: 80). */
  layers: Schema.optionalWith(PositiveInt, { default: () => 80 }),
  /**
   * Element type of the stored dk × dv state (decode cache, block prefixes), one
   * of stateDtypes; FP32 unless accuracy is traded for bytes. Checked by
   * resolveSettings, whose message lists the choices.
   */
  stateDtype: Schema.optionalWith(Schema.String, { default: () => "fp32" }),
  /** Kernel layout, one of schemeChoices: fused (one CTA walks a head's blocks), split (intra, state scan, inter), or auto. */
  scheme: Schema.optionalWith(Schema.String, { default: () => "auto" })
})
export type LightningOptions = typeof LightningOptions.Type

export const lightningFlags: ReadonlyArray<VariantFlag> = [
  { flag: "lightning-block", key: "blockSize", type: "integer", describe: "block size B in rows, a multiple of 16 from 16 to 1024 (MiniMax-01: 256; the open Triton kernel: 64)" },
  { flag: "lightning-decay", key: "decay", type: "string", describe: 'per-head decay rates: "geometric" (ALiBi slopes × layer-depth factor) or comma-separated rates in (0, 1), one for all heads or one per head' },
  { flag: "lightning-layer", key: "layer", type: "number", describe: "layer index for the geometric decay's depth factor; 0 (the default) decays fastest" },
  { flag: "lightning-layers", key: "layers", type: "integer", describe: "layers in the stack for the geometric decay's depth factor (default 80, MiniMax-Text-01)" },
  { flag: "lightning-state-dtype", key: "stateDtype", type: "string", describe: "element type of the stored state: fp32 (default), bf16 or fp16 (halves state bytes; an accuracy risk)" },
  { flag: "lightning-scheme", key: "scheme", type: "string", describe: "kernel layout: auto (default: the faster), fused (one CTA walks a head's blocks) or split (intra, state scan, inter kernels)" }
]

export const stateBytesOf: Record<StateDtype, number> = { fp32: 4, bf16: 2, fp16: 2 }

/** Options checked against the shape, with the decay rates resolved per head. */
export interface LightningSettings {
  readonly blockSize: number
  /** ln λ_h per query head (negative). */
  readonly logDecay: Float64Array
  /** Description of the decay rule, for the estimate's details. */
  readonly decaySource: string
  readonly stateDtype: StateDtype
  readonly stateBytes: number
  readonly scheme: SchemeChoice
}

const origin = "lightning options"

/** Check the options against the shape and resolve the decay rates; every problem found is reported at once. */
export function resolveSettings(options: LightningOptions, shape: AttentionShape): LightningSettings {
  const issues: FieldIssue[] = []
  if (!shape.causal) {
    issues.push({ path: "causal", value: shape.causal, expected: "a causal mask (--causal): lightning attention decays by λ^(i−j) over past keys j ≤ i only" })
  }
  if (shape.window !== undefined) {
    issues.push({ path: "window", value: shape.window, expected: "no sliding window: the decay already fades old tokens" })
  }
  const { blockSize } = options
  if (blockSize % 16 !== 0 || blockSize < 16 || blockSize > 1024) {
    issues.push({ path: "blockSize", value: blockSize, expected: "a multiple of 16 (the MMA tile height) from 16 to 1024 rows" })
  }
  if (options.layer >= options.layers) {
    issues.push({ path: "layer", value: options.layer, expected: `a layer index below layers (${options.layers})` })
  }
  const stateDtype = oneOf(stateDtypes, options.stateDtype, "stateDtype", "the stored state's element type", issues)
  const scheme = oneOf(schemeChoices, options.scheme, "scheme", "the kernel layout", issues)
  const decay = resolveDecay(options, shape.heads, issues)
  if (issues.length > 0 || stateDtype === undefined || scheme === undefined) throw new InputError({ origin, issues })
  return {
    blockSize,
    logDecay: decay.logDecay,
    decaySource: decay.source,
    stateDtype,
    stateBytes: stateBytesOf[stateDtype],
    scheme
  }
}

function oneOf<const C extends string>(choices: ReadonlyArray<C>, value: string, path: string, meaning: string, issues: FieldIssue[]): C | undefined {
  if ((choices as ReadonlyArray<string>).includes(value)) return value as C
  issues.push({ path, value, expected: `${meaning}: one of ${choices.join(", ")}` })
  return undefined
}

function resolveDecay(options: LightningOptions, heads: number, issues: FieldIssue[]): { logDecay: Float64Array; source: string } {
  const { decay } = options
  if (decay === "geometric") {
    return {
      logDecay: geometricLogDecay(heads, options.layer, options.layers),
      source: `geometric: λ_h = exp(−2^(−8(h+1)/${heads}) · (1 − ${options.layer}/${Math.max(1, options.layers - 1)} + 1e−5))`
    }
  }
  // An empty field between commas must not parse as 0, so it becomes NaN and fails the range check.
  const parseRate = (text: string): number => (text.trim() === "" ? NaN : Number(text))
  const rates = typeof decay === "string" ? decay.split(",").map(parseRate) : [...decay]
  const expected = `"geometric", or decay rates in (0, 1) exclusive, one for all heads or one per head (${heads})`
  if (rates.length !== 1 && rates.length !== heads) {
    issues.push({ path: "decay", value: decay, expected: `${expected}; got ${rates.length} rates` })
    return { logDecay: new Float64Array(heads), source: "invalid" }
  }
  const bad = rates.findIndex((rate) => !(rate > 0 && rate < 1))
  if (bad >= 0) {
    issues.push({ path: "decay", value: decay, expected: `${expected}; rate ${bad + 1} is ${rates[bad]}` })
    return { logDecay: new Float64Array(heads), source: "invalid" }
  }
  return { logDecay: explicitLogDecay(rates, heads), source: rates.length === 1 ? `explicit: λ = ${rates[0]} for every head` : "explicit: one rate per head" }
}
