import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { InputError } from "../../src/errors.js"
import { decodeProfile, loadProfile } from "../../src/hardware/load.js"
import type { CalibrationRun, Measured } from "../../src/validate/calibrate.js"
import { compareCalibrations } from "../../src/validate/compare-calibrations.js"
import { hostModelOf } from "../../src/validate/host-model.js"
import { hostProfileFile, loadHostProfile } from "../../src/validate/host-profile.js"
import { currentMachine, fingerprint, type MachineIdentity } from "../../src/validate/machine.js"

const dir = mkdtempSync(join(tmpdir(), "attnsim-host-profile-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const m = (value: number, spreadPct = 4): Measured => ({ value, spreadPct, repeats: 5 })
const level = (bytes: number | undefined, level: number, bandwidth: number, latency: number) => ({
  cache: bytes === undefined ? undefined : { level, bytes, sharedBy: level === 3 ? 2 : 1 },
  measurement: { workingSetBytes: (bytes ?? 2 ** 28) / 2, bandwidths: [bandwidth, bandwidth * 1.02], latencies: [latency, latency * 1.01] }
})

/** Make a calibration run with plausible figures for the machine `identity`. */
function fakeRun(identity: MachineIdentity = currentMachine(), scale = 1): CalibrationRun {
  return {
    identity,
    fingerprint: fingerprint(identity),
    measuredAt: "2026-01-01T00:00:00.000Z",
    backend: "webasm",
    workers: 2,
    repeats: 5,
    stepModels: [
      {
        model: "attention-forward",
        form: "test",
        terms: { task: m(5e-5 * scale), step: m(3e-5 * scale), rowStep: m(4e-7 * scale), flop: m(6e-10 * scale), score: m(2e-8 * scale) },
        fittedTo: "test shapes",
        residualMedianPct: 2,
        residualMaxPct: 8,
        predictionSpreadPct: 3,
        shapes: [{ shape: "128×64 d128/128 ×8", counts: { task: 1, step: 8, rowStep: 1024, flop: 3.4e7, score: 65536 }, seconds: 0.024 * scale, spreadPct: 3 }]
      }
    ],
    dispatchSeconds: m(9e-5),
    roundTripSeconds: m(8e-5),
    dispatchPerTaskSeconds: m(2e-5),
    transferCopiedBytesPerSecond: m(1e9),
    kernels: { copy: m(6e9), exp: m(3e7), fma: m(1.4e10), fill: m(7e7) },
    referenceTaskSeconds: m(0.012),
    caches: [],
    lineBytes: 64,
    memory: [level(32768, 1, 1.5e11, 1.7e-9), level(2 ** 20, 2, 1.1e11, 6e-9), level(2 ** 25, 3, 9e10, 2.6e-8), level(undefined, 4, 2.7e10, 1.6e-7)],
    maxOtherCores: 0,
    seconds: 20
  }
}

function write(name: string, raw: unknown): string {
  const path = join(dir, name)
  writeFileSync(path, JSON.stringify(raw))
  return path
}

describe("host profile", () => {
  it("calibration decodes as a profile", () => {
    const profile = decodeProfile(hostProfileFile(fakeRun()), "test")

    expect(profile.architecture).toBe("host")
    expect(profile.host?.fingerprint).toBe(fingerprint(currentMachine()))
    expect(profile.compute.tensor.bf16?.value).toBeCloseTo(2 / 6e-10, -3)
    expect(profile.compute.sms.value).toBe(2)
  })

  it("figures are measured or marked", () => {
    const raw = JSON.stringify(hostProfileFile(fakeRun()))
    const confidences = [...raw.matchAll(/"confidence":"([A-Z])"/g)].map((match) => match[1])
    const unverified = [...raw.matchAll(/"source":"([a-z]+)","confidence":"U"/g)].map((match) => match[1])

    expect(confidences.length).toBeGreaterThan(30)
    // Only placeholders for GPU-only fields, and the clock where the OS reports none, are not measured.
    expect(unverified.every((source) => source === "convention" || source === "nominal")).toBe(true)
    expect(unverified.filter((source) => source === "convention").length).toBe(4)
    expect(confidences.filter((c) => c !== "M").length).toBe(unverified.length)
  })

  it("model reads the calibration", () => {
    const model = hostModelOf(decodeProfile(hostProfileFile(fakeRun()), "test"))!

    expect(model.dispatchSeconds).toBeCloseTo(9e-5, 15)
    expect(model.stepModels["attention-forward"]!.flop).toBeCloseTo(6e-10, 20)
    expect(model.workers).toBe(2)
  })

  it("same machine loads", () => {
    const path = write("same.json", hostProfileFile(fakeRun()))

    const loaded = loadHostProfile(path, { allowOtherMachine: false })

    expect(loaded.machineDifferences).toEqual([])
  })

  it("other machine is rejected", () => {
    const other = { ...currentMachine(), cpuModel: "Some Other CPU 9000", logicalCores: "64" }
    const path = write("other.json", hostProfileFile(fakeRun(other)))

    let error: unknown
    try {
      loadHostProfile(path, { allowOtherMachine: false })
    } catch (caught) {
      error = caught
    }

    expect(error).toBeInstanceOf(InputError)
    const message = (error as InputError).message
    expect(message).toContain("host.fingerprint")
    expect(message).toContain("Some Other CPU 9000")
    expect(message).toContain("attnsim calibrate")
    expect(message).toContain("--allow-other-machine")
  })

  it("override names the differences", () => {
    const other = { ...currentMachine(), nodeVersion: "v0.0.1" }
    const path = write("override.json", hostProfileFile(fakeRun(other)))

    const loaded = loadHostProfile(path, { allowOtherMachine: true })

    expect(loaded.machineDifferences).toEqual([`nodeVersion: v0.0.1 → ${process.version}`])
  })

  it("missing file says to calibrate", () => {
    expect(() => loadHostProfile(join(dir, "absent.json"), { allowOtherMachine: false })).toThrow(/attnsim calibrate/)
  })

  it("GPU profile is not a host", () => {
    const raw = JSON.parse(JSON.stringify(hostProfileFile(fakeRun())))
    raw.architecture = "hopper"
    delete raw.host

    expect(() => decodeProfile(raw, "test")).toThrow(/power/)
  })

  it("host without calibration is invalid", () => {
    const raw = JSON.parse(JSON.stringify(hostProfileFile(fakeRun())))
    delete raw.host.calibration

    expect(() => decodeProfile(raw, "test")).toThrow(/host\.calibration/)
  })

  it("shipped GPU profiles still load", () => {
    expect(loadProfile("h100-sxm").power?.value).toBe(700)
  })
})

describe("calibration comparison", () => {
  it("same run agrees with itself", () => {
    const profile = decodeProfile(hostProfileFile(fakeRun()), "test")

    const comparison = compareCalibrations(profile, profile)

    expect(comparison.figures.every((f) => f.agree)).toBe(true)
    expect(comparison.shapes).toEqual([{ model: "attention-forward", agree: 1, total: 1 }])
  })

  it("slower machine disagrees", () => {
    const before = decodeProfile(hostProfileFile(fakeRun()), "test")
    const after = decodeProfile(hostProfileFile(fakeRun(currentMachine(), 1.5)), "test")

    const comparison = compareCalibrations(before, after)
    const model = comparison.figures.find((f) => f.figure.startsWith("stepModels.attention-forward"))!

    expect(model.differencePct).toBeCloseTo(50, 6)
    expect(model.agree).toBe(false)
    expect(comparison.shapes[0]!.agree).toBe(0)
  })
})
