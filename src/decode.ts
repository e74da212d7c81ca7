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
  return Either.left(new InputError({ origin, issues }))
}

function describeExpectation(issue: ParseResult.ArrayFormatterIssue): string {
  if (issue._tag === "Missing") return "this required field"
  if (issue._tag === "Unexpected") return "no such field (check its spelling)"
  return issue.message
    .replace(/^Expected /, "")
    .replace(/, actual .*$/s, "")
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
