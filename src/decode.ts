import { Either, ParseResult, Schema } from "effect"
import { InputError, type FieldIssue } from "./errors.js"

/**
 * Decode user input with a schema. On failure every issue names its field path,
 * the value found there and what the schema expected.
 */
export function decodeInput<A, I>(schema: Schema.Schema<A, I>, raw: unknown, origin: string): Either.Either<A, InputError> {
  const result = Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(raw)
  if (Either.isRight(result)) return Either.right(result.right)

  const issues = ParseResult.ArrayFormatter.formatErrorSync(result.left).map(
    (issue): FieldIssue => ({
      path: issue.path.map(String).join("."),
      value: valueAt(raw, issue.path),
      expected: describeExpectation(issue)
    })
  )
  return Either.left(new InputError({ origin, issues: mergeAlternatives(issues) }))
}

/**
 * Merges the issues a union reports at one path into one: the literals it
 * accepts become "one of …", and "undefined" (an optional field) is dropped
 * when the field is present or one of its own fields is invalid.
 */
export function mergeAlternatives(issues: ReadonlyArray<FieldIssue>): FieldIssue[] {
  // An optional object with an invalid field also fails the "undefined" member, and the field's own issue is the useful one.
  const nested = (path: string): boolean => issues.some((other) => other.path.startsWith(`${path}.`))
  const byPath = new Map<string, FieldIssue[]>()
  for (const issue of issues) {
    if (issue.expected === "undefined" && nested(issue.path)) continue
    byPath.set(issue.path, [...(byPath.get(issue.path) ?? []), issue])
  }
  return [...byPath.values()].map((group) => {
    const first = group[0]!
    const expectations = [...new Set(group.map((issue) => issue.expected))]
    const present = expectations.length > 1 ? expectations.filter((text) => text !== "undefined") : expectations
    if (present.length === 1) return { ...first, expected: present[0]! }
    const literals = present.every((text) => /^(".*"|-?\d+(\.\d+)?|true|false)$/.test(text))
    return { ...first, expected: literals ? `one of ${present.join(", ")}` : present.join(", or ") }
  })
}

function describeExpectation(issue: ParseResult.ArrayFormatterIssue): string {
  if (issue._tag === "Missing") return "this required field"
  if (issue._tag === "Unexpected") return "no such field (check its spelling)"
  const expected = issue.message
    .replace(/^Expected /, "")
    .replace(/, actual .*$/s, "")
  if (expected.startsWith("{")) return `an object with the fields ${topLevelFields(expected).join(", ")}; set one of its fields, not the whole object`
  const list = /^ReadonlyArray<(\w+)>$/.exec(expected)
  if (list) return `a list of ${list[1]} values`
  return expected
}

/** Field names at the outer level of a rendered struct type such as `{ readonly a: { readonly b: string }; readonly c?: number }`. */
function topLevelFields(rendered: string): string[] {
  const fields: string[] = []
  let depth = 0
  for (let index = 0; index < rendered.length; index++) {
    const char = rendered[index]
    if (char === "{" || char === "<" || char === "(" || char === "[") depth++
    else if (char === "}" || char === ">" || char === ")" || char === "]") depth--
    else if (depth === 1) {
      const field = /^readonly (\w+)\??:/.exec(rendered.slice(index))
      if (field && /[{;]\s*$/.test(rendered.slice(0, index))) fields.push(field[1]!)
    }
  }
  return fields
}

/** Follow a path into a parsed JSON value; undefined where it does not exist. */
export function valueAt(raw: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node: unknown = raw
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}
