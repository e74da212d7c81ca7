import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/**
 * Write several files into `dir` so that a failure leaves none of them half
 * written: each goes to a temporary name first, and only when all are on disk
 * are they renamed into place.
 */
export function writeFilesAtomically(dir: string, files: ReadonlyArray<{ readonly name: string; readonly content: string }>): ReadonlyArray<string> {
  mkdirSync(dir, { recursive: true })
  const staged = files.map((file) => ({ temporary: join(dir, `.${file.name}.${process.pid}.tmp`), final: join(dir, file.name), content: file.content }))
  try {
    for (const file of staged) writeFileSync(file.temporary, file.content)
  } catch (error) {
    for (const file of staged) rmSync(file.temporary, { force: true })
    throw error
  }
  for (const file of staged) renameSync(file.temporary, file.final)
  return staged.map((file) => file.final)
}
