import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { packageRoot } from "../../src/paths.js"

// These run the built CLI (dist/), as a user would: `npm test` builds first.
const cli = join(packageRoot(), "dist", "src", "cli", "main.js")
const dir = mkdtempSync(join(tmpdir(), "attnsim-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function attnsim(...args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", cwd: dir })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

const decode = ["estimate", "--hardware", "h100-sxm", "--phase", "decode", "--seq-len", "32k", "--heads", "32", "--kv-heads", "8", "--batch", "8", "--causal", "--json"]

describe("attnsim estimate", () => {
  it("json has the contract fields", () => {
    const { status, stdout } = attnsim(...decode)
    const estimate = JSON.parse(stdout)

    expect(status).toBe(0)
    for (const field of ["hardware", "seconds", "flops", "flopsExecuted", "flopsConvention", "bound", "tiling"]) expect(estimate).toHaveProperty(field)
    expect(Object.keys(estimate.bytes).sort()).toEqual(["hbm", "l2", "smem"])
    expect(estimate.hardware).toBe("h100-sxm")
    expect(estimate.bound).toBe("hbm")
  })

  it("faster HBM makes decode faster", () => {
    const base = JSON.parse(attnsim(...decode).stdout)
    const faster = JSON.parse(attnsim(...decode, "--set", "memory.hbm.bandwidth=6 TB/s").stdout)

    expect(faster.seconds).toBeLessThan(base.seconds)
    expect(faster.seconds).toBeGreaterThan(base.seconds * 0.5)
  })

  it("unknown profile id is named", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h1000", "--seq-len", "4096")

    expect(status).not.toBe(0)
    expect(stderr).toContain('"h1000"')
    expect(stderr).toContain("h100-sxm")
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("malformed sequence length is named", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--seq-len", "12q")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--seq-len")
    expect(stderr).toContain('"12q"')
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("malformed --set value is named", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--seq-len", "4096", "--set", "memory.hbm.bandwidth=fast")

    expect(status).not.toBe(0)
    expect(stderr).toContain("memory.hbm.bandwidth")
    expect(stderr).toContain('"fast"')
  })

  it("fa3 on A100 is refused", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "a100-sxm-80g", "--seq-len", "4096", "--kernel", "fa3")

    expect(status).not.toBe(0)
    expect(stderr).toContain("fa3")
  })

  it("flag of another variant is refused", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--seq-len", "4096", "--variant", "dense", "--mla-kv-rank", "256")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--mla-kv-rank")
  })

  it("model stack reports memory", () => {
    const { status, stdout } = attnsim("estimate", "--hardware", "h800-sxm", "--model", "deepseek-v3", "--phase", "decode", "--seq-len", "4096", "--json")
    const estimate = JSON.parse(stdout)

    expect(status).toBe(0)
    expect(estimate.kvCacheBytesPerToken).toBe(70272)
    expect(estimate.stateBytesPerSequence).toBe(0)
    expect(estimate.layers).toHaveLength(61)
  })

  it("repeated single-value flag is rejected", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--hardware", "a100-sxm-80g", "--seq-len", "4k")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--hardware was given 2 times")
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("causal queries beyond keys are rejected", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--causal", "--seq-len", "4k", "--query-len", "8k")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--query-len")
    expect(stderr).toContain('"8k"')
  })

  it("cache beyond HBM is flagged", () => {
    const args = ["estimate", "--hardware", "h100-sxm", "--model", "minimax-text-01", "--phase", "decode", "--seq-len", "1M", "--batch", "8"]
    const estimate = JSON.parse(attnsim(...args, "--json").stdout)
    const text = attnsim(...args).stdout

    expect(estimate.fitsInHbm).toBe(false)
    expect(estimate.minimumGpusForCache).toBe(Math.ceil(estimate.memoryBytes / estimate.hbmCapacityBytes))
    expect(estimate.minimumGpusForCache).toBeGreaterThan(1)
    expect(text).toContain("WARNING")
  })

  it("shape flag with --model is rejected", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--model", "nsa-27b", "--seq-len", "8k", "--heads", "8")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--heads")
    expect(stderr).toContain("--model")
  })

  it("model dtype yields to --dtype", () => {
    const path = join(dir, "fp16-config.json")
    writeFileSync(path, JSON.stringify({ model_type: "llama", num_hidden_layers: 2, num_attention_heads: 8, hidden_size: 512, torch_dtype: "float16" }))

    const own = JSON.parse(attnsim("estimate", "--hardware", "h100-sxm", "--model", path, "--seq-len", "1k", "--json").stdout)
    const explicit = JSON.parse(attnsim("estimate", "--hardware", "h100-sxm", "--model", path, "--seq-len", "1k", "--dtype", "bf16", "--json").stdout)

    expect(own.dtype).toBe("fp16")
    expect(explicit.dtype).toBe("bf16")
  })

  it("bare --set after a value is rejected", () => {
    const { status, stderr } = attnsim("estimate", "--hardware", "h100-sxm", "--seq-len", "1k", "--set", "memory.hbm.bandwidth=4 TB/s", "--set")

    expect(status).not.toBe(0)
    expect(stderr).toContain("--set")
  })

  it("help states units", () => {
    const { stdout } = attnsim("estimate", "--help")

    expect(stdout).toContain("in tokens")
    expect(stdout).toContain("TB/s")
  })
})

describe("attnsim run", () => {
  it("broken scenario names the field", () => {
    const path = join(dir, "broken.json")
    writeFileSync(path, JSON.stringify({ hardware: ["h100-sxm"], model: { name: "x", heads: 32, kvHeads: 8, headDim: 128 }, dtype: "bf16", batch: 0, cases: [] }))

    const { status, stderr } = attnsim("run", path, "--out", join(dir, "reports"))

    expect(status).not.toBe(0)
    expect(stderr).toContain("broken.json")
    expect(stderr).toContain("batch")
    expect(existsSync(join(dir, "reports", "broken"))).toBe(false)
  })

  it("misspelled phase gives one line", () => {
    const path = join(dir, "typo.json")
    const scenario = { hardware: ["h100-sxm"], model: { name: "x", heads: 8, kvHeads: 2, headDim: 64 }, dtype: "bf16", batch: 1, cases: [{ variant: "dense", phase: "prefil", seqLens: [1024] }] }
    writeFileSync(path, JSON.stringify(scenario))

    const { status, stderr } = attnsim("run", path, "--out", join(dir, "reports"), "--no-execute")

    expect(status).not.toBe(0)
    expect(stderr).toContain('cases.0.phase: got "prefil"; expected one of "prefill", "decode", "train"')
    // The case has a variant, so the errors of the other case kind (a whole model) are not listed.
    expect(stderr).not.toContain("cases.0.variant")
    expect(stderr).not.toContain("cases.0.model")
  })

  it("typescript scenario loads outside a package", () => {
    const folder = mkdtempSync(join(tmpdir(), "attnsim-ts-"))
    const path = join(folder, "plain.ts")
    const scenario = { name: "plain", hardware: ["h100-sxm"], model: { name: "x", heads: 8, kvHeads: 2, headDim: 64 }, dtype: "bf16", batch: 1, cases: [{ variant: "dense", phase: "prefill", seqLens: [1024] }] }
    writeFileSync(path, `export default ${JSON.stringify(scenario)}\n`)

    const { status, stderr } = attnsim("run", path, "--out", join(dir, "reports"), "--no-execute")
    rmSync(folder, { recursive: true, force: true })

    expect(stderr).not.toContain("invalid input")
    expect(status).toBe(0)
    expect(existsSync(join(dir, "reports", "plain", "report.json"))).toBe(true)
  })

  it("unwritable output fails before running", () => {
    const blocker = join(dir, "a-file")
    writeFileSync(blocker, "")
    const path = join(dir, "small.json")
    const scenario = { hardware: ["h100-sxm"], model: { name: "x", heads: 8, kvHeads: 2, headDim: 64 }, dtype: "bf16", batch: 1, cases: [{ variant: "dense", phase: "prefill", seqLens: [1024] }] }
    writeFileSync(path, JSON.stringify(scenario))

    const { status, stderr } = attnsim("run", path, "--out", join(blocker, "reports"))

    expect(status).not.toBe(0)
    expect(stderr).toContain("--out")
    expect(stderr).not.toContain("run small started")
    expect(stderr).not.toMatch(/\n\s+at /)
  })

  it("model case queryLen is checked", () => {
    const path = join(dir, "model-query.json")
    writeFileSync(path, JSON.stringify({ hardware: ["h100-sxm"], dtype: "bf16", batch: 1, cases: [{ model: "deepseek-v3", phase: "prefill", seqLens: [1024], queryLen: 4096 }] }))

    const { status, stderr } = attnsim("run", path, "--out", join(dir, "reports"))

    expect(status).not.toBe(0)
    expect(stderr).toContain("cases.0.queryLen")
  })

  it("name from file name is checked", () => {
    const folder = join(dir, "dots")
    mkdirSync(folder, { recursive: true })
    const path = join(folder, "...json")
    writeFileSync(path, JSON.stringify({ hardware: ["h100-sxm"], dtype: "bf16", batch: 1, cases: [{ model: "deepseek-v3", phase: "decode", seqLens: [1024] }] }))

    const { status, stderr } = attnsim("run", path, "--out", join(folder, "reports"))

    expect(status).not.toBe(0)
    expect(stderr).toContain('name: got ".."')
    expect(existsSync(join(dir, "report.json"))).toBe(false)
  })

  it("folder in place of a report is rejected", () => {
    const path = join(dir, "blocked.json")
    writeFileSync(path, JSON.stringify({ hardware: ["h100-sxm"], dtype: "bf16", batch: 1, cases: [{ model: "deepseek-v3", phase: "decode", seqLens: [1024] }] }))
    mkdirSync(join(dir, "blocked-out", "blocked", "report.md"), { recursive: true })

    const { status, stderr } = attnsim("run", path, "--out", join(dir, "blocked-out"))

    expect(status).not.toBe(0)
    expect(stderr).toContain("report.md is a folder")
    expect(existsSync(join(dir, "blocked-out", "blocked", "report.json"))).toBe(false)
  })

  it("analytical scenario writes both reports", () => {
    const path = join(dir, "tiny.json")
    writeFileSync(
      path,
      JSON.stringify({
        name: "tiny",
        hardware: ["h100-sxm", "a100-sxm-80g"],
        model: { name: "small", heads: 8, kvHeads: 2, headDim: 64 },
        dtype: "bf16",
        batch: 1,
        cases: [{ variant: "dense", phase: "prefill", seqLens: [1024, 2048] }]
      })
    )

    const { status, stdout } = attnsim("run", path, "--out", join(dir, "reports"), "--no-execute")
    const report = JSON.parse(readFileSync(join(dir, "reports", "tiny", "report.json"), "utf8"))

    expect(status).toBe(0)
    expect(stdout).toContain("report.md")
    expect(report.rows).toHaveLength(4)
    expect(existsSync(join(dir, "reports", "tiny", "report.md"))).toBe(true)
  })
})

describe("attnsim profiles", () => {
  it("lists every shipped profile", () => {
    const { status, stdout } = attnsim("profiles")

    expect(status).toBe(0)
    expect(stdout).toContain("9 profiles valid")
  })

  it("broken file names the field", () => {
    const profile = JSON.parse(readFileSync(join(packageRoot(), "hardware-profiles", "h100-sxm.json"), "utf8"))
    profile.memory.l2.capacity.value = "5 MiB"
    const path = join(dir, "small-l2.json")
    writeFileSync(path, JSON.stringify(profile))

    const { status, stderr } = attnsim("profiles", path)

    expect(status).not.toBe(0)
    expect(stderr).toContain("memory.l2.capacity.value")
    expect(stderr).toContain("small-l2.json")
  })

  it("every broken file is listed", () => {
    const first = join(dir, "broken-one.json")
    const second = join(dir, "broken-two.json")
    writeFileSync(first, "{")
    writeFileSync(second, JSON.stringify({ extends: "no-such-gpu" }))

    const { status, stderr } = attnsim("profiles", join(packageRoot(), "hardware-profiles", "h100-sxm.json"), first, second)

    expect(status).not.toBe(0)
    expect(stderr).toContain("2 of 3 profiles are invalid")
    expect(stderr).toContain("broken-one.json")
    expect(stderr).toContain('"no-such-gpu" (from field extends of')
  })
})
