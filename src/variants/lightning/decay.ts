/**
 * Per-head decay rates λ_h of lightning attention, kept as ln λ_h (negative):
 * a distance t then decays by exp(t · ln λ_h), which for t ≥ 0 is at most 1
 * and underflows gracefully to 0 instead of overflowing.
 *
 * Geometric scheme. Head h of H (h = 0 … H − 1) gets the slope
 * m_h = 2^(−8(h + 1)/H) when H is a power of two: the ALiBi slopes (Press et al.,
 * "Train Short, Test Long", arXiv 2108.12409, §3). Other head counts take the
 * slopes of the largest power of two P below H, then every other slope of 2P, as
 * ALiBi does. Layer l of a stack of L layers scales the slope by
 * 1 − l/(L − 1) + 1e−5, so the first layer decays fastest and the last almost
 * not at all: λ_h = exp(−m_h · (1 − l/(L − 1) + 1e−5)). This is the decay rule of
 * the TransNormerLLM line (arXiv 2307.14995) that MiniMax-Text-01 uses.
 * NOTE: the depth factor and the 1e−5 floor are written from MiniMax-Text-01's
 * released model code as recalled; they were not re-checked against it here.
 */

/** Slopes 2^(−8(i + 1)/n) for a power of two n. */
function powerOfTwoSlopes(n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.pow(2, (-8 * (i + 1)) / n))
}

/** ALiBi slopes for any head count. */
export function alibiSlopes(heads: number): number[] {
  const power = Math.pow(2, Math.floor(Math.log2(heads)))
  if (power === heads) return powerOfTwoSlopes(heads)
  const extra = powerOfTwoSlopes(2 * power).filter((_, index) => index % 2 === 0)
  return [...powerOfTwoSlopes(power), ...extra.slice(0, heads - power)]
}

/** The depth factor 1 − layer/(layers − 1) + 1e−5; a single-layer stack gets 1 + 1e−5. */
export function depthFactor(layer: number, layers: number): number {
  return (layers > 1 ? 1 - layer / (layers - 1) : 1) + 1e-5
}

/** ln λ_h of every head under the geometric scheme. */
export function geometricLogDecay(heads: number, layer: number, layers: number): Float64Array {
  const factor = depthFactor(layer, layers)
  return Float64Array.from(alibiSlopes(heads), (slope) => -slope * factor)
}

/** ln λ_h from explicit rates: one rate for every head, or one per head. */
export function explicitLogDecay(rates: ReadonlyArray<number>, heads: number): Float64Array {
  return Float64Array.from({ length: heads }, (_, head) => Math.log(rates.length === 1 ? rates[0]! : rates[head]!))
}

/** The head whose state forgets fastest (smallest λ); the first such head on ties. */
export function fastestDecayHead(logDecay: ArrayLike<number>): number {
  let best = 0
  for (let head = 1; head < logDecay.length; head++) if (logDecay[head]! < logDecay[best]!) best = head
  return best
}

/**
 * Tokens back after which a head's weight λ^t falls below 2^−60, the point
 * past which older tokens no longer change a float64 sum; Infinity when λ = 1.
 */
export function negligibleDistance(logDecay: number): number {
  return logDecay < 0 ? Math.ceil((-60 * Math.LN2) / logDecay) : Number.POSITIVE_INFINITY
}
