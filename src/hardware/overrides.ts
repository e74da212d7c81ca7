import { InputError } from "../errors.js"

/** A what-if change to one profile field: `memory.hbm.bandwidth=6 TB/s`. */
export interface Override {
  readonly path: ReadonlyArray<string>
  readonly value: unknown
  readonly text: string
  /** Source of the override: "--set", or the scenario file and field that contain it. */
  readonly origin: string
}

/** The sources key an override's figure points to. */
export const overrideSourceKey = "override"

/**
 * Parse `path=value`. The value is read as JSON where it is valid JSON (numbers,
 * booleans, quoted strings) and as a plain string otherwise ("6 TB/s").
 */
export function parseOverride(text: string, origin = "--set"): Override {
  const equals = text.indexOf("=")
  const path = equals > 0 ? text.slice(0, equals).trim() : ""
  if (equals <= 0 || path === "" || path.split(".").some((key) => key === "")) {
    throw new InputError({
      origin,
      issues: [{ path: "", value: text, expected: `path=value with a dotted field path, for example memory.hbm.bandwidth="6 TB/s"` }]
    })
  }
  const valueText = text.slice(equals + 1).trim()
  return { path: path.split("."), value: parseValue(valueText), text, origin }
}

function parseValue(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/**
 * Apply overrides to a raw profile object and return the changed copy. Setting a
 * figure (an object with value, source and confidence) replaces its value and
 * marks it as an unverified override; any other existing field is replaced as is.
 * A path that does not exist is an error that lists the fields at that level.
 */
export function applyOverrides(raw: unknown, overrides: ReadonlyArray<Override>, origin: string): unknown {
  if (overrides.length === 0) return raw
  const copy = structuredClone(raw) as Record<string, unknown>
  for (const override of overrides) applyOne(copy, override, origin)

  const sources = (copy.sources ?? {}) as Record<string, string>
  copy.sources = { ...sources, [overrideSourceKey]: "what-if override given on the command line or in a scenario" }
  return copy
}

function applyOne(root: Record<string, unknown>, override: Override, origin: string): void {
  let node: Record<string, unknown> = root
  const keys = override.path
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!
    const last = index === keys.length - 1
    if (!(key in node)) {
      throw new InputError({
        origin,
        issues: [{
          path: keys.slice(0, index + 1).join("."),
          value: override.text,
          expected: `an existing field; at ${keys.slice(0, index).join(".") || "the top level"} the fields are: ${Object.keys(node).join(", ")}`
        }]
      })
    }
    const child = node[key]
    if (last) {
      node[key] = isFigure(child) ? overriddenFigure(child, override) : override.value
      return
    }
    if (child === null || typeof child !== "object") {
      throw new InputError({
        origin,
        issues: [{ path: keys.slice(0, index + 1).join("."), value: override.text, expected: "a field path that ends at a value, not past it" }]
      })
    }
    if (isFigure(child) && keys[index + 1] === "value" && index + 2 === keys.length) {
      node[key] = overriddenFigure(child, override)
      return
    }
    node = child as Record<string, unknown>
  }
}

/** The figure's old note described the old value, so it is replaced by one that records it. */
function overriddenFigure(figure: Record<string, unknown>, override: Override): Record<string, unknown> {
  return {
    value: override.value,
    source: overrideSourceKey,
    confidence: "U",
    note: `what-if override; the profile gives ${JSON.stringify(figure.value)}`
  }
}

function isFigure(node: unknown): node is Record<string, unknown> {
  return node !== null && typeof node === "object" && "value" in node && "source" in node && "confidence" in node
}
