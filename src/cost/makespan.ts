/** A group of equal CTAs: `count` of them, each taking `seconds`. */
export interface DurationClass {
  readonly count: number
  readonly seconds: number
}

/**
 * Finish time of the last slot when CTAs are handed to `slots` parallel slots
 * longest first, each going to the slot that frees up first (list scheduling in
 * LPT order). Equal CTAs are handed out a full round at a time, so the cost is
 * proportional to the number of classes, not the number of CTAs.
 */
export function longestFirstMakespan(classes: ReadonlyArray<DurationClass>, slots: number): number {
  const ordered = classes.filter((c) => c.count > 0 && c.seconds > 0).sort((a, b) => b.seconds - a.seconds)
  // Slot loads kept as run-length groups sorted by load, lightest first.
  let groups: Array<{ load: number; slots: number }> = [{ load: 0, slots }]

  for (const { count, seconds } of ordered) {
    const rounds = Math.floor(count / slots)
    if (rounds > 0) groups = groups.map((g) => ({ load: g.load + rounds * seconds, slots: g.slots }))
    let remainder = count - rounds * slots
    if (remainder === 0) continue

    const raised: Array<{ load: number; slots: number }> = []
    while (remainder > 0) {
      const lightest = groups[0]!
      const taken = Math.min(remainder, lightest.slots)
      raised.push({ load: lightest.load + seconds, slots: taken })
      remainder -= taken
      if (taken === lightest.slots) groups.shift()
      else groups[0] = { load: lightest.load, slots: lightest.slots - taken }
    }
    groups = mergeGroups(groups, raised)
  }
  return groups.reduce((max, g) => Math.max(max, g.load), 0)
}

function mergeGroups(
  a: ReadonlyArray<{ load: number; slots: number }>,
  b: ReadonlyArray<{ load: number; slots: number }>
): Array<{ load: number; slots: number }> {
  const merged = [...a, ...b].sort((x, y) => x.load - y.load)
  const result: Array<{ load: number; slots: number }> = []
  for (const group of merged) {
    const last = result[result.length - 1]
    if (last && last.load === group.load) last.slots += group.slots
    else result.push({ ...group })
  }
  return result
}
