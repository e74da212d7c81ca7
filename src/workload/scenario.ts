import { Either } from "effect"
import { existsSync } from "node:fs"
import { basename, extname, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { decodeInput } from "../decode.js"
import { dedupeByPath, InputError, type FieldIssue } from "../errors.js"
import { readJsonFile } from "../hardware/load.js"
import { ModelCase, ScenarioCase, scenarioNamePattern, ScenarioSchema, type Scenario, type ScenarioInput } from "./scenario-schema.js"
import { causalQueryLimit } from "./shape.js"

export { ScenarioSchema, type Scenario, type ScenarioInput } from "./scenario-schema.js"

/** Identity helper that gives scenario modules type checking: `export default defineScenario({...})`. */
export const defineScenario = (scenario: ScenarioInput): ScenarioInput => scenario

export interface LoadedScenario {
  readonly path: string
  readonly name: string
  readonly scenario: Scenario
}

/**
 * Load a scenario from a `.json` file or a `.ts`/`.js` module whose default
 * export is the scenario, and validate it. TypeScript modules are loaded
 * through tsx, so no build step is needed for them.
 */
export async function loadScenario(reference: string): Promise<LoadedScenario> {
  const path = resolveScenarioPath(reference)
  const raw = await readScenarioSource(path)
  const decoded = decodeInput(ScenarioSchema, raw, path)
  if (Either.isLeft(decoded)) {
    const others = decoded.left.issues.filter((issue) => !/^cases\.\d+(\.|$)/.test(issue.path))
    throw new InputError({ origin: path, issues: [...others, ...caseIssues(raw)] })
  }
  const scenario = decoded.right
  checkScenario(scenario, path)
  const name = scenario.name ?? basename(path, extname(path))
  // The name is a folder under --out, so a name derived from the file name is checked like a written one.
  if (!(scenario.name ? scenarioNamePattern : /^[A-Za-z0-9][A-Za-z0-9._-]*$/).test(name)) {
    throw new InputError({ origin: path, issues: [{ path: "name", value: name, expected: "a name of letters, digits, '.', '_' and '-' that starts with a letter or digit (the file name is used when name is missing)" }] })
  }
  return { path, name, scenario }
}

/**
 * Decodes each case against the one case kind it is meant to be (a `variant`
 * case or a `model` case), so the errors are not those of both kinds of the
 * union together.
 */
function caseIssues(raw: unknown): FieldIssue[] {
  const cases = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>).cases : undefined
  if (!Array.isArray(cases)) return []
  return cases.flatMap((sweep, index) => {
    const isModelCase = typeof sweep === "object" && sweep !== null && !("variant" in sweep) && typeof (sweep as Record<string, unknown>).model === "string"
    const decoded: Either.Either<unknown, InputError> = isModelCase ? decodeInput(ModelCase, sweep, "") : decodeInput(ScenarioCase, sweep, "")
    if (Either.isRight(decoded)) return []
    return decoded.left.issues.map((issue) => ({ ...issue, path: issue.path ? `cases.${index}.${issue.path}` : `cases.${index}` }))
  })
}

function resolveScenarioPath(reference: string): string {
  const candidates = [reference, `${reference}.ts`, `${reference}.json`].map((candidate) => resolve(candidate))
  const found = candidates.find((candidate) => existsSync(candidate) && extname(candidate) !== "")
  if (!found) {
    throw new InputError({ origin: reference, issues: [{ path: "", value: reference, expected: "an existing scenario file (.ts, .js or .json)" }] })
  }
  return found
}

async function readScenarioSource(path: string): Promise<unknown> {
  const extension = extname(path)
  if (extension === ".json") return readJsonFile(path)
  if (![".ts", ".mts", ".js", ".mjs"].includes(extension)) {
    throw new InputError({ origin: path, issues: [{ path: "", value: extension, expected: "a .ts, .js or .json scenario file" }] })
  }

  let module: Record<string, unknown>
  try {
    if (extension === ".ts" || extension === ".mts") {
      const { tsImport } = await import("tsx/esm/api")
      module = (await tsImport(pathToFileURL(path).href, import.meta.url)) as Record<string, unknown>
    } else {
      module = (await import(pathToFileURL(path).href)) as Record<string, unknown>
    }
  } catch (error) {
    throw new InputError({ origin: path, issues: [{ path: "", value: String(error), expected: "a module that loads without throwing" }] })
  }
  let exported = module.default ?? module.scenario
  // tsx compiles a .ts file outside an ESM package ("type": "module") to
  // CommonJS, and importing that wraps the module's exports object once more.
  if (typeof exported === "object" && exported !== null && (exported as Record<string, unknown>).__esModule === true) {
    const inner = exported as Record<string, unknown>
    exported = inner.default ?? inner.scenario
  }
  if (exported === undefined) {
    throw new InputError({ origin: path, issues: [{ path: "default", value: undefined, expected: "a default export holding the scenario" }] })
  }
  return exported
}

function checkScenario(scenario: Scenario, path: string): void {
  const issues = scenario.cases.flatMap((sweep, index): FieldIssue[] => {
    if (!("variant" in sweep)) {
      // Model stacks are priced causal.
      const shortest = Math.min(...sweep.seqLens)
      if (sweep.queryLen !== undefined && sweep.queryLen > shortest) return [{ path: `cases.${index}.queryLen`, value: sweep.queryLen, expected: causalQueryLimit(shortest) }]
      return []
    }
    const model = sweep.model ?? scenario.model
    if (!model) return [{ path: `cases.${index}.model`, value: undefined, expected: "the layer shape (name, heads, kvHeads, headDim) this case prices, here or at the top level" }]
    const shortest = Math.min(...sweep.seqLens)
    if (sweep.causal && sweep.queryLen !== undefined && sweep.queryLen > shortest) {
      return [{ path: `cases.${index}.queryLen`, value: sweep.queryLen, expected: causalQueryLimit(shortest) }]
    }
    if (model.heads % model.kvHeads !== 0) {
      const where = sweep.model ? `cases.${index}.model.kvHeads` : "model.kvHeads"
      return [{ path: where, value: model.kvHeads, expected: `a divisor of heads (${model.heads}): query heads share KV heads in equal groups` }]
    }
    return []
  })
  if (issues.length > 0) throw new InputError({ origin: path, issues: dedupeByPath(issues) })
}
