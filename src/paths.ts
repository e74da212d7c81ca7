import { existsSync, readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

let cachedRoot: string | undefined

/**
 * The attnsim package root: the nearest folder above this module whose
 * package.json is named "attnsim". Works from src/ (vitest) and dist/src/ (built).
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const manifest = join(dir, "package.json")
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).name === "attnsim") {
      cachedRoot = dir
      return dir
    }
    const parent = dirname(dir)
    if (parent === dir) throw new Error("attnsim package root not found above " + fileURLToPath(import.meta.url))
    dir = parent
  }
}

export const profilesDir = (): string => join(packageRoot(), "hardware-profiles")
