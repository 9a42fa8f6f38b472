import { describe, expect, it } from 'vitest'
import { rankSeeders, rendezvousScore } from '../../src/seeder/ownership.ts'

const ids = ['12D3KooWAlpha', '12D3KooWBravo', '12D3KooWCharlie']
const versions = Array.from({ length: 400 }, (_, i) => ({ name: `m${i % 7}`, version: `v${i}` }))

describe('rankSeeders', () => {
  it('is the same ranking whatever order the ids are given in, duplicates dropped', () => {
    for (const v of versions.slice(0, 50)) {
      const r = rankSeeders(ids, v)
      expect(rankSeeders([...ids].reverse(), v)).toEqual(r)
      expect(rankSeeders([ids[1]!, ...ids, ids[0]!], v)).toEqual(r)
      expect([...r].sort()).toEqual([...ids].sort())
    }
  })

  it('orders by descending score', () => {
    const v = versions[3]!
    const scores = rankSeeders(ids, v).map(id => rendezvousScore(id, v))
    for (let i = 1; i < scores.length; i++) expect(scores[i - 1]! > scores[i]!).toBe(true)
  })

  it('spreads ownership over the seeders (each owns between 25 % and 42 % of 400 versions among three)', () => {
    const owned = new Map<string, number>()
    for (const v of versions) {
      const owner = rankSeeders(ids, v)[0]!
      owned.set(owner, (owned.get(owner) ?? 0) + 1)
    }
    for (const id of ids) {
      expect(owned.get(id)).toBeGreaterThan(100)
      expect(owned.get(id)).toBeLessThan(168)
    }
  })

  it('removing a seeder moves only the versions it owned, each to the seeder ranked next', () => {
    for (const v of versions) {
      const full = rankSeeders(ids, v)
      const without = rankSeeders(ids.filter(id => id !== ids[2]), v)
      expect(without).toEqual(full.filter(id => id !== ids[2]))
    }
  })

  it('depends on the version, not only on the ids', () => {
    const owners = new Set(versions.map(v => rankSeeders(ids, v)[0]))
    expect(owners.size).toBe(3)
  })
})
