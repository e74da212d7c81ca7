/** A group of equal CTAs: `count` of them, each taking `seconds`. */
export interface DurationClass {
  readonly count: number
  readonly seconds: number
}

/**
 * Finish time of the last slot when CTAs are handed to `slots` parallel slots
 * longest first, each going to the slot that frees up first (list scheduling in
 * LPT order). Slot loads sit in a binary min-heap. While every load is within
 * one CTA of the lightest, the next `slots` CTAs go one to each slot, so whole
 * rounds are added at once; otherwise CTAs are placed one at a time.
 */
export function longestFirstMakespan(classes: ReadonlyArray<DurationClass>, slots: number): number {
  const ordered = classes.filter((c) => c.count > 0 && c.seconds > 0).sort((a, b) => b.seconds - a.seconds)
  if (ordered.length === 0) return 0
  if (!(Number.isInteger(slots) && slots >= 1)) {
    throw new RangeError(`longestFirstMakespan needs a whole number of slots, at least 1; got ${slots}`)
  }

  // Loads are stored relative to `offset`, so a whole round is one addition.
  const heap = new Float64Array(slots)
  let offset = 0
  let max = 0
  for (const { count, seconds } of ordered) {
    let remaining = count
    while (remaining > 0) {
      const rounds = Math.floor(remaining / slots)
      if (rounds > 0 && max - (heap[0]! + offset) <= seconds) {
        offset += rounds * seconds
        max += rounds * seconds
        remaining -= rounds * slots
        continue
      }
      const raised = heap[0]! + seconds
      siftDown(heap, raised)
      max = Math.max(max, raised + offset)
      remaining--
    }
  }
  return max
}

/** Replace the heap's minimum with `value` and restore the heap order. */
function siftDown(heap: Float64Array, value: number): void {
  const size = heap.length
  let index = 0
  for (;;) {
    const left = 2 * index + 1
    if (left >= size) break
    const right = left + 1
    const child = right < size && heap[right]! < heap[left]! ? right : left
    if (heap[child]! >= value) break
    heap[index] = heap[child]!
    index = child
  }
  heap[index] = value
}
