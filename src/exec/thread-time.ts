import { readFileSync } from "node:fs"

/**
 * Seconds the calling thread has spent runnable but waiting for a CPU, from
 * the Linux scheduler's statistics (/proc/thread-self/schedstat, second field:
 * run-queue delay in nanoseconds). The kernel adds to it each time the thread
 * is switched in, so a reading taken while the thread runs is exact. The first
 * field (CPU time) is only brought up to date at scheduler ticks, so it is not
 * used. On an idle machine the wait stays near zero. While other processes
 * take the CPUs, it is the share of a task's wall time they took. Undefined
 * where the file does not exist (other systems, kernels without schedstat).
 */
let readable = true

export function runQueueWaitSeconds(): number | undefined {
  if (!readable) return undefined
  try {
    const wait = Number(readFileSync("/proc/thread-self/schedstat", "utf8").trim().split(/\s+/)[1])
    if (!Number.isFinite(wait)) throw new Error("unexpected schedstat format")
    return wait / 1e9
  } catch {
    readable = false
    return undefined
  }
}

/** Wait seconds between two readings; undefined if either is. */
export function waitBetween(start: number | undefined, end: number | undefined): number | undefined {
  return start === undefined || end === undefined ? undefined : end - start
}
