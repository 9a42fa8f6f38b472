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
