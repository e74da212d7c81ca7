import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, existsSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { packageRoot } from "../../src/paths.js"

// These run the built CLI (dist/), as a user would: `npm test` builds first.
const cli = join(packageRoot(), "dist", "src", "cli", "main.js")
const dir = mkdtempSync(join(tmpdir(), "attnsim-validate-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function attnsim(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd: dir })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe("attnsim validate", () => {
  it("published json has the contract", () => {
    const { status, stdout } = attnsim("validate", "--published", "--json", "--out", join(dir, "reports"))
    const document = JSON.parse(stdout)

    expect(status).toBe(0)
    expect(Array.isArray(document.variants)).toBe(true)
    expect(document).toHaveProperty("poolSpeedup")
    for (const variant of document.variants) {
      for (const field of ["variant", "cases", "medianAbsErrorPct", "p90AbsErrorPct"]) expect(variant).toHaveProperty(field)
      for (const c of variant.cases) for (const field of ["predictedSeconds", "measuredSeconds", "errorPct", "countsMatch"]) expect(c).toHaveProperty(field)
    }
    expect(existsSync(join(dir, "reports", "validation-published", "report.md"))).toBe(true)
  })

  it("missing calibration says what to run", () => {
    const { status, stderr } = attnsim("validate", "--no-speedup")

    expect(status).not.toBe(0)
    expect(stderr).toContain("attnsim calibrate")
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("GPU profile is not a host", () => {
    mkdirSync(join(dir, "gpu"), { recursive: true })
    const path = join(dir, "gpu", "h100.json")
    writeFileSync(path, JSON.stringify({ extends: "h100-sxm" }))

    const { status, stderr } = attnsim("validate", "--hardware", path)

    expect(status).not.toBe(0)
    expect(stderr).toContain("attnsim calibrate")
  })

  it("help names units", () => {
    const { stdout } = attnsim("validate", "--help")

    expect(stdout).toContain("--full-limit")
    expect(stdout).toContain("seconds")
    expect(stdout).toContain("--allow-other-machine")
  })
})
