import { Data } from "effect"

/** One invalid field of a user-written input: a file, a scenario, a flag. */
export interface FieldIssue {
  readonly path: string
  readonly value: unknown
  readonly expected: string
}

/**
 * An input a user wrote is invalid. `origin` is the file path or the flag the
 * input came from; `issues` lists every invalid field found.
 */
export class InputError extends Data.TaggedError("InputError")<{
  readonly origin: string
  readonly issues: ReadonlyArray<FieldIssue>
}> {
  override get message(): string {
    const shown = this.issues.slice(0, 6).map((issue) => `  ${issue.path || "(top level)"}: got ${describeValue(issue.value)}; expected ${issue.expected}`)
    const hidden = this.issues.length - shown.length
    const more = hidden > 0 ? [`  … and ${hidden} more`] : []
    return [`invalid input in ${this.origin}:`, ...shown, ...more].join("\n")
  }
}

/** Keeps the first issue of each field path. */
export function dedupeByPath<T extends { readonly path: string }>(issues: ReadonlyArray<T>): T[] {
  return issues.filter((issue, index) => issues.findIndex((other) => other.path === issue.path) === index)
}

/** A lookup by id found nothing. */
export class NotFoundError extends Data.TaggedError("NotFoundError")<{
  readonly kind: string
  readonly id: string
  readonly known: ReadonlyArray<string>
  readonly origin?: string
}> {
  override get message(): string {
    const where = this.origin ? ` (from ${this.origin})` : ""
    if (this.kind.endsWith(" file")) return `${this.kind} "${this.id}"${where} not found; or name a shipped one: ${this.known.join(", ")}`
    return `unknown ${this.kind} "${this.id}"${where}; known: ${this.known.join(", ")}`
  }
}

/** Render a found value for an error message: short, and never "[object Object]". */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing (the field is missing)"
  if (typeof value === "string") return JSON.stringify(value)
  const text = JSON.stringify(value)
  if (text === undefined) return String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}
