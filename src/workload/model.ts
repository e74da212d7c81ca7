import { Either } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { basename, join, resolve } from "node:path"
import { decodeInput } from "../decode.js"
import { InputError, NotFoundError } from "../errors.js"
import { readJsonFile } from "../hardware/load.js"
import { packageRoot } from "../paths.js"
import { fromHuggingFaceConfig } from "./hf-config.js"
import { ModelFile, type ModelSpec } from "./model-schema.js"

export { type LayerGroup, type ModelSpec } from "./model-schema.js"

export const modelsDir = (): string => join(packageRoot(), "models")

export function shippedModelIds(dir = modelsDir()): ReadonlyArray<string> {
  return readdirSync(dir)
    .filter((file) => file.endsWith(".json"))
    .map((file) => basename(file, ".json"))
    .sort()
}

/**
 * Load a model: a shipped id ("minimax-text-01"), an attnsim model file, or a
 * Hugging Face `config.json` (recognized by `num_attention_heads`, `model_type`
 * or `architectures`).
 */
export function loadModel(reference: string, dir = modelsDir()): ModelSpec {
  const isPath = reference.endsWith(".json") || reference.includes("/")
  const path = isPath ? resolve(reference) : join(dir, `${reference}.json`)
  if (!existsSync(path)) {
    throw new NotFoundError({ kind: isPath ? "model file" : "model", id: reference, known: shippedModelIds(dir) })
  }
  const raw = readJsonFile(path)
  if (raw !== null && typeof raw === "object" && ("num_attention_heads" in raw || "model_type" in raw || "architectures" in raw)) {
    return fromHuggingFaceConfig(raw as Record<string, unknown>, path)
  }
  const decoded = decodeInput(ModelFile, raw, path)
  if (Either.isLeft(decoded)) throw decoded.left
  checkModel(decoded.right, path)
  return decoded.right
}

function checkModel(model: ModelSpec, origin: string): void {
  const issues = model.layers.flatMap((layer, index) =>
    layer.heads % layer.kvHeads === 0
      ? []
      : [{ path: `layers.${index}.kvHeads`, value: layer.kvHeads, expected: `a divisor of heads (${layer.heads})` }]
  )
  if (issues.length > 0) throw new InputError({ origin, issues })
}

/** Total layers of a model. */
export const layerCount = (model: ModelSpec): number => model.layers.reduce((sum, group) => sum + group.count, 0)
