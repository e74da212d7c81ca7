import { Data, Effect } from "effect"
import { dirname, resolve } from "node:path"
import { planOperation, withMeasurements, type Estimate, type PlannedOperation } from "../estimate.js"
import { tilePoolLayer, type PoolStartError, type TileExecutionError, type TilePool } from "../exec/pool.js"
import { loadProfile } from "../hardware/load.js"
import { parseOverride } from "../hardware/overrides.js"
import type { HardwareProfile } from "../hardware/profile-schema.js"
import { executeUnits, type ExecutionCheck } from "../validate/execute.js"
import type { LoadedScenario } from "../workload/scenario.js"
import type { ModelCase, Scenario, ScenarioCase } from "../workload/scenario-schema.js"
import { InputError, NotFoundError } from "../errors.js"
import { estimateModel, type ModelEstimate } from "../model-estimate.js"
import { loadModel } from "../workload/model.js"
import type { AttentionShape } from "../workload/shape.js"

export interface ReportRow {
  readonly hardware: string
  readonly variant: string
  readonly phase: string
  readonly seqLen: number
  readonly queryLen: number
  readonly batch: number
  readonly prediction: Estimate
  readonly validation?: ExecutionCheck | undefined
}

/** A whole model priced at one sequence length: time per layer kind and memory. */
export interface ModelRow {
  readonly hardware: string
  readonly model: string
  readonly phase: string
  readonly seqLen: number
  readonly batch: number
  readonly estimate: ModelEstimate
}

export interface ScenarioReport {
  readonly scenario: string
  readonly description?: string | undefined
  readonly source: string
  readonly model: Scenario["model"]
  readonly dtype: string
  readonly profiles: ReadonlyArray<{ readonly id: string; readonly name: string; readonly overrides: ReadonlyArray<string> }>
  readonly execution: Scenario["execution"]
  readonly rows: ReadonlyArray<ReportRow>
  readonly modelRows: ReadonlyArray<ModelRow>
  readonly validationSummary: {
    readonly rowsValidated: number
    readonly tilesExecuted: number
    readonly backends: ReadonlyArray<string>
    readonly maxAbsError: number
    readonly countsMatch: boolean
  }
}

/** Shape of one row: queries default to seqLen for prefill and train, 1 for decode. */
export function caseShape(scenario: Scenario, sweep: ScenarioCase, seqLen: number, origin = "scenario"): AttentionShape {
  const model = sweep.model ?? scenario.model
  if (!model) {
    throw new InputError({ origin, issues: [{ path: "model", value: undefined, expected: `the layer shape (name, heads, kvHeads, headDim) for the ${sweep.variant} cases` }] })
  }
  return {
    batch: sweep.batch ?? scenario.batch,
    heads: model.heads,
    kvHeads: model.kvHeads,
    headDim: model.headDim,
    headDimV: model.headDimV ?? model.headDim,
    seqLenQ: sweep.queryLen ?? (sweep.phase === "decode" ? 1 : seqLen),
    seqLenKV: seqLen,
    causal: sweep.causal,
    dtype: scenario.dtype
  }
}

/**
 * Price every row of a scenario and, when execution is enabled, run a sample of
 * each row's tiles on the worker pool and check them. Profiles are loaded (and
 * validated) before anything runs, so a bad profile fails fast.
 */
export function runScenario(loaded: LoadedScenario): Effect.Effect<ScenarioReport, TileExecutionError | PoolStartError> {
  const { scenario } = loaded
  const overrides = scenario.set.map((text) => parseOverride(text, `${loaded.path} (set)`))
  const hardwareIds = [...new Set([...scenario.hardware, ...scenario.cases.flatMap((sweep) => ("hardware" in sweep && sweep.hardware ? sweep.hardware : []))])]
  const profiles = hardwareIds.map((id) => namingOrigin(`${loaded.path} field hardware`, () => loadProfile(id, overrides)))
  const variantCases = scenario.cases.filter((sweep): sweep is ScenarioCase => "variant" in sweep)
  const modelCases = scenario.cases.filter((sweep): sweep is ModelCase => !("variant" in sweep))
  const planned = profiles.flatMap((profile) =>
    variantCases
      .filter((sweep) => !sweep.hardware || sweep.hardware.includes(profile.id))
      .flatMap((sweep) =>
        sweep.seqLens.map((seqLen) =>
          inCase(loaded.path, scenario.cases.indexOf(sweep), `${sweep.variant} ${sweep.phase} at ${seqLen} tokens on ${profile.id}`, () =>
            planRow(scenario, profile, sweep, seqLen, loaded.path)
          )
        )
      )
  )
  const modelRows = profiles.flatMap((profile) =>
    modelCases.flatMap((sweep) => {
      const index = scenario.cases.indexOf(sweep)
      const reference = sweep.model.endsWith(".json") || sweep.model.includes("/") ? resolve(dirname(loaded.path), sweep.model) : sweep.model
      const model = namingOrigin(`${loaded.path} field cases.${index}.model`, () => loadModel(reference))
      return sweep.seqLens.map((seqLen): ModelRow => {
        const batch = sweep.batch ?? scenario.batch
        const estimate = inCase(loaded.path, index, `${model.id} ${sweep.phase} at ${seqLen} tokens on ${profile.id}`, () =>
          estimateModel({ model, phase: sweep.phase, seqLen, queryLen: sweep.queryLen, batch, dtype: scenario.dtype, kernel: sweep.kernel }, profile)
        )
        return { hardware: profile.id, model: model.id, phase: sweep.phase, seqLen, batch, estimate }
      })
    })
  )

  const validateAll = Effect.forEach(planned, (row) => validateRow(scenario, row))
  const rows: Effect.Effect<ReadonlyArray<ReportRow>, TileExecutionError | PoolStartError> = scenario.execution.enabled && planned.length > 0
    ? validateAll.pipe(Effect.provide(tilePoolLayer({ workers: scenario.execution.workers, backend: scenario.execution.backend })))
    : Effect.succeed(planned.map((row) => row.row))

  return Effect.gen(function* () {
    yield* Effect.logInfo(`run ${loaded.name} started`).pipe(Effect.annotateLogs({ scenario: loaded.name, rows: planned.length }))
    const done = yield* rows
    yield* Effect.logInfo(`run ${loaded.name} finished`).pipe(Effect.annotateLogs({ scenario: loaded.name }))
    return buildReport(loaded, profiles, done, modelRows)
  })
}

/** A scenario case that could not be priced: the file, the case and its row, and the cause. */
export class ScenarioCaseError extends Data.TaggedError("ScenarioCaseError")<{
  readonly path: string
  readonly caseIndex: number
  readonly row: string
  readonly cause: Error
}> {
  override get message(): string {
    return `${this.path}: cases.${this.caseIndex} (${this.row}): ${this.cause.message}`
  }
}

/** Runs `load`, adding `origin` (the scenario file and field) to a not-found error. */
function namingOrigin<A>(origin: string, load: () => A): A {
  try {
    return load()
  } catch (error) {
    if (error instanceof NotFoundError && error.origin === undefined) throw new NotFoundError({ ...error, origin })
    throw error
  }
}

/** Runs `price` for one row of a case, naming the scenario file and case in any error it throws. */
function inCase<A>(path: string, caseIndex: number, row: string, price: () => A): A {
  try {
    return price()
  } catch (error) {
    throw new ScenarioCaseError({ path, caseIndex, row, cause: error instanceof Error ? error : new Error(String(error)) })
  }
}

interface PlannedRow {
  readonly row: ReportRow
  readonly operation: PlannedOperation
}

function planRow(scenario: Scenario, profile: HardwareProfile, sweep: ScenarioCase, seqLen: number, origin: string): PlannedRow {
  const shape = caseShape(scenario, sweep, seqLen, origin)
  const operation = planOperation({ variant: sweep.variant, shape, phase: sweep.phase, kernel: sweep.kernel, options: sweep.options }, profile, `${sweep.variant} options`)
  return {
    operation,
    row: {
      hardware: profile.id,
      variant: sweep.variant,
      phase: sweep.phase,
      seqLen,
      queryLen: shape.seqLenQ,
      batch: shape.batch,
      prediction: operation.estimate
    }
  }
}

function validateRow(scenario: Scenario, planned: PlannedRow): Effect.Effect<ReportRow, TileExecutionError, TilePool> {
  const { seed, budgetSteps, wholeItemMaxSteps, backend } = scenario.execution
  const units = planned.operation.plan.sample({ seed, budgetSteps, wholeItemMaxSteps, backend })
  return executeUnits(units).pipe(
    Effect.tap((validation) =>
      Effect.logDebug("row validated").pipe(
        Effect.annotateLogs({
          hardware: planned.row.hardware,
          phase: planned.row.phase,
          seqLen: planned.row.seqLen,
          tiles: validation.tilesExecuted,
          maxAbsError: validation.maxAbsError
        })
      )
    ),
    Effect.map((validation) => ({ ...planned.row, prediction: withMeasurements(planned.operation, validation.measured).estimate, validation }))
  )
}

function buildReport(loaded: LoadedScenario, profiles: ReadonlyArray<HardwareProfile>, rows: ReadonlyArray<ReportRow>, modelRows: ReadonlyArray<ModelRow>): ScenarioReport {
  const { scenario } = loaded
  const validated = rows.flatMap((row) => (row.validation ? [row.validation] : []))
  return {
    scenario: loaded.name,
    description: scenario.description,
    source: loaded.path,
    model: scenario.model,
    dtype: scenario.dtype,
    profiles: profiles.map((p) => ({ id: p.id, name: p.name, overrides: scenario.set })),
    execution: scenario.execution,
    rows,
    modelRows,
    validationSummary: {
      rowsValidated: validated.length,
      tilesExecuted: validated.reduce((sum, v) => sum + v.tilesExecuted, 0),
      backends: [...new Set(validated.flatMap((v) => v.backends))].sort(),
      maxAbsError: validated.reduce((max, v) => Math.max(max, v.maxAbsError), 0),
      countsMatch: validated.every((v) => v.countsMatch)
    }
  }
}
