import { Either } from "effect"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { decodeInput, valueAt } from "../decode.js"
import { InputError, NotFoundError } from "../errors.js"
import { profilesDir } from "../paths.js"
import { checkProfile } from "./checks.js"
import { applyOverrides, type Override } from "./overrides.js"
import { ProfileFile, type HardwareProfile } from "./profile-schema.js"

/** The ids of the profiles shipped in hardware-profiles/. */
export function shippedProfileIds(dir = profilesDir()): ReadonlyArray<string> {
  return readdirJson(dir).map((file) => basename(file, ".json")).sort()
}

function readdirJson(dir: string): string[] {
  return readdirSync(dir).filter((file) => file.endsWith(".json"))
}

/**
 * Resolve a profile reference: a shipped id ("h100-sxm") or a path to a JSON file.
 * Returns the file path, or raises NotFoundError naming the known ids.
 */
export function resolveProfilePath(reference: string, dir = profilesDir(), origin?: string): string {
  const from = origin === undefined ? {} : { origin }
  if (reference.endsWith(".json") || reference.includes("/")) {
    const path = resolve(reference)
    if (!existsSync(path)) throw new NotFoundError({ kind: "hardware profile file", id: reference, known: shippedProfileIds(dir), ...from })
    return path
  }
  const path = join(dir, `${reference}.json`)
  if (!existsSync(path)) throw new NotFoundError({ kind: "hardware profile", id: reference, known: shippedProfileIds(dir), ...from })
  return path
}

/** Read a JSON file; a syntax error becomes an InputError naming the file. */
export function readJsonFile(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, "utf8")
  } catch (error) {
    throw new InputError({ origin: path, issues: [{ path: "", value: undefined, expected: `a readable file (${(error as Error).message})` }] })
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new InputError({ origin: path, issues: [{ path: "", value: text.slice(0, 40), expected: `valid JSON (${(error as Error).message})` }] })
  }
}

/**
 * Read a profile file and resolve its `extends` chain into one raw object.
 * A child's fields replace its parent's, objects merging key by key. A child that
 * changes a figure's value gives that figure's source and confidence too.
 */
export function readRawProfile(path: string, dir = profilesDir(), seen: ReadonlyArray<string> = []): Record<string, unknown> {
  if (seen.includes(path)) {
    throw new InputError({ origin: path, issues: [{ path: "extends", value: basename(path), expected: `no cycle (chain: ${[...seen, path].map((p) => basename(p)).join(" → ")})` }] })
  }
  const raw = readJsonFile(path)
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new InputError({ origin: path, issues: [{ path: "", value: raw, expected: "a JSON object describing one device" }] })
  }
  const record = raw as Record<string, unknown>
  if (!("extends" in record)) return record

  const { extends: parentReference, ...child } = record
  if (typeof parentReference !== "string") {
    throw new InputError({ origin: path, issues: [{ path: "extends", value: parentReference, expected: "a profile id or a path to a profile file" }] })
  }
  const parentPath = parentReference.endsWith(".json")
    ? resolveProfilePath(resolve(dirname(path), parentReference), dir, `field extends of ${path}`)
    : resolveProfilePath(parentReference, dir, `field extends of ${path}`)
  const parent = readRawProfile(parentPath, dir, [...seen, path])
  return mergeProfile(parent, child, path, "") as Record<string, unknown>
}

function mergeProfile(parent: unknown, child: unknown, origin: string, path: string): unknown {
  if (!isPlainObject(parent) || !isPlainObject(child)) return child
  if (isFigure(parent) && "value" in child) {
    // A changed value is a new figure: the parent's source, confidence and note described the old one.
    const missing = (["source", "confidence"] as const).filter((key) => !(key in child))
    if (missing.length > 0) {
      throw new InputError({
        origin,
        issues: missing.map((key) => ({
          path: `${path}.${key}`,
          value: undefined,
          expected: key === "source" ? "a source for the changed value (a key of \"sources\")" : "a confidence for the changed value (P, S, U, M or F)"
        }))
      })
    }
    return child
  }
  const merged: Record<string, unknown> = { ...parent }
  for (const [key, value] of Object.entries(child)) {
    merged[key] = mergeProfile(parent[key], value, origin, path ? `${path}.${key}` : key)
  }
  return merged
}

function isPlainObject(node: unknown): node is Record<string, unknown> {
  return node !== null && typeof node === "object" && !Array.isArray(node)
}

function isFigure(node: Record<string, unknown>): boolean {
  return "value" in node && "source" in node && "confidence" in node
}

/** Decode a raw profile object and run the cross-field checks. */
export function decodeProfile(raw: unknown, origin: string): HardwareProfile {
  const decoded = decodeInput(ProfileFile, raw, origin)
  if (Either.isLeft(decoded)) throw decoded.left
  const issues = checkProfile(decoded.right).map((issue) => {
    // Show the value as the user wrote it ("2000 TB/s") where the raw file has it.
    const written = valueAt(raw, issue.path.split("."))
    return written === undefined ? issue : { ...issue, value: written }
  })
  if (issues.length > 0) throw new InputError({ origin, issues })
  return decoded.right
}

/**
 * Load a profile by id or path, resolve `extends`, apply what-if overrides and
 * validate it. Raises InputError or NotFoundError with what to fix.
 */
export function loadProfile(reference: string, overrides: ReadonlyArray<Override> = [], dir = profilesDir()): HardwareProfile {
  const path = resolveProfilePath(reference, dir)
  const raw = readRawProfile(path, dir)
  const origin = overrides.length > 0 ? `${path} with ${overrides.map((o) => `${o.origin} ${o.text}`).join(", ")}` : path
  const profile = decodeProfile(applyOverrides(raw, overrides, origin), origin)
  if (!reference.includes("/") && !reference.endsWith(".json") && profile.id !== reference) {
    throw new InputError({ origin: path, issues: [{ path: "id", value: profile.id, expected: `"${reference}", the file's name` }] })
  }
  return profile
}
