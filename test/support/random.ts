/**
 * A seeded pseudo-random generator for tests (Marsaglia's xorshift32), so every
 * run draws the same cases and a failure can be replayed from its seed.
 */
export class SeededRandom {
  private state: number

  constructor(seed: number) {
    // xorshift32 has no zero state; any other 32-bit seed works.
    this.state = seed >>> 0 || 0x9e3779b9
  }

  /** Returns the next float in [0, 1). */
  next(): number {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x >>> 0
    return this.state / 4294967296
  }

  /** Returns an integer in [low, high], both ends included. */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1))
  }

  /** Returns one element of a non-empty array, each equally likely. */
  pick<T>(items: ReadonlyArray<T>): T {
    return items[this.int(0, items.length - 1)]!
  }
}
