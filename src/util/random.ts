/**
 * Seeded randomness for tie-breaks in the piece picker and seeder policy. The simulator replays a run
 * from its seed, so nothing on a decision path may call Math.random.
 */

/** Returns a float in [0, 1). */
export type Rng = () => number

/**
 * SplitMix32: a Weyl sequence through the murmur3 finalizer. One 32-bit state word, equidistributed, and
 * plenty for spreading tie-breaks; not for anything security-related. The seed is taken modulo 2^32.
 */
export function createRng (seed: number): Rng {
  let state = seed >>> 0
  return () => {
    state = (state + 0x9e3779b9) | 0
    let z = state
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    z ^= z >>> 16
    return (z >>> 0) / 4294967296
  }
}

/** An integer in [0, n), for n ≥ 1. */
export function randomInt (rng: Rng, n: number): number {
  return Math.floor(rng() * n)
}

/**
 * Up to k items of `items` that satisfy `keep`, a uniform random sample in random order. O(k) expected
 * when kept items are plentiful (distinct random positions, rejecting repeats and items not kept), so a
 * seeder with 10,000 members draws a newcomer's hints without touching them all; otherwise O(n), a
 * partial Fisher–Yates shuffle of the kept items.
 */
export function randomSample<T> (items: readonly T[], k: number, rng: Rng, keep: (item: T) => boolean = () => true): T[] {
  const n = items.length
  if (k <= 0 || n === 0) return []
  if (4 * k < n) {
    const seen = new Set<number>()
    const out: T[] = []
    // A miss is a repeat or an item not kept; with few kept items give up and shuffle instead.
    for (let tries = 0; out.length < k && tries < 8 * k; tries++) {
      const i = randomInt(rng, n)
      if (seen.has(i)) continue
      seen.add(i)
      if (keep(items[i]!)) out.push(items[i]!)
    }
    if (out.length === k) return out
  }
  const pool = items.filter(keep)
  const m = Math.min(k, pool.length)
  for (let i = 0; i < m; i++) {
    const j = i + randomInt(rng, pool.length - i)
    const t = pool[i]!
    pool[i] = pool[j]!
    pool[j] = t
  }
  return pool.slice(0, m)
}
