import { describe, expect, it } from 'vitest'
import { createRng, randomInt } from '../../src/util/random.ts'

describe('createRng', () => {
  it('repeats its sequence for a seed and differs across seeds', () => {
    const a = createRng(42)
    const b = createRng(42)
    const c = createRng(43)
    const xs = Array.from({ length: 100 }, () => a())
    expect(Array.from({ length: 100 }, () => b())).toEqual(xs)
    expect(Array.from({ length: 100 }, () => c())).not.toEqual(xs)
  })

  it('stays in [0, 1) and spreads evenly', () => {
    const rng = createRng(7)
    const buckets = new Array<number>(10).fill(0)
    for (let i = 0; i < 100_000; i++) {
      const x = rng()
      expect(x >= 0 && x < 1).toBe(true)
      buckets[Math.floor(x * 10)]!++
    }
    for (const n of buckets) expect(Math.abs(n - 10_000)).toBeLessThan(500)
  })

  it('randomInt covers [0, n)', () => {
    const rng = createRng(1)
    const seen = new Set<number>()
    for (let i = 0; i < 1000; i++) seen.add(randomInt(rng, 5))
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4])
  })
})
