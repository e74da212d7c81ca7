import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { InputError, NotFoundError } from "../../src/errors.js"
import { deviceRates } from "../../src/hardware/device.js"
import { loadProfile, shippedProfileIds } from "../../src/hardware/load.js"
import { parseOverride } from "../../src/hardware/overrides.js"
import { profilesDir } from "../../src/paths.js"

const shippedIds = ["a100-sxm-80g", "b200", "h100-sxm", "h20", "h200-sxm", "h800-sxm", "l40s", "mi300x", "rtx-4090"]

/** Dense BF16 tensor peaks in TFLOP/s as the vendor or listings print them. A 2:4-sparse figure would be twice these. */
const denseBf16Tflops: Record<string, number> = {
  "a100-sxm-80g": 312,
  b200: 2250,
  "h100-sxm": 989.4,
  h20: 148,
  "h200-sxm": 989.4,
  "h800-sxm": 989.4,
  l40s: 362,
  mi300x: 1307.4,
  "rtx-4090": 165.2
}

type Json = Record<string, unknown>

function readReference(): Json {
  return JSON.parse(readFileSync(join(profilesDir(), "h100-sxm.json"), "utf8")) as Json
}

/** Follow a dotted path to the object that contains its last key. */
function parentOf(root: Json, path: string): { node: Json; key: string } {
  const keys = path.split(".")
  let node = root
  for (const key of keys.slice(0, -1)) node = node[key] as Json
  return { node, key: keys[keys.length - 1]! }
}

function setAt(root: Json, path: string, value: unknown): void {
  const { node, key } = parentOf(root, path)
  node[key] = value
}

function deleteAt(root: Json, path: string): void {
  const { node, key } = parentOf(root, path)
  delete node[key]
}

/** Collect every figure (an object with value, source and confidence) of a raw profile with its dotted path. */
function figuresOf(node: unknown, path: string): Array<{ path: string; figure: Json }> {
  if (node === null || typeof node !== "object") return []
  const record = node as Json
  if ("value" in record && "source" in record && "confidence" in record) return [{ path, figure: record }]
  return Object.entries(record).flatMap(([key, child]) => (key === "sources" ? [] : figuresOf(child, path ? `${path}.${key}` : key)))
}

/** Run a load that must fail and return its error. */
function loadFailure(load: () => unknown): unknown {
  try {
    load()
  } catch (error) {
    return error
  }
  throw new Error("the profile loaded, but it should have been rejected")
}

let dir: string

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "attnsim-profiles-"))
})

afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

function writeProfile(name: string, content: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(content, null, 2))
  return path
}

describe("shipped profiles", () => {
  it("lists every shipped id", () => {
    expect(shippedProfileIds()).toEqual(shippedIds)
  })

  for (const id of shippedIds) {
    it(`${id} loads with its file name as id`, () => {
      const profile = loadProfile(id)

      expect(profile.id).toBe(id)
    })

    it(`${id} has the dense bf16 peak`, () => {
      const profile = loadProfile(id)
      const expected = denseBf16Tflops[id]!

      expect(profile.compute.tensor.bf16?.value).toBeCloseTo(expected * 1e12, -9)
    })

    it(`${id} prices bf16 rates`, () => {
      const rates = deviceRates(loadProfile(id), "bf16")

      expect(rates.tensorFlopsPerSecond).toBeGreaterThan(0)
      expect(rates.hbmBytesPerSecond).toBeGreaterThan(0)
      expect(rates.l2BytesPerSecond).toBeGreaterThan(rates.hbmBytesPerSecond)
      expect(rates.smemBytesPerSecond).toBeGreaterThan(rates.l2BytesPerSecond)
    })
  }

  it("derived figures show arithmetic", () => {
    for (const id of shippedIds) {
      const raw = JSON.parse(readFileSync(join(profilesDir(), `${id}.json`), "utf8")) as Json
      const unexplained = figuresOf(raw, "").filter(({ figure }) => figure.source === "derived" && !/[×÷=]/.test(String(figure.note ?? "")))

      expect(unexplained.map(({ path }) => `${id}: ${path}`)).toEqual([])
    }
  })

  it("a100 has no fp8 rate", () => {
    const profile = loadProfile("a100-sxm-80g")
    const error = loadFailure(() => deviceRates(profile, "fp8"))

    expect(profile.compute.tensor.fp8).toBeUndefined()
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toContain("compute.tensor.fp8")
  })

  it("h20 declares a consistency exception", () => {
    const profile = loadProfile("h20")

    expect(profile.compute.consistencyException).toBeTruthy()
    expect(profile.compute.tensorFlopsPerClockPerSm).toBeUndefined()
  })

  it("mi300x keeps Infinity Cache as llc", () => {
    const profile = loadProfile("mi300x")

    expect(profile.memory.llc?.capacity.value).toBe(256e6)
    expect(profile.memory.smem.capacityPerBlock.value).toBe(64 * 1024)
  })

  it("sustained clock factors match", () => {
    expect(deviceRates(loadProfile("h800-sxm"), "bf16").clockFactor).toBeCloseTo(1.6 / 1.83, 12)
    // The A100 profile keeps its boost clock: FA2's published forward throughput rules out a 1.2 GHz sag.
    expect(deviceRates(loadProfile("a100-sxm-80g"), "bf16").clockFactor).toBe(1)
  })

  it("asyncMma follows the architecture", () => {
    const expected: Record<string, boolean> = { hopper: true, blackwell: true, ampere: false, ada: false, cdna3: false }

    for (const id of shippedIds) {
      const profile = loadProfile(id)
      expect(profile.features.asyncMma, id).toBe(expected[profile.architecture])
    }
  })
})

describe("broken profiles", () => {
  const cases: ReadonlyArray<{ name: string; path: string; expected: RegExp; breakIt: (profile: Json) => void }> = [
    {
      name: "bandwidth with a size unit",
      path: "memory.hbm.bandwidth.value",
      expected: /"TB" measures bytes, not bytes\/s/,
      breakIt: (profile) => setAt(profile, "memory.hbm.bandwidth.value", "3.35 TB")
    },
    {
      name: "missing required field",
      path: "compute.sms",
      expected: /required field/,
      breakIt: (profile) => deleteAt(profile, "compute.sms")
    },
    {
      name: "string where a number goes",
      path: "compute.maxCtasPerSm.value",
      expected: /number/,
      breakIt: (profile) => setAt(profile, "compute.maxCtasPerSm.value", "32")
    },
    {
      name: "L2 smaller than smem total",
      path: "memory.l2.capacity.value",
      expected: /larger than memory\.smem/,
      breakIt: (profile) => setAt(profile, "memory.l2.capacity.value", "20 MiB")
    },
    {
      name: "HBM faster than L2",
      path: "memory.hbm.bandwidth.value",
      expected: /below memory\.l2 bandwidth/,
      breakIt: (profile) => setAt(profile, "memory.hbm.bandwidth.value", "20 TB/s")
    },
    {
      name: "tensor peak inconsistent",
      path: "compute.tensor.bf16.value",
      expected: /within 2 % of 4096 FLOP\/clock\/SM × 132 SMs/,
      breakIt: (profile) => setAt(profile, "compute.tensor.bf16.value", "1200 TFLOP/s")
    },
    {
      name: "source key not in sources",
      path: "compute.sms.source",
      expected: /a key of "sources"/,
      breakIt: (profile) => setAt(profile, "compute.sms.source", "nvidia-datasheet")
    },
    {
      name: "fitted figure without note",
      path: "memory.l2.bandwidth.note",
      expected: /fitted figure/,
      breakIt: (profile) => {
        setAt(profile, "memory.l2.bandwidth.confidence", "F")
        deleteAt(profile, "memory.l2.bandwidth.note")
      }
    },
    {
      name: "sustained clock above max",
      path: "compute.clock.sustained.value",
      expected: /at most the maximum clock \(1980 MHz\)/,
      breakIt: (profile) => setAt(profile, "compute.clock.sustained.value", "2.1 GHz")
    },
    {
      name: "smem per block above per SM",
      path: "memory.smem.capacityPerBlock.value",
      expected: /at most memory\.smem\.capacityPerSm/,
      breakIt: (profile) => setAt(profile, "memory.smem.capacityPerBlock.value", "300 KiB")
    },
    {
      name: "unknown extra field",
      path: "compute.smCount",
      expected: /no such field/,
      breakIt: (profile) => setAt(profile, "compute.smCount", { value: 132, source: "nvidia-hopper", confidence: "P" })
    }
  ]

  for (const { name, path, expected, breakIt } of cases) {
    it(`rejects ${name}`, () => {
      const profile = readReference()
      breakIt(profile)
      const file = writeProfile("broken.json", profile)

      const error = loadFailure(() => loadProfile(file))

      expect(error).toBeInstanceOf(InputError)
      const inputError = error as InputError
      expect(inputError.issues).toHaveLength(1)
      expect(inputError.issues[0]?.path).toBe(path)
      expect(inputError.issues[0]?.expected).toMatch(expected)
      expect(inputError.origin).toBe(file)
      expect(inputError.message).toContain(path)
      expect(inputError.message).toContain(file)
    })
  }

  it("accepts the unbroken copy", () => {
    const file = writeProfile("intact.json", readReference())

    expect(loadProfile(file).id).toBe("h100-sxm")
  })
})

describe("profile extends", () => {
  it("child overrides a figure", () => {
    const child = {
      extends: "h100-sxm",
      id: "h100-faster-hbm",
      sources: { lab: "hypothetical HBM upgrade used by this test" },
      memory: { hbm: { bandwidth: { value: "4 TB/s", source: "lab", confidence: "U" } } }
    }
    const file = writeProfile("h100-faster-hbm.json", child)

    const profile = loadProfile(file)

    expect(profile.id).toBe("h100-faster-hbm")
    expect(profile.memory.hbm.bandwidth.value).toBe(4e12)
    expect(profile.memory.hbm.bandwidth.source).toBe("lab")
    expect(profile.memory.hbm.capacity.value).toBe(80 * 2 ** 30)
    expect(profile.sources["nvidia-hopper"]).toBeDefined()
  })

  it("rejects a value without source", () => {
    const child = { extends: "h100-sxm", id: "h100-unsourced", memory: { hbm: { bandwidth: { value: "4 TB/s" } } } }
    const file = writeProfile("h100-unsourced.json", child)

    const error = loadFailure(() => loadProfile(file))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).issues.map((issue) => issue.path)).toContain("memory.hbm.bandwidth.source")
    expect((error as InputError).message).toContain(file)
  })

  it("rejects a value without confidence", () => {
    const child = {
      extends: "h100-sxm",
      id: "h100-no-confidence",
      sources: { lab: "hypothetical L2 upgrade used by this test" },
      memory: { l2: { bandwidth: { value: "20 TB/s", source: "lab" } } }
    }
    const file = writeProfile("h100-no-confidence.json", child)

    const error = loadFailure(() => loadProfile(file))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).issues.map((issue) => issue.path)).toContain("memory.l2.bandwidth.confidence")
  })

  it("drops the parent's note on a changed value", () => {
    const child = {
      extends: "h100-sxm",
      id: "h100-new-l2",
      sources: { lab: "hypothetical L2 upgrade used by this test" },
      memory: { l2: { bandwidth: { value: "20 TB/s", source: "lab", confidence: "U" } } }
    }
    const profile = loadProfile(writeProfile("h100-new-l2.json", child))

    expect(profile.memory.l2.bandwidth.confidence).toBe("U")
    expect(profile.memory.l2.bandwidth.note).toBeUndefined()
  })

  it("rejects an extends cycle", () => {
    const first = writeProfile("first.json", { extends: "./second.json", id: "first" })
    writeProfile("second.json", { extends: "./first.json", id: "second" })

    const error = loadFailure(() => loadProfile(first))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).issues.map((issue) => issue.path)).toContain("extends")
    expect((error as InputError).message).toMatch(/first\.json → second\.json → first\.json/)
  })
})

describe("--set overrides", () => {
  it("raises HBM bandwidth", () => {
    const baseline = deviceRates(loadProfile("h100-sxm"), "bf16")
    const override = parseOverride("memory.hbm.bandwidth=6 TB/s")

    const profile = loadProfile("h100-sxm", [override])
    const rates = deviceRates(profile, "bf16")

    expect(override.value).toBe("6 TB/s")
    expect(profile.memory.hbm.bandwidth.value).toBe(6e12)
    expect(profile.memory.hbm.bandwidth.source).toBe("override")
    expect(rates.hbmBytesPerSecond).toBeCloseTo(6e12 * profile.achievable.hbm.value, -3)
    expect(rates.hbmBytesPerSecond).toBeGreaterThan(baseline.hbmBytesPerSecond)
  })

  it("accepts a path ending in value", () => {
    const profile = loadProfile("h100-sxm", [parseOverride("memory.hbm.bandwidth.value=6 TB/s")])

    expect(profile.memory.hbm.bandwidth.value).toBe(6e12)
  })

  it("rejects an unknown path", () => {
    const error = loadFailure(() => loadProfile("h100-sxm", [parseOverride("memory.hbm.bandwith=6 TB/s")]))

    expect(error).toBeInstanceOf(InputError)
    const inputError = error as InputError
    expect(inputError.issues.map((issue) => issue.path)).toContain("memory.hbm.bandwith")
    expect(inputError.message).toContain("kind, capacity, bandwidth, latency, transaction")
  })

  it("rejects text without a path", () => {
    const error = loadFailure(() => parseOverride("=6 TB/s"))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toContain("path=value")
  })

  it("override replaces the note", () => {
    const profile = loadProfile("h100-sxm", [parseOverride("compute.exp=10 Top/s")])

    expect(profile.compute.exp.value).toBe(10e12)
    expect(profile.compute.exp.note).toContain("3.9 Top/s")
    expect(profile.compute.exp.note).not.toContain("3.87")
  })

  it("rejects a zero clock", () => {
    const error = loadFailure(() => loadProfile("h100-sxm", [parseOverride("compute.clock.sustained=0 GHz")]))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toContain("compute.clock.sustained.value")
    expect((error as InputError).message).toContain("above zero")
  })

  it("override breaking a check fails", () => {
    const error = loadFailure(() => loadProfile("h100-sxm", [parseOverride("memory.hbm.bandwidth=20 TB/s")]))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toContain("memory.hbm.bandwidth.value")
    expect((error as InputError).message).toContain("--set memory.hbm.bandwidth=20 TB/s")
  })
})

describe("profile lookup", () => {
  it("unknown id lists known ids", () => {
    const error = loadFailure(() => loadProfile("h100-sxn"))

    expect(error).toBeInstanceOf(NotFoundError)
    const notFound = error as NotFoundError
    expect(notFound.id).toBe("h100-sxn")
    expect(notFound.known).toEqual(shippedIds)
    expect(notFound.message).toContain("h100-sxm, h20")
  })

  it("rejects an id unlike its file name", () => {
    const copy = { ...readReference(), id: "h100-renamed" }
    writeProfile("h100-copy.json", copy)

    const error = loadFailure(() => loadProfile("h100-copy", [], dir))

    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).issues.map((issue) => issue.path)).toContain("id")
  })
})
