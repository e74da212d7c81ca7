/** A group of equal CTAs: `count` of them, each taking `seconds`. */
export interface DurationClass {
  readonly count: number
  readonly seconds: number
}

/** Slots that carry the same load, kept as one run-length group. */
interface LoadGroup {
  readonly load: number
  readonly slots: number
}

/**
 * Finish time of the last slot when CTAs are handed to `slots` parallel slots
 * longest first, each going to the slot that frees up first (list scheduling in
 * LPT order). Equal CTAs are handed out in whole rounds where that gives the
 * same loads as handing them out one by one, so the cost grows with the number
 * of classes and distinct slot loads, not with the number of CTAs.
 */
export function longestFirstMakespan(classes: ReadonlyArray<DurationClass>, slots: number): number {
  const ordered = classes.filter((c) => c.count > 0 && c.seconds > 0).sort((a, b) => b.seconds - a.seconds)
  if (ordered.length > 0 && !(Number.isInteger(slots) && slots >= 1)) {
    throw new RangeError(`longestFirstMakespan needs a whole number of slots, at least 1; got ${slots}`)
  }
  // Slot loads kept as run-length groups sorted by load, lightest first.
  let groups: Array<LoadGroup> = [{ load: 0, slots }]
  for (const { count, seconds } of ordered) groups = handOut(groups, count, seconds)
  return groups.reduce((max, g) => Math.max(max, g.load), 0)
}

/** Hand `count` CTAs of `seconds` each to the least-loaded slots, one CTA at a time in effect. */
function handOut(start: ReadonlyArray<LoadGroup>, count: number, seconds: number): Array<LoadGroup> {
  let groups = [...start]
  const slots = groups.reduce((sum, g) => sum + g.slots, 0)
  let remainder = count

  while (remainder > 0) {
    const lightest = groups[0]!
    const heaviest = groups[groups.length - 1]!

    // With every load within one CTA of the lightest, each of the next `slots`
    // CTAs goes to a different slot, so whole rounds raise every slot alike.
    const rounds = Math.floor(remainder / slots)
    if (heaviest.load - lightest.load <= seconds && rounds > 0) {
      groups = groups.map((g) => ({ load: g.load + rounds * seconds, slots: g.slots }))
      remainder -= rounds * slots
      continue
    }

    if (remainder < lightest.slots) {
      const raised = { load: lightest.load + seconds, slots: remainder }
      groups = mergeGroups([{ load: lightest.load, slots: lightest.slots - remainder }, ...groups.slice(1)], [raised])
      remainder = 0
      continue
    }

    // The lightest slots take the next CTAs one each, round after round, while
    // they stay no heavier than the next group; at least one round.
    const next = groups[1]?.load ?? Number.POSITIVE_INFINITY
    const lightestRounds = Math.max(1, Math.min(Math.floor((next - lightest.load) / seconds), Math.floor(remainder / lightest.slots)))
    groups = mergeGroups(groups.slice(1), [{ load: lightest.load + lightestRounds * seconds, slots: lightest.slots }])
    remainder -= lightestRounds * lightest.slots
  }
  return groups
}

function mergeGroups(a: ReadonlyArray<LoadGroup>, b: ReadonlyArray<LoadGroup>): Array<LoadGroup> {
  const merged = [...a, ...b].filter((g) => g.slots > 0).sort((x, y) => x.load - y.load)
  const result: Array<{ load: number; slots: number }> = []
  for (const group of merged) {
    const last = result[result.length - 1]
    if (last && last.load === group.load) last.slots += group.slots
    else result.push({ ...group })
  }
  return result
}
