import { Either } from "effect"
import { existsSync } from "node:fs"
import { basename, extname, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { decodeInput } from "../decode.js"
import { InputError, type FieldIssue } from "../errors.js"
import { readJsonFile } from "../hardware/load.js"
import { ScenarioSchema, type Scenario, type ScenarioInput } from "./scenario-schema.js"

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
  if (Either.isLeft(decoded)) throw decoded.left
  const scenario = decoded.right
  checkScenario(scenario, path)
  return { path, name: scenario.name ?? basename(path, extname(path)), scenario }
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
    throw new InputError({ origin: path, issues: [{ path: "", value: undefined, expected: `a module that loads (${(error as Error).message})` }] })
  }
  const exported = module.default ?? module.scenario
  if (exported === undefined) {
    throw new InputError({ origin: path, issues: [{ path: "default", value: undefined, expected: "a default export holding the scenario" }] })
  }
  return exported
}

function checkScenario(scenario: Scenario, path: string): void {
  const issues = scenario.cases.flatMap((sweep, index): FieldIssue[] => {
    if (!("variant" in sweep)) return []
    const model = sweep.model ?? scenario.model
    if (!model) return [{ path: `cases.${index}.model`, value: undefined, expected: "the layer shape (name, heads, kvHeads, headDim) this case prices, here or at the top level" }]
    if (model.heads % model.kvHeads !== 0) {
      const where = sweep.model ? `cases.${index}.model.kvHeads` : "model.kvHeads"
      return [{ path: where, value: model.kvHeads, expected: `a divisor of heads (${model.heads}): query heads share KV heads in equal groups` }]
    }
    return []
  })
  if (issues.length > 0) throw new InputError({ origin: path, issues: dedupe(issues) })
}

function dedupe<T extends { path: string }>(issues: ReadonlyArray<T>): T[] {
  return issues.filter((issue, index) => issues.findIndex((other) => other.path === issue.path) === index)
}
