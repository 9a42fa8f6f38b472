import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { chunksNobodyHolds, observeSeeder, shouldPull, type PeerSeederState, type TakeoverInput } from '../../src/seeder/takeover.ts'

const GRACE = 30_000
const T0 = 1_000_000

function input (self: string, peers: Record<string, PeerSeederState>, now: number, ranking = ['owner', 'second', 'third']): TakeoverInput {
  return { self, ranking, peers: new Map(Object.entries(peers)), total: 100, since: T0, now, graceMs: GRACE }
}

const bits = (length: number, set: number[]): Bitfield => {
  const b = new Bitfield(length)
  for (const i of set) b.set(i)
  return b
}

describe('observeSeeder', () => {
  it('moves the progress time only when the held count grows', () => {
    let s = observeSeeder(undefined, { have: 3, connected: true }, T0)
    expect(s).toEqual({ have: 3, connected: true, lastProgressAt: T0 })
    s = observeSeeder(s, { have: 3, connected: true }, T0 + 5000)
    expect(s.lastProgressAt).toBe(T0)
    s = observeSeeder(s, { have: 4, connected: true }, T0 + 6000)
    expect(s.lastProgressAt).toBe(T0 + 6000)
  })

  it('keeps the last count of a seeder that went away, and its progress time stops', () => {
    let s = observeSeeder(undefined, { have: 10, connected: true }, T0)
    s = observeSeeder(s, { have: undefined, connected: false }, T0 + 1000)
    expect(s).toEqual({ have: 10, connected: false, lastProgressAt: T0 })
  })
})

describe('shouldPull', () => {
  it('the owner pulls at once, whatever it knows of the others', () => {
    expect(shouldPull(input('owner', {}, T0))).toBe(true)
    expect(shouldPull(input('owner', { second: { have: 100, connected: true, lastProgressAt: T0 } }, T0))).toBe(true)
  })

  it('the next seeder waits while the owner progresses, and pulls once it made none for the grace period', () => {
    const owner = { have: 40, connected: true, lastProgressAt: T0 + 10_000 }
    expect(shouldPull(input('second', { owner }, T0 + 10_000 + GRACE - 1))).toBe(false)
    expect(shouldPull(input('second', { owner }, T0 + 10_000 + GRACE))).toBe(true)
  })

  it('an owner never seen (down, or not yet listing the version) counts from when watching began', () => {
    expect(shouldPull(input('second', {}, T0 + GRACE - 1))).toBe(false)
    expect(shouldPull(input('second', {}, T0 + GRACE))).toBe(true)
  })

  it('an owner killed mid-pull: its session closes and its progress stops, so the grace runs from its last chunk', () => {
    const killed = observeSeeder(observeSeeder(undefined, { have: 50, connected: true }, T0 + 20_000), { have: undefined, connected: false }, T0 + 20_100)
    expect(shouldPull(input('second', { owner: killed }, T0 + 20_000 + GRACE - 1))).toBe(false)
    expect(shouldPull(input('second', { owner: killed }, T0 + 20_000 + GRACE))).toBe(true)
  })

  it('an owner holding every chunk and connected is never taken over; a complete one that left is', () => {
    const complete = { have: 100, connected: true, lastProgressAt: T0 }
    expect(shouldPull(input('second', { owner: complete }, T0 + 10 * GRACE))).toBe(false)
    expect(shouldPull(input('second', { owner: { ...complete, connected: false } }, T0 + 10 * GRACE))).toBe(true)
  })

  it('the third waits for both seeders above it to be stale', () => {
    const stale = { have: 5, connected: false, lastProgressAt: T0 }
    const live = { have: 60, connected: true, lastProgressAt: T0 + 3 * GRACE }
    const now = T0 + 3 * GRACE + 1
    expect(shouldPull(input('third', { owner: stale, second: live }, now))).toBe(false)
    expect(shouldPull(input('third', { owner: live, second: stale }, now))).toBe(false)
    expect(shouldPull(input('third', { owner: stale, second: { ...live, lastProgressAt: T0 } }, now))).toBe(true)
  })

  it('throws for a seeder outside the ranking', () => {
    expect(() => shouldPull(input('stranger', {}, T0))).toThrow(RangeError)
  })
})

describe('chunksNobodyHolds', () => {
  it('is what this seeder lacks and no neighbour holds', () => {
    const have = bits(10, [0, 1, 2])
    expect(chunksNobodyHolds(have, [bits(10, [3, 4]), bits(10, [4, 9])])).toEqual([5, 6, 7, 8])
    expect(chunksNobodyHolds(have, [])).toEqual([3, 4, 5, 6, 7, 8, 9])
    expect(chunksNobodyHolds(bits(10, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), [])).toEqual([])
  })
})
