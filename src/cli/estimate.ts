import Table from "cli-table3"
import { Effect } from "effect"
import type { Argv } from "yargs"
import { componentKeys } from "../cost/breakdown.js"
import { InputError } from "../errors.js"
import { planOperation, withMeasurements, type Estimate } from "../estimate.js"
import { tilePoolLayer } from "../exec/pool.js"
import { loadProfile } from "../hardware/load.js"
import { estimateModel, type ModelEstimate } from "../model-estimate.js"
import { loadModel } from "../workload/model.js"
import { parseOverride } from "../hardware/overrides.js"
import { executeUnits, type ExecutionCheck } from "../validate/execute.js"
import { variantIds, variants } from "../variants/registry.js"
import type { VariantFlag } from "../variants/variant.js"
import { causalQueryLimit, type AttentionShape, type Phase } from "../workload/shape.js"
import { formatBytes, formatFlops, formatSeconds } from "../units/index.js"
import { inputError, parseChoice, parseCount, parseOptionalCount } from "./flags.js"

/** No colors: output is read in terminals, logs and CI alike. */
export const plainStyle = { head: [] as string[], border: [] as string[] }

export interface EstimateArgs {
  readonly hardware: string
  readonly variant: string
  readonly phase: string
  readonly "seq-len": unknown
  readonly "query-len"?: unknown
  readonly batch: unknown
  readonly heads: unknown
  readonly "kv-heads"?: unknown
  readonly "head-dim": unknown
  readonly "head-dim-v"?: unknown
  readonly causal: boolean
  readonly dtype: string
  readonly kernel?: string | undefined
  readonly set?: ReadonlyArray<string> | undefined
  readonly json: boolean
  readonly model?: string | undefined
  readonly execute: boolean
  readonly workers?: unknown
  readonly backend: string
}

/** Register every variant's own flags (--nsa-block, --moba-top-k, --window, …). */
function variantFlagOptions<T>(yargs: Argv<T>): Argv<T> {
  let result = yargs
  for (const variant of variants) {
    for (const flag of variant.flags) {
      result = result.option(flag.flag, { type: "string", describe: `${flag.describe} [--variant ${variant.id}]` }) as unknown as Argv<T>
    }
  }
  return result
}

/**
 * Collect the selected variant's flags into its raw options; a flag of another
 * variant is an error, so a typo in --variant cannot silently drop settings.
 */
export function variantOptionsFromArgs(variant: string, args: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const options: Record<string, unknown> = {}
  for (const module of variants) {
    for (const flag of module.flags) {
      const raw = args[flag.flag]
      if (raw === undefined) continue
      if (module.id !== variant) {
        throw inputError(flag.flag, raw, `--variant ${module.id}; it does not apply to --variant ${variant}`)
      }
      options[flag.key] = parseFlagValue(flag, raw)
    }
  }
  return options
}

/** Re-label a variant-option error with the flag names the user typed. */
function withFlagNames<A>(variant: string, run: () => A): A {
  try {
    return run()
  } catch (error) {
    if (!(error instanceof InputError)) throw error
    const flags = variants.find((v) => v.id === variant)?.flags ?? []
    const renamed = error.issues.map((issue) => {
      const flag = flags.find((f) => f.key === issue.path)
      return flag ? { ...issue, path: `--${flag.flag}` } : issue
    })
    if (renamed.every((issue, index) => issue === error.issues[index])) throw error
    throw new InputError({ origin: "command line", issues: renamed })
  }
}

function parseFlagValue(flag: VariantFlag, raw: unknown): unknown {
  switch (flag.type) {
    case "integer":
      return parseCount(flag.flag, raw, flag.describe, true)
    case "number": {
      const value = Number(raw)
      if (String(raw).trim() === "" || !Number.isFinite(value)) throw inputError(flag.flag, raw, `a number: ${flag.describe}`)
      return value
    }
    case "boolean":
      if (raw === "true" || raw === true) return true
      if (raw === "false" || raw === false) return false
      throw inputError(flag.flag, raw, "true or false")
    case "string":
      return String(raw)
  }
}

export function estimateOptions<T>(yargs: Argv<T>) {
  return variantFlagOptions(yargs)
    .option("hardware", { type: "string", demandOption: true, describe: "profile id (see `attnsim profiles`) or path to a profile JSON file" })
    .option("variant", { type: "string", default: "dense", choices: variantIds(), describe: "attention variant" })
    .option("phase", { type: "string", default: "prefill", choices: ["prefill", "decode", "train"], describe: "prefill (forward), decode (one new token per sequence against a cache) or train (forward + backward)" })
    .option("seq-len", { type: "string", demandOption: true, describe: "keys per sequence, in tokens (for decode: the cache length); k = 1024, M = 1048576" })
    .option("query-len", { type: "string", describe: "queries per sequence, in tokens; default: seq-len for prefill and train, 1 for decode. Causal alignment is bottom-right" })
    .option("batch", { type: "string", default: "1", describe: "sequences per batch" })
    .option("heads", { type: "string", default: "32", describe: "query heads" })
    .option("kv-heads", { type: "string", describe: "key/value heads (GQA; 1 = MQA); default: heads" })
    .option("head-dim", { type: "string", default: "128", describe: "query/key head dimension, in elements" })
    .option("head-dim-v", { type: "string", describe: "value head dimension, in elements; default: head-dim" })
    .option("causal", { type: "boolean", default: false, describe: "apply a causal mask" })
    .option("dtype", { type: "string", default: "bf16", choices: ["bf16", "fp16", "fp8", "fp32"], describe: "element type of Q, K and V" })
    .option("kernel", { type: "string", choices: ["fa2", "fa3"], describe: "kernel generation; default: the fastest the device supports" })
    .option("set", { type: "string", array: true, describe: 'what-if profile override path=value, repeatable, e.g. memory.hbm.bandwidth="6 TB/s"' })
    .option("model", { type: "string", describe: "price a whole model's layer stack instead of one operation: a model id (minimax-text-01, llama-3.1-8b-moba-1m, nsa-27b, deepseek-v3), an attnsim model file or a Hugging Face config.json; --heads, --kv-heads, --head-dim and --variant then come from the model" })
    .option("json", { type: "boolean", default: false, describe: "print the estimate as JSON" })
    .option("execute", { type: "boolean", default: false, describe: "also run a seeded sample of the priced tiles through gpu.js and check them against float64" })
    .option("workers", { type: "string", describe: "worker threads for --execute; default: available cores" })
    .option("backend", { type: "string", default: "webasm", choices: ["webasm", "cpu", "gl"], describe: "gpu.js backend for --execute" })
}

/** Turn validated flags into a request; every invalid flag names itself. */
export function shapeFromArgs(args: EstimateArgs): { shape: AttentionShape; phase: Phase } {
  const phase = parseChoice("phase", args.phase, ["prefill", "decode", "train"] as const)
  const seqLen = parseCount("seq-len", args["seq-len"], "keys per sequence", true)
  const heads = parseCount("heads", args.heads, "query heads")
  const kvHeads = parseOptionalCount("kv-heads", args["kv-heads"], "key/value heads") ?? heads
  if (heads % kvHeads !== 0) throw inputError("kv-heads", args["kv-heads"], `a divisor of --heads (${heads}): query heads share KV heads in equal groups`)
  const headDim = parseCount("head-dim", args["head-dim"], "query/key head dimension")
  const queryLen = parseOptionalCount("query-len", args["query-len"], "queries per sequence", true) ?? (phase === "decode" ? 1 : seqLen)
  if (args.causal && queryLen > seqLen) throw inputError("query-len", args["query-len"], causalQueryLimit(seqLen))
  const shape: AttentionShape = {
    batch: parseCount("batch", args.batch, "sequences per batch"),
    heads,
    kvHeads,
    headDim,
    headDimV: parseOptionalCount("head-dim-v", args["head-dim-v"], "value head dimension") ?? headDim,
    seqLenQ: queryLen,
    seqLenKV: seqLen,
    causal: args.causal,
    dtype: parseChoice("dtype", args.dtype, ["bf16", "fp16", "fp8", "fp32"] as const)
  }
  return { shape, phase }
}

export async function runEstimate(args: EstimateArgs, runEffect: <A, E>(effect: Effect.Effect<A, E>) => Promise<A>): Promise<void> {
  if (args.model !== undefined) return runModelEstimate(args)
  const { shape, phase } = shapeFromArgs(args)
  const overrides = overridesFrom(args)
  const profile = loadProfile(args.hardware, overrides)
  const kernel = args.kernel === undefined ? undefined : parseChoice("kernel", args.kernel, ["fa2", "fa3"] as const)
  const variant = parseChoice("variant", args.variant, variantIds())
  const options = variantOptionsFromArgs(variant, args as unknown as Record<string, unknown>)
  const planned = withFlagNames(variant, () => planOperation({ variant, shape, phase, kernel, options }, profile, "command line"))

  if (!args.execute && args.workers !== undefined) throw inputError("workers", args.workers, "--execute as well: worker threads only run the executed tiles")
  let validation: ExecutionCheck | undefined
  if (args.execute) {
    const backend = parseChoice("backend", args.backend, ["webasm", "cpu", "gl"] as const)
    const workers = parseOptionalCount("workers", args.workers, "worker threads")
    const units = planned.plan.sample({ seed: 1, budgetSteps: 24, wholeItemMaxSteps: 8, backend })
    validation = await runEffect(executeUnits(units).pipe(Effect.provide(tilePoolLayer({ workers, backend }))))
  }
  const estimate = validation ? withMeasurements(planned, validation.measured).estimate : planned.estimate

  if (args.json) {
    process.stdout.write(JSON.stringify(validation ? { ...estimate, validation } : estimate, null, 2) + "\n")
    return
  }
  process.stdout.write(renderEstimate(estimate, validation))
}

/** Flags that describe one operation; with --model the layer stack sets them, so giving one is an error. */
const operationFlags = ["variant", "heads", "kv-heads", "head-dim", "head-dim-v", "causal", "window", "execute", "workers"]

function runModelEstimate(args: EstimateArgs): void {
  const flagNames = process.argv.slice(2).map((arg) => arg.replace(/^--(no-)?/, "").split("=")[0])
  const variantFlags = process.argv.slice(2).filter((arg) => /^--(nsa|moba|lightning|mla)-/.test(arg))
  const conflicting = [...operationFlags.filter((flag) => flagNames.includes(flag)).map((flag) => `--${flag}`), ...variantFlags.map((arg) => arg.split("=")[0]!)]
  if (conflicting.length > 0) {
    const flag = conflicting[0]!.slice(2)
    throw inputError(flag, (args as unknown as Record<string, unknown>)[flag], `no ${conflicting.join(", ")} with --model: the model's layers set each layer's variant and shape (price one operation without --model)`)
  }
  const phase = parseChoice("phase", args.phase, ["prefill", "decode", "train"] as const)
  const seqLen = parseCount("seq-len", args["seq-len"], "keys per sequence", true)
  const queryLen = parseOptionalCount("query-len", args["query-len"], "queries per sequence", true)
  if (queryLen !== undefined && queryLen > seqLen) throw inputError("query-len", args["query-len"], causalQueryLimit(seqLen))
  const model = loadModel(args.model!)
  const overrides = overridesFrom(args)
  const profile = loadProfile(args.hardware, overrides)
  const estimate = estimateModel(
    {
      model,
      phase,
      seqLen,
      queryLen,
      batch: parseCount("batch", args.batch, "sequences per batch"),
      // The model's own dtype (a config's torch_dtype) applies unless --dtype is given.
      dtype: flagNames.includes("dtype") || model.dtype === undefined ? parseChoice("dtype", args.dtype, ["bf16", "fp16", "fp8", "fp32"] as const) : model.dtype,
      kernel: args.kernel === undefined ? undefined : parseChoice("kernel", args.kernel, ["fa2", "fa3"] as const)
    },
    profile
  )
  if (args.json) {
    process.stdout.write(JSON.stringify(estimate, null, 2) + "\n")
    return
  }
  process.stdout.write(renderModelEstimate(estimate))
}

function renderModelEstimate(estimate: ModelEstimate): string {
  const table = new Table({ head: ["layers", "variant", "heads/KV", "head dim", "seconds per layer", "bound", "cache B/token", "state B/seq"], style: plainStyle })
  let start = 0
  for (let index = 1; index <= estimate.layers.length; index++) {
    const first = estimate.layers[start]!
    const next = estimate.layers[index]
    const same = next && next.variant === first.variant && next.seconds === first.seconds && next.kvCacheBytesPerToken === first.kvCacheBytesPerToken
    if (same) continue
    const range = start === index - 1 ? `${start}` : `${start}-${index - 1}`
    table.push([range, first.variant, `${first.heads}/${first.kvHeads}`, first.headDim === first.headDimV ? `${first.headDim}` : `${first.headDim}/${first.headDimV}`, formatSeconds(first.seconds), first.bound, first.kvCacheBytesPerToken, formatBytes(first.stateBytesPerSequence)])
    start = index
  }
  const lines = [
    `${estimate.name} on ${estimate.hardware}: ${estimate.phase}, batch ${estimate.batch}, ${countOf(estimate.queryLen, "query", "queries")} × ${countOf(estimate.seqLen, "key", "keys")}, ${estimate.dtype}`,
    `attention time over ${estimate.layers.length} layers: ${formatSeconds(estimate.seconds)} (${Object.entries(estimate.secondsByVariant).map(([variant, seconds]) => `${variant} ${formatSeconds(seconds)}`).join(", ")})`,
    `KV cache: ${estimate.kvCacheBytesPerToken} bytes per token; constant state: ${formatBytes(estimate.stateBytesPerSequence)} per sequence; ` +
      `this batch holds ${formatBytes(estimate.memoryBytes)} of ${formatBytes(estimate.hbmCapacityBytes)} HBM`,
    ...(estimate.fitsInHbm
      ? []
      : [`WARNING: the cache and state alone exceed one ${estimate.hardware}'s HBM; they need at least ${estimate.minimumGpusForCache} GPUs (model weights not counted)`]),
    "",
    table.toString(),
    ""
  ]
  return lines.join("\n")
}

/** Fields every estimate has; anything else is a variant detail and is printed after them. */
const standardFields = new Set([
  "hardware", "variant", "phase", "dtype", "shape", "options", "seconds", "flops", "flopsExecuted", "flopsConvention",
  "conventionFlopsPerSecond", "expOps", "vectorFlops", "bytes", "bound", "components", "resourceSeconds", "kernels",
  "tiling", "planner", "flopDefinitions", "notes"
])

export function renderEstimate(estimate: Estimate, validation: ExecutionCheck | undefined): string {
  const s = estimate.shape
  const options = Object.entries(estimate.options).map(([key, value]) => `${key}=${JSON.stringify(value)}`).join(", ")
  const lines = [
    `${estimate.hardware}: ${estimate.variant} ${estimate.phase}, batch ${s.batch}, ${s.heads} heads / ${s.kvHeads} KV heads, head dim ${s.headDim}` +
      (s.headDimV !== s.headDim ? `/${s.headDimV}` : "") +
      `, ${countOf(s.seqLenQ, "query", "queries")} × ${countOf(s.seqLenKV, "key", "keys")}${s.causal ? ", causal" : ""}, ${estimate.dtype}` +
      (options ? ` (${options})` : ""),
    `predicted ${formatSeconds(estimate.seconds)}, bound by ${estimate.bound}, ${(estimate.conventionFlopsPerSecond / 1e12).toFixed(1)} TFLOP/s by the FlashAttention convention`,
    `tiling: ${estimate.tiling.description}`,
    ""
  ]

  const time = new Table({ head: ["component", "seconds", "share"], style: plainStyle })
  for (const key of componentKeys) {
    time.push([key, formatSeconds(estimate.components[key]), `${((estimate.components[key] / estimate.seconds) * 100).toFixed(1)} %`])
  }
  time.push(["total", formatSeconds(estimate.seconds), "100 %"])

  const work = new Table({ head: ["count", "value", "meaning"], colWidths: [18, 14, 70], wordWrap: true, style: plainStyle })
  work.push(["flops", formatFlops(estimate.flops), estimate.flopDefinitions.flops])
  work.push(["flopsExecuted", formatFlops(estimate.flopsExecuted), estimate.flopDefinitions.flopsExecuted])
  work.push(["flopsConvention", formatFlops(estimate.flopsConvention), estimate.flopDefinitions.flopsConvention])
  work.push(["bytes.hbm", formatBytes(estimate.bytes.hbm), "HBM traffic after L2 reuse"])
  work.push(["bytes.l2", formatBytes(estimate.bytes.l2), "global loads and stores, all through L2"])
  work.push(["bytes.smem", formatBytes(estimate.bytes.smem), "shared-memory traffic (staging writes and MMA reads)"])
  lines.push(time.toString(), "", work.toString(), "")

  const details = Object.entries(estimate).filter(([key]) => !standardFields.has(key))
  if (details.length > 0) {
    lines.push("details:")
    for (const [key, value] of details) lines.push(`  ${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`)
    lines.push("")
  }
  const notes = estimate.notes
  if (Array.isArray(notes) && notes.length > 0) lines.push("notes:", ...notes.map((note) => `  - ${String(note)}`), "")

  if (validation) {
    lines.push(
      `executed ${validation.tilesExecuted} tiles on ${validation.backends.join(", ")}: max abs error ${validation.maxAbsError.toExponential(2)} against float64, ` +
        `counts ${validation.countsMatch ? "match the model" : "DO NOT match the model"}`,
      ""
    )
  }
  return lines.join("\n")
}

/** `1 query`, `2 queries`. */
export const countOf = (count: number, singular: string, plural: string): string => `${count} ${count === 1 ? singular : plural}`

/** Parses the --set overrides; a bare --set with nothing after it is an error, not "no overrides". */
function overridesFrom(args: EstimateArgs) {
  const argv = process.argv.slice(2)
  const bare = argv.some((arg, index) => arg === "--set" && (index + 1 >= argv.length || argv[index + 1]!.startsWith("--")))
  if (bare || (args.set !== undefined && args.set.length === 0)) throw inputError("set", "", 'path=value, for example memory.hbm.bandwidth="6 TB/s"')
  return (args.set ?? []).map((text) => parseOverride(text))
}
