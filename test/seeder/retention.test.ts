import { describe, expect, it } from 'vitest'
import { compareVersions, planEviction, wantedVersions, type CachedVersion } from '../../src/seeder/retention.ts'

const v = (name: string, version: string, extra: Partial<CachedVersion> = {}): CachedVersion =>
  ({ name, version, bytes: 100, lastUsedAt: 0, pinned: false, busy: false, ...extra })
const ids = (vs: readonly CachedVersion[]): string[] => vs.map(x => `${x.name}@${x.version}`)

describe('wantedVersions', () => {
  const ready = [{ name: 'a', version: 'v9' }, { name: 'a', version: 'v10' }, { name: 'a', version: 'v8' }, { name: 'b', version: '2026-01-01' }]

  it('keeps everything without a limit, and the newest K per model (natural order) with one', () => {
    expect(wantedVersions(ready, undefined, () => false)).toEqual(ready)
    expect(wantedVersions(ready, 2, () => false)).toEqual([{ name: 'a', version: 'v9' }, { name: 'a', version: 'v10' }, { name: 'b', version: '2026-01-01' }])
  })

  it('always wants pinned versions, however old', () => {
    expect(wantedVersions(ready, 1, x => x.version === 'v8').map(x => x.version)).toEqual(['v10', 'v8', '2026-01-01'])
  })
})

describe('planEviction', () => {
  it('evicts nothing within limits', () => {
    expect(planEviction([v('a', 'v1'), v('a', 'v2')], { capacity: 200, keepVersions: 2 })).toEqual({ evict: [], fits: true, used: 200 })
  })

  it('drops versions beyond the newest K of each model, unless pinned or busy', () => {
    const cached = [v('a', 'v1'), v('a', 'v2', { pinned: true }), v('a', 'v3', { busy: true }), v('a', 'v4'), v('a', 'v5'), v('b', 'v1')]
    const plan = planEviction(cached, { keepVersions: 2 })
    expect(ids(plan.evict)).toEqual(['a@v1'])
    expect(plan.used).toBe(500)
  })

  it('frees room by least recent use, sparing each model\'s newest version until last', () => {
    const cached = [
      v('a', 'v1', { lastUsedAt: 30 }), v('a', 'v2', { lastUsedAt: 10 }),
      v('b', 'v1', { lastUsedAt: 20 }), v('b', 'v2', { lastUsedAt: 5 }),
      v('c', 'v1', { bytes: 150, lastUsedAt: 1000, busy: true }) // the incoming version
    ]
    expect(ids(planEviction(cached, { capacity: 450 }).evict)).toEqual(['b@v1'])
    expect(ids(planEviction(cached, { capacity: 350 }).evict)).toEqual(['b@v1', 'a@v1'])
    // Only newest versions left to take: least recently used first.
    expect(ids(planEviction(cached, { capacity: 250 }).evict)).toEqual(['b@v1', 'a@v1', 'b@v2'])
    expect(planEviction(cached, { capacity: 250 })).toMatchObject({ fits: true, used: 250 })
  })

  it('never takes pinned or busy versions, and says when the rest cannot fit', () => {
    const cached = [v('a', 'v1', { pinned: true, bytes: 300 }), v('a', 'v2', { busy: true, bytes: 300 }), v('b', 'v1', { bytes: 100 })]
    const plan = planEviction(cached, { capacity: 500 })
    expect(ids(plan.evict)).toEqual(['b@v1'])
    expect(plan).toMatchObject({ fits: false, used: 600 })
  })

  it('counts the K rule\'s evictions before looking for LRU victims', () => {
    const cached = [v('a', 'v1', { lastUsedAt: 99 }), v('a', 'v2', { lastUsedAt: 1 }), v('b', 'v1', { lastUsedAt: 0 })]
    const plan = planEviction(cached, { capacity: 200, keepVersions: 1 })
    expect(ids(plan.evict)).toEqual(['a@v1'])
    expect(plan.fits).toBe(true)
  })
})

describe('version order', () => {
  it('sorts naturally', () => {
    expect(['v10', 'v9', 'v1'].sort(compareVersions)).toEqual(['v1', 'v9', 'v10'])
  })
})
