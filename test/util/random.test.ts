import { describe, expect, it } from 'vitest'
import { createRng, randomInt, randomSample } from '../../src/util/random.ts'

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

describe('randomSample', () => {
  it('draws k distinct kept items, each about equally often, on the sparse and the shuffle path', () => {
    for (const n of [10, 1000]) {
      const items = Array.from({ length: n }, (_, i) => i)
      const rng = createRng(3)
      const counts = new Array<number>(n).fill(0)
      const runs = 20_000
      for (let r = 0; r < runs; r++) {
        const s = randomSample(items, 4, rng, i => i % 2 === 0)
        expect(s).toHaveLength(4)
        expect(new Set(s).size).toBe(4)
        for (const i of s) counts[i]!++
      }
      const expected = runs * 4 / (n / 2)
      for (let i = 0; i < n; i++) {
        if (i % 2 === 1) expect(counts[i]).toBe(0)
        else expect(Math.abs(counts[i]! - expected)).toBeLessThan(expected * 0.25)
      }
    }
  })

  it('returns every kept item when there are fewer than k', () => {
    expect(randomSample([1, 2, 3, 4, 5, 6, 7, 8, 9], 3, createRng(1), i => i === 4 || i === 8).sort()).toEqual([4, 8])
    expect(randomSample([], 3, createRng(1))).toEqual([])
  })
})
