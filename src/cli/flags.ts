import { InputError } from "../errors.js"

const commandLine = "command line"

/**
 * Parse a positive integer flag. Token counts accept a k (×1024) or M (×1048576)
 * suffix, as in "128k context" = 131072 tokens.
 */
export function parseCount(flag: string, raw: unknown, meaning: string, allowSuffix = false): number {
  const text = String(raw).trim()
  const match = allowSuffix ? text.match(/^(\d+)([kM]?)$/) : text.match(/^(\d+)$/)
  const value = match ? Number(match[1]) * (match[2] === "k" ? 1024 : match[2] === "M" ? 1024 * 1024 : 1) : NaN
  if (!Number.isSafeInteger(value) || value <= 0) {
    const suffix = allowSuffix ? ", optionally with k (×1024) or M (×1048576)" : ""
    throw new InputError({ origin: commandLine, issues: [{ path: `--${flag}`, value: raw, expected: `a positive integer${suffix}: ${meaning}` }] })
  }
  return value
}

export function parseOptionalCount(flag: string, raw: unknown, meaning: string, allowSuffix = false): number | undefined {
  return raw === undefined ? undefined : parseCount(flag, raw, meaning, allowSuffix)
}

/** Parse a flag restricted to a list of choices (yargs checks too; this names the flag in our format). */
export function parseChoice<const C extends string>(flag: string, raw: unknown, choices: ReadonlyArray<C>): C {
  if (typeof raw === "string" && (choices as ReadonlyArray<string>).includes(raw)) return raw as C
  throw new InputError({ origin: commandLine, issues: [{ path: `--${flag}`, value: raw, expected: `one of ${choices.join(", ")}` }] })
}

export function inputError(flag: string, value: unknown, expected: string): InputError {
  return new InputError({ origin: commandLine, issues: [{ path: `--${flag}`, value, expected }] })
}
