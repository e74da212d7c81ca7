import { createHash } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { arch, availableParallelism, cpus, hostname, platform, totalmem } from "node:os"
import { join } from "node:path"
import { packageRoot } from "../paths.js"

/**
 * The facts that identify the machine a calibration describes. A host profile
 * is only valid where all of them are the same: another CPU, core count,
 * memory size, Node or gpu.js version changes the measured rates.
 */
export interface MachineIdentity {
  readonly cpuModel: string
  readonly logicalCores: string
  readonly totalMemory: string
  readonly platform: string
  readonly arch: string
  readonly hostname: string
  readonly machineId: string
  readonly nodeVersion: string
  readonly gpujsVersion: string
}

export function currentMachine(): MachineIdentity {
  return {
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    logicalCores: String(availableParallelism()),
    totalMemory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    platform: platform(),
    arch: arch(),
    hostname: hostname(),
    machineId: readFirstLine(["/etc/machine-id", "/var/lib/dbus/machine-id"]) ?? "unknown",
    nodeVersion: process.version,
    gpujsVersion: packageVersion("gpu.js")
  }
}

/** A short hash of the identity, stored in the profile and compared on load. */
export function fingerprint(identity: MachineIdentity): string {
  const canonical = Object.keys(identity)
    .sort()
    .map((key) => `${key}=${identity[key as keyof MachineIdentity]}`)
    .join("\n")
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16)
}

/** The identity fields whose values differ, as "field: recorded → current". */
export function identityDifferences(recorded: Readonly<Record<string, string>>, current: MachineIdentity): ReadonlyArray<string> {
  return (Object.keys(current) as Array<keyof MachineIdentity>)
    .filter((key) => recorded[key] !== undefined && recorded[key] !== current[key])
    .map((key) => `${key}: ${recorded[key]} → ${current[key]}`)
}

/** One CPU cache level as the kernel reports it. */
export interface CacheLevel {
  readonly level: number
  readonly bytes: number
  /** Logical CPUs sharing one instance of this cache. */
  readonly sharedBy: number
}

/**
 * Data and unified caches of CPU 0 from /sys (Linux), smallest level first;
 * empty where the kernel does not report them.
 */
export function cpuCaches(root = "/sys/devices/system/cpu/cpu0/cache"): ReadonlyArray<CacheLevel> {
  if (!existsSync(root)) return []
  const levels: CacheLevel[] = []
  for (const entry of readdirSync(root).filter((name) => name.startsWith("index"))) {
    const read = (file: string): string | undefined => readFirstLine([join(root, entry, file)])
    const type = read("type")
    const level = Number(read("level"))
    const bytes = parseCacheSize(read("size") ?? "")
    if (type === "Instruction" || !Number.isFinite(level) || bytes === undefined) continue
    levels.push({ level, bytes, sharedBy: countCpus(read("shared_cpu_list") ?? "0") })
  }
  return levels.sort((a, b) => a.level - b.level)
}

/** "32K", "1024K", "32M" as the kernel writes cache sizes (binary units). */
export function parseCacheSize(text: string): number | undefined {
  const match = text.trim().match(/^(\d+)([KMG]?)$/)
  if (!match) return undefined
  const factor = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[match[2] as "" | "K" | "M" | "G"]
  return Number(match[1]) * factor
}

/** Number of CPUs in a list such as "0-3,8,10-11". */
export function countCpus(list: string): number {
  return list
    .split(",")
    .filter((part) => part.trim() !== "")
    .reduce((sum, part) => {
      const [low, high] = part.split("-").map(Number)
      return sum + (high === undefined ? 1 : high - low! + 1)
    }, 0)
}

/** Bytes per cache line as the kernel reports it; 64 where unreported. */
export function cacheLineBytes(): number {
  return Number(readFirstLine(["/sys/devices/system/cpu/cpu0/cache/index0/coherency_line_size"])) || 64
}

function readFirstLine(paths: ReadonlyArray<string>): string | undefined {
  for (const path of paths) {
    try {
      const line = readFileSync(path, "utf8").split("\n", 1)[0]!.trim()
      if (line) return line
    } catch {
      // try the next path
    }
  }
  return undefined
}

function packageVersion(name: string): string {
  try {
    return String(JSON.parse(readFileSync(join(packageRoot(), "node_modules", name, "package.json"), "utf8")).version)
  } catch {
    return "unknown"
  }
}
