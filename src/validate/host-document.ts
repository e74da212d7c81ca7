import { Effect } from "effect"
import { InputError, NotFoundError } from "../errors.js"
import { tilePoolLayer, type PoolStartError, type TileExecutionError } from "../exec/pool.js"
import { loadProfile } from "../hardware/load.js"
import { variantIds } from "../variants/registry.js"
import type { Phase } from "../workload/shape.js"
import { loadHostProfile } from "./host-profile.js"
import { hostModelOf } from "./host-model.js"
import { measureSpeedup, validateCase, type HostCaseResult, type HostValidationSettings, type SpeedupCase } from "./host-validation.js"
import { hostVerdict, summarizeVariants, targetMedianAbsErrorPct, type ValidationCase, type ValidationDocument } from "./report.js"
import { defaultSuite, genericEntry, suiteCases, type SuiteCase } from "./suite.js"

export interface HostValidationRequest {
  /** "host" (calibration/host.json) or a host profile file. */
  readonly hardware: string
  readonly allowOtherMachine: boolean
  readonly variants?: ReadonlyArray<string> | undefined
  readonly phases?: ReadonlyArray<Phase> | undefined
  readonly sizes?: ReadonlyArray<number> | undefined
  readonly workers?: number | undefined
  readonly repeats: number
  /** The GPU profile whose schedules are executed. */
  readonly scheduleHardware: string
  readonly fullLimitSeconds: number
  readonly speedup: boolean
  readonly seed: number
}

/** A case that could not be validated, with the reason. */
export interface SkippedCase {
  readonly variant: string
  readonly phase: string
  readonly seqLen: number
  readonly reason: string
}

/**
 * Validate the host model on the default workload or the requested part of it.
 * Every case is predicted and run on a pool of the calibrated size. Then each
 * variant's largest whole case runs again on one worker for the pool speedup.
 */
export function validateHost(request: HostValidationRequest, command: string): Effect.Effect<ValidationDocument, TileExecutionError | PoolStartError> {
  // Inputs are checked before anything runs; these throw InputError or NotFoundError.
  const started = performance.now()
  const loaded = loadHostProfile(request.hardware, { allowOtherMachine: request.allowOtherMachine })
  const host = loaded.profile.host!
  const model = hostModelOf(loaded.profile)!
  const scheduleProfile = loadProfile(request.scheduleHardware)
  if (scheduleProfile.architecture === "host") {
    throw new InputError({ origin: "--schedule-hardware", issues: [{ path: "--schedule-hardware", value: request.scheduleHardware, expected: "a GPU profile whose schedules the host runs, such as h100-sxm" }] })
  }
  const known = variantIds()
  for (const variant of request.variants ?? []) {
    if (!known.includes(variant as never)) throw new NotFoundError({ kind: "attention variant", id: variant, known })
  }

  return Effect.gen(function* () {
    if (loaded.machineDifferences.length > 0) {
      yield* Effect.logWarning(`${loaded.path} describes another machine (${loaded.machineDifferences.join("; ")}); comparing with it as --allow-other-machine asks`)
    }

    const settings: HostValidationSettings = {
      scheduleProfile,
      model,
      backend: host.backend,
      workers: request.workers ?? host.workers,
      repeats: request.repeats,
      seed: request.seed,
      fullLimitSeconds: request.fullLimitSeconds,
      sampleSeconds: Math.min(2, request.fullLimitSeconds),
      numericsBudgetSteps: 24,
      extrapolationBudgetSteps: 48
    }
    if (settings.workers !== host.workers) {
      yield* Effect.logWarning(`validating with ${settings.workers} workers; the calibration measured its rates with ${host.workers} busy`)
    }
    const listed = new Set(defaultSuite.map((entry) => entry.variant))
    const suite = [...defaultSuite, ...known.filter((id) => !listed.has(id)).map(genericEntry)]
    const cases = suiteCases(suite, { variants: request.variants ?? known, phases: request.phases, sizes: request.sizes })

    const done: Array<{ spec: SuiteCase; result: HostCaseResult }> = []
    const skipped: SkippedCase[] = []
    yield* Effect.forEach(cases, (spec) =>
      validateCase(spec, settings).pipe(
        Effect.map((result) => {
          done.push({ spec, result })
        }),
        Effect.catchAllDefect((defect) => {
          const reason = defect instanceof Error ? defect.message : String(defect)
          skipped.push({ variant: spec.variant, phase: spec.phase, seqLen: spec.seqLen, reason })
          return Effect.logWarning(`skipped ${spec.variant} ${spec.phase} ${spec.seqLen}: ${reason}`)
        })
      )
    ).pipe(Effect.provide(tilePoolLayer({ workers: settings.workers, backend: settings.backend })))

    const speedupCases = request.speedup && settings.workers > 1 ? yield* measureSpeedup(largestFullCases(done), settings) : []
    const oneWorker = speedupCases.reduce((sum, c) => sum + c.oneWorkerSeconds, 0)
    const allWorkers = speedupCases.reduce((sum, c) => sum + c.allWorkersSeconds, 0)
    const variants = summarizeVariants(
      [...new Set(done.map((d) => d.spec.variant))].map((variant) => ({
        variant,
        cases: done.filter((d) => d.spec.variant === variant).map((d) => toValidationCase(d.result))
      })),
      hostVerdict
    )

    return {
      kind: "host",
      generatedAt: new Date().toISOString(),
      command,
      hardware: `${loaded.path} (${loaded.profile.name})`,
      target: { medianAbsErrorPct: targetMedianAbsErrorPct },
      variants,
      poolSpeedup: speedupCases.length > 0 ? oneWorker / allWorkers : null,
      speedupWorkload: speedupCases,
      predictedPoolSpeedup: speedupCases.length > 0 ? predictedSpeedup(speedupCases) : null,
      extrapolationChecks: done.flatMap((d) =>
        d.result.extrapolation?.insideInterval !== undefined
          ? [
              {
                variant: d.spec.variant,
                case: `${d.spec.phase} ${d.spec.seqLen}`,
                sampledTasks: d.result.extrapolation.sampledTasks,
                sampledSteps: d.result.extrapolation.sampledSteps,
                scheduleSteps: d.result.extrapolation.scheduleSteps,
                secondsLow: d.result.extrapolation.secondsLow,
                seconds: d.result.extrapolation.seconds,
                secondsHigh: d.result.extrapolation.secondsHigh,
                fullMeasuredSeconds: d.result.extrapolation.fullMeasuredSeconds,
                insideInterval: d.result.extrapolation.insideInterval
              }
            ]
          : []
      ),
      skipped,
      machine: { fingerprint: host.fingerprint, identity: host.identity, calibratedAt: host.measuredAt, differences: loaded.machineDifferences },
      executor: { backend: settings.backend, workers: settings.workers, calibratedWorkers: host.workers, repeats: settings.repeats, fullLimitSeconds: settings.fullLimitSeconds },
      schedules: `Schedules are planned on ${scheduleProfile.id} (${scheduleProfile.name}), so they are the ones its cost model prices, and executed on the host`,
      seconds: (performance.now() - started) / 1000
    }
  })
}

function toValidationCase(result: HostCaseResult): ValidationCase {
  return { label: `${result.phase} ${result.seqLen}`, ...result }
}

/** Per variant, its longest case that ran whole: the speedup workload. */
function largestFullCases(done: ReadonlyArray<{ spec: SuiteCase; result: HostCaseResult }>) {
  const byVariant = new Map<string, { spec: SuiteCase; result: HostCaseResult }>()
  for (const entry of done) {
    if (entry.result.coverage !== "full") continue
    const known = byVariant.get(entry.spec.variant)
    if (!known || entry.result.measuredSeconds > known.result.measuredSeconds) byVariant.set(entry.spec.variant, entry)
  }
  return [...byVariant.values()]
}

/** Σ predicted one-worker time over Σ predicted all-worker time. */
function predictedSpeedup(cases: ReadonlyArray<SpeedupCase>): number {
  const one = cases.reduce((sum, c) => sum + c.predictedOneWorkerSeconds, 0)
  const all = cases.reduce((sum, c) => sum + c.predictedAllWorkersSeconds, 0)
  return one / all
}
