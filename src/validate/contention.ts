import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"

/**
 * CPU time taken by other processes while this one was measuring, from the
 * kernel's counters (/proc/stat) less this process's own CPU time. Timings on a
 * shared machine are only comparable when this is near zero, so every timed
 * run reports it. Linux only; elsewhere `otherCores` is undefined.
 */
export interface ContentionSample {
  readonly wallSeconds: number
  /** Cores this process kept busy on average (all its threads). */
  readonly ownCores: number
  /** Cores other processes kept busy on average; undefined where /proc/stat is unreadable. */
  readonly otherCores: number | undefined
}

interface Counters {
  readonly busyTicks: number
  readonly totalTicks: number
  readonly ownMicros: number
  readonly at: number
}

/** Cores used by others above which a timed run counts as contended. */
export const contendedCores = 0.25

export class ContentionMeter {
  private readonly start: Counters | undefined

  constructor() {
    this.start = readCounters()
  }

  stop(): ContentionSample {
    const end = readCounters()
    const start = this.start
    const wallSeconds = start && end ? (end.at - start.at) / 1000 : 0
    if (!start || !end || wallSeconds <= 0) return { wallSeconds, ownCores: 0, otherCores: undefined }

    const ownCores = (end.ownMicros - start.ownMicros) / 1e6 / wallSeconds
    const totalTicks = end.totalTicks - start.totalTicks
    if (totalTicks <= 0) return { wallSeconds, ownCores, otherCores: undefined }
    const busyCores = ((end.busyTicks - start.busyTicks) / totalTicks) * availableParallelism()
    return { wallSeconds, ownCores, otherCores: Math.max(0, busyCores - ownCores) }
  }
}

function readCounters(): Counters | undefined {
  const usage = process.cpuUsage()
  const at = performance.now()
  let text: string
  try {
    text = readFileSync("/proc/stat", "utf8")
  } catch {
    return { busyTicks: 0, totalTicks: 0, ownMicros: usage.user + usage.system, at }
  }
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest time is inside user)
  const fields = text.split("\n", 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  const busyTicks = user + nice + system + irq + softirq + steal
  return { busyTicks, totalTicks: busyTicks + idle + iowait, ownMicros: usage.user + usage.system, at }
}

/** Attempts of one measurement before keeping the least contended. */
const contendedAttempts = 3
/** Pause before measuring again, so a short burst of other work can pass. */
const retryPause = "1 second"

/**
 * Run a measurement again, after a one-second pause, when other processes kept
 * more than `contendedCores` busy during it (three attempts), and keep the
 * least contended one.
 */
export function retryWhileContended<A extends { readonly otherCores: number | undefined }, E, R>(run: () => Effect.Effect<A, E, R>, what: string): Effect.Effect<A, E, R> {
  return Effect.gen(function* () {
    let best: A | undefined
    for (let attempt = 1; attempt <= contendedAttempts; attempt++) {
      const result = yield* run()
      if (!best || (result.otherCores ?? 0) < (best.otherCores ?? 0)) best = result
      if ((result.otherCores ?? 0) <= contendedCores || attempt === contendedAttempts) break
      yield* Effect.logWarning(`other processes used ${(result.otherCores ?? 0).toFixed(2)} cores during ${what}; measuring again`).pipe(
        Effect.annotateLogs({ attempt })
      )
      yield* Effect.sleep(retryPause)
    }
    return best!
  })
}
