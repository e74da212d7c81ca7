import { existsSync, mkdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { InputError } from "../errors.js"

/**
 * Write several files into `dir` so that a failure leaves none of them half
 * written: each goes to a temporary name first, and only when all are on disk
 * are they renamed into place.
 */
export function writeFilesAtomically(dir: string, files: ReadonlyArray<{ readonly name: string; readonly content: string }>): ReadonlyArray<string> {
  makeDirectories(dir)
  const staged = files.map((file) => ({ temporary: join(dir, `.${file.name}.${process.pid}.tmp`), final: join(dir, file.name), content: file.content }))
  // A folder in a file's place would fail the rename after the first file had replaced its old version.
  const blocked = staged.find((file) => existsSync(file.final) && statSync(file.final).isDirectory())
  if (blocked) throw new Error(`cannot write ${blocked.final}: a folder has that name`)
  try {
    for (const file of staged) writeFileSync(file.temporary, file.content)
    for (const file of staged) renameSync(file.temporary, file.final)
  } catch (error) {
    for (const file of staged) rmSync(file.temporary, { force: true })
    throw error
  }
  return staged.map((file) => file.final)
}

/**
 * Checks, before a long run, that files can be written into `dir`: creates
 * the missing folders and a probe file, then removes both again, so a bad
 * output path fails in seconds and leaves nothing behind. `names` are the
 * files to be written there, none of which may be a folder. `flag` names the
 * option the path came from, for the error.
 */
export function checkOutputDirectory(dir: string, flag: string, names: ReadonlyArray<string> = []): void {
  let created: string[] = []
  try {
    created = makeDirectories(dir)
    for (const name of names) {
      const path = join(dir, name)
      if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${path} is a folder, not a file`)
    }
    const probe = join(dir, `.attnsim-probe.${process.pid}.tmp`)
    writeFileSync(probe, "")
    rmSync(probe)
  } catch (error) {
    throw new InputError({ origin: flag, issues: [{ path: "", value: dir, expected: `a folder attnsim can write into (${(error as Error).message})` }] })
  } finally {
    for (const folder of created.reverse()) rmdirSync(folder)
  }
}

/**
 * Creates `dir` and its missing parents one level at a time and returns the
 * folders it created, outermost first. Node 20's `mkdirSync(dir, { recursive:
 * true })` loops forever on a path under /proc, where mkdir fails with ENOENT.
 */
function makeDirectories(dir: string): string[] {
  const missing: string[] = []
  let folder = resolve(dir)
  while (!existsSync(folder)) {
    missing.unshift(folder)
    const parent = dirname(folder)
    if (parent === folder) break
    folder = parent
  }
  const created: string[] = []
  try {
    for (const path of missing) {
      mkdirSync(path)
      created.push(path)
    }
  } catch (error) {
    for (const path of created.reverse()) rmdirSync(path)
    throw error
  }
  if (!statSync(resolve(dir)).isDirectory()) throw new Error(`${dir} is not a folder`)
  return created
}
