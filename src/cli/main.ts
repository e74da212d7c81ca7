#!/usr/bin/env node
import { Cause, Effect, Exit } from "effect"
import yargs from "yargs"
import { hideBin } from "yargs/helpers"
import { loggingLayer } from "../logging.js"
import { estimateOptions, runEstimate, type EstimateArgs } from "./estimate.js"
import { runProfiles } from "./profiles.js"
import { runScenarioCommand } from "./run.js"

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

async function main(): Promise<void> {
  await yargs(hideBin(process.argv))
    .scriptName("attnsim")
    .usage("$0 <command> [options]\n\nPrices attention kernels on GPU profiles and checks them by executing their tiles.")
    .option("verbose", { type: "boolean", default: false, describe: "show debug logs and stack traces" })
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
    .demandCommand(1, "name a command: estimate, run or profiles")
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
