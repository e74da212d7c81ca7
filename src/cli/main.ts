#!/usr/bin/env node
import { Cause, Effect, Exit } from "effect"
import yargs from "yargs"
import { hideBin } from "yargs/helpers"
import { InputError } from "../errors.js"
import { loggingLayer } from "../logging.js"
import { runCalibrate, type CalibrateArgs } from "./calibrate.js"
import { estimateOptions, runEstimate, type EstimateArgs } from "./estimate.js"
import { runProfiles } from "./profiles.js"
import { runScenarioCommand } from "./run.js"
import { runValidate, type ValidateArgs } from "./validate.js"

const verbose = process.argv.includes("--verbose")

/** Run an effect with the CLI's logger; a failure is re-thrown as its error value. */
async function runEffect<A, E>(effect: Effect.Effect<A, E>): Promise<A> {
  const exit = await Effect.runPromiseExit(effect.pipe(Effect.provide(loggingLayer(verbose))))
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") throw failure.value
  throw new Error(Cause.pretty(exit.cause))
}

/** Print an error as one readable message; the stack only with --verbose. */
function reportError(error: unknown): never {
  const message = error instanceof Error ? error.message : String(error)
  process.stderr.write(`attnsim: ${message}\n`)
  if (verbose && error instanceof Error && error.stack) process.stderr.write(error.stack + "\n")
  process.exit(1)
}

/**
 * Options that take several values, per command; every other option takes
 * one. Keep in step with the `array: true` options declared below, because
 * yargs's typed API does not expose them to middleware.
 */
const listOptions: Readonly<Record<string, ReadonlyArray<string>>> = {
  estimate: ["set"],
  profiles: ["files"],
  validate: ["variant"]
}

/** Rejects an option given more than once where it takes one value (yargs would pass an array on). */
function rejectRepeatedOptions(argv: Record<string, unknown>): void {
  const command = String((argv._ as unknown[] | undefined)?.[0] ?? "")
  const allowed = listOptions[command] ?? []
  for (const [key, value] of Object.entries(argv)) {
    if (key === "_" || key === "$0" || /[A-Z]/.test(key) || allowed.includes(key) || !Array.isArray(value)) continue
    throw new InputError({ origin: `--${key}`, issues: [{ path: "", value, expected: `one value: --${key} was given ${value.length} times` }] })
  }
}

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName("attnsim")
    .usage("$0 <command> [options]\n\nPrices attention kernels on GPU profiles and checks them by executing their tiles.")
    .option("verbose", { type: "boolean", default: false, describe: "show debug logs and stack traces" })
    .middleware(rejectRepeatedOptions)
    .command(
      "estimate",
      "price one attention operation (time in seconds, FLOPs, bytes per memory level)",
      (y) => estimateOptions(y),
      async (args) => runEstimate(args as unknown as EstimateArgs, runEffect)
    )
    .command(
      "run <scenario>",
      "run a scenario file (.ts or .json) and write reports/<name>/report.md and report.json",
      (y) =>
        y
          .positional("scenario", { type: "string", demandOption: true, describe: "scenario file, e.g. scenarios/default.ts" })
          .option("out", { type: "string", default: "reports", describe: "folder the report folder is written into" })
          .option("execute", { type: "boolean", default: true, describe: "run sampled tiles (use --no-execute for analytical numbers only)" })
          .option("workers", { type: "string", describe: "worker threads; default: the scenario's setting, else available cores" })
          .option("backend", { type: "string", choices: ["webasm", "cpu", "gl"], describe: "gpu.js backend; default: the scenario's setting" }),
      async (args) => runScenarioCommand(args as never, runEffect)
    )
    .command(
      "profiles [files..]",
      "list and validate the shipped hardware profiles, or validate the given profile files",
      (y) =>
        y
          .positional("files", { type: "string", array: true, describe: "profile JSON files to validate" })
          .option("json", { type: "boolean", default: false, describe: "print the summaries as JSON" }),
      (args) => runProfiles((args.files as string[] | undefined) ?? [], args.json)
    )
    .command(
      "calibrate",
      "measure this machine as a device (gpu.js tile kernels, pool dispatch and transfer, memory) and write its host profile",
      (y) =>
        y
          .option("out", { type: "string", default: "calibration/host.json", describe: "host profile file to write" })
          .option("backend", { type: "string", default: "webasm", choices: ["webasm", "cpu", "gl"], describe: "gpu.js backend to calibrate" })
          .option("workers", { type: "string", describe: "worker threads (the pool size validation will use); default: available cores" })
          .option("repeats", { type: "string", default: "5", describe: "repeats of every measurement; figures are medians with their spread" })
          .option("json", { type: "boolean", default: false, describe: "print the measurements as JSON" }),
      async (args) => runCalibrate(args as unknown as CalibrateArgs, runEffect)
    )
    .command(
      "validate",
      "run the priced tile schedules on this machine and compare measured with predicted seconds (or, with --published, published GPU figures)",
      (y) =>
        y
          .option("hardware", { type: "string", default: "host", describe: 'host profile: "host" (calibration/host.json, from attnsim calibrate) or a host profile file' })
          .option("variant", { type: "string", array: true, describe: "variants to validate (repeatable or comma-separated); default: every registered variant" })
          .option("sizes", { type: "string", describe: "sequence lengths in tokens, comma-separated (k = 1024), replacing each variant's default sizes" })
          .option("phases", { type: "string", describe: "phases, comma-separated: prefill, decode; default: both" })
          .option("workers", { type: "string", describe: "worker threads; default: the count the host profile was calibrated with" })
          .option("repeats", { type: "string", default: "3", describe: "timed repeats per case; the median is reported with its spread" })
          .option("schedule-hardware", { type: "string", default: "h100-sxm", describe: "GPU profile whose planned schedules are executed" })
          .option("full-limit", { type: "string", default: "4", describe: "seconds: cases predicted to run longer than this run as an extrapolated sample" })
          .option("speedup", { type: "boolean", default: true, describe: "rerun each variant's longest whole case on one worker to measure the pool speedup (--no-speedup skips it)" })
          .option("seed", { type: "string", default: "1", describe: "seed of the sampled tiles" })
          .option("published", { type: "boolean", default: false, describe: "compare the cost model with the published and measured GPU figures in fixtures/ instead of running" })
          .option("allow-other-machine", { type: "boolean", default: false, describe: "use a host profile calibrated on another machine, reporting the differences" })
          .option("out", { type: "string", default: "reports", describe: "folder the validation report folder is written into" })
          .option("json", { type: "boolean", default: false, describe: "print the validation document as JSON" }),
      async (args) => runValidate(args as unknown as ValidateArgs, runEffect)
    )
    .demandCommand(1, "name a command: estimate, run, profiles, calibrate or validate")
    .strict()
    .help()
    .fail((message, error) => {
      if (error) reportError(error)
      process.stderr.write(`attnsim: ${message}\nRun "attnsim --help" for usage.\n`)
      process.exit(1)
    })
    .parseAsync()
}

// A closed pipe (`attnsim profiles | head`) ends the output, not the program with a trace.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0)
  reportError(error)
})

main().catch(reportError)
