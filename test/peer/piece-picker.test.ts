import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { PiecePicker, type PiecePickerInit } from '../../src/peer/piece-picker.ts'
import { createRng, randomInt } from '../../src/util/random.ts'

function bits (n: number, indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of indexes) b.set(i)
  return b
}

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, k) => from + k)
}

/** A picker over n chunks, all available, none held. */
function picker (n: number, opts: Partial<PiecePickerInit> = {}): PiecePicker {
  const p = new PiecePicker({ numChunks: n, have: new Bitfield(n), rng: createRng(1), endgameThreshold: 0, ...opts })
  for (let i = 0; i < n; i++) p.setAvailable(i)
  return p
}

describe('PiecePicker', () => {
  it('picks rarest first', () => {
    const p = picker(6)
    p.addPeer('a', bits(6, range(0, 6)))
    p.addPeer('b', bits(6, [0, 1, 2]))
    p.addPeer('c', bits(6, [0, 1]))
    const picks = p.pick('a', 6, 0)
    expect(new Set(picks.slice(0, 3))).toEqual(new Set([3, 4, 5]))
    expect(picks[3]).toBe(2)
    expect(new Set(picks.slice(4))).toEqual(new Set([0, 1]))
  })

  it('picks chunks with a priority first, ahead of rarer ones, and the rarest first again once it is cleared', () => {
    const p = picker(6)
    p.addPeer('a', bits(6, range(0, 6)))
    p.addPeer('b', bits(6, [0, 1, 2]))
    p.addPeer('c', bits(6, [0, 1]))
    // 0 and 1 are the most common (3 copies); a reader waits for them.
    p.setPriority(1, 1)
    p.setPriority(0, 2)
    expect(p.pick('a', 3, 0)).toEqual([0, 1, expect.any(Number)])
    const q = picker(6)
    q.addPeer('a', bits(6, range(0, 6)))
    q.addPeer('b', bits(6, [0, 1, 2]))
    q.addPeer('c', bits(6, [0, 1]))
    q.setPriority(0, 1)
    q.setPriority(0, 0)
    expect(new Set(q.pick('a', 3, 0))).toEqual(new Set([3, 4, 5]))
  })

  it('hedges a chunk a reader waits on: in flight hedgeAfterMs from one peer, it may be asked of another too', () => {
    const p = picker(8, { hedgeAfterMs: 2000 })
    p.addPeer('seeder', bits(8, range(0, 8)), { seeder: true })
    p.addPeer('a', bits(8, [0, 1]))
    p.addPeer('b', bits(8, [0, 1]))
    p.addPeer('c', bits(8, [0, 1]))
    // The reader waits on five chunks: not yet its tail.
    for (const i of [0, 2, 3, 4, 5]) p.setPriority(i, 1)
    expect(p.pick('a', 1, 0)).toEqual([0])
    expect(p.pick('a', 1, 0)).toEqual([1])
    // Not yet, and never a chunk without priority (1 is in flight as long), outside the tail.
    expect(p.pick('b', 2, 1999)).toEqual([])
    expect(p.pick('b', 2, 2000)).toEqual([0])
    // At most maxDuplicatesInEndgame (1) extra request, and never the seeder while peers hold the chunk.
    expect(p.pick('c', 2, 5000)).toEqual([])
    expect(p.pick('seeder', 2, 5000)).not.toContain(0)
    // The first copy to arrive wins; the other request is returned to cancel.
    p.requestDone('b', 0, 100, 2500)
    expect(p.markHave(0)).toEqual([{ peer: 'a', index: 0 }])
  })

  it('hedges a reader\'s last chunks more widely: one more peer each hedgeAfterMs, up to three extra requests', () => {
    const p = picker(2, { hedgeAfterMs: 2000 })
    for (const peer of ['a', 'b', 'c', 'd', 'e']) p.addPeer(peer, bits(2, [0]))
    p.setPriority(0, 1)
    expect(p.pick('a', 1, 0)).toEqual([0])
    expect(p.pick('b', 1, 2000)).toEqual([0])
    // The next hedge counts from the latest request, not the first.
    expect(p.pick('c', 1, 3999)).toEqual([])
    expect(p.pick('c', 1, 4000)).toEqual([0])
    expect(p.pick('d', 1, 6000)).toEqual([0])
    // At most three extra requests.
    expect(p.pick('e', 1, 9000)).toEqual([])
    expect(p.markHave(0)).toEqual(['a', 'b', 'c', 'd'].map(peer => ({ peer, index: 0 })))
  })

  it('takes at most maxUnprioritized chunks without priority, after those with, in the walk and in a scan', () => {
    for (const scan of [false, true]) {
      const p = picker(8, { scan })
      p.addPeer('a', bits(8, range(0, 8)))
      p.setPriority(5, 1)
      p.setPriority(6, 1)
      const picks = p.pick('a', 6, 0, { maxUnprioritized: 1 })
      expect(picks.slice(0, 2).sort()).toEqual([5, 6])
      expect(picks.length).toBe(3)
      expect(p.pick('a', 6, 0, { maxUnprioritized: 0 })).toEqual([])
    }
  })

  it('still asks seeders only for chunks no other peer can give, whatever the priority', () => {
    const p = picker(4)
    p.addPeer('seeder', bits(4, range(0, 4)), { seeder: true })
    p.addPeer('b', bits(4, [0]))
    p.setPriority(0, 5)
    expect(p.pick('seeder', 4, 0)).not.toContain(0)
    expect(p.pick('b', 4, 0)).toEqual([0])
  })

  it('breaks ties the same way for a seed and differently across seeds', () => {
    const first = (seed: number): number[] => {
      const p = picker(100, { rng: createRng(seed) })
      p.addPeer('a', bits(100, range(0, 100)))
      return p.pick('a', 5, 0)
    }
    expect(first(7)).toEqual(first(7))
    const distinct = new Set(range(0, 20).map(seed => first(seed)[0]))
    expect(distinct.size).toBeGreaterThan(12)
  })

  it('never picks a chunk that is unavailable, held, in flight, or that the peer lacks', () => {
    const n = 10
    const p = new PiecePicker({ numChunks: n, have: bits(n, [0, 1]), rng: createRng(3), endgameThreshold: 0 })
    for (const i of range(0, 8)) p.setAvailable(i)
    p.addPeer('a', bits(n, range(0, 10)))
    p.addPeer('b', bits(n, range(0, 9)))
    const a = p.pick('a', 3, 0)
    const b = p.pick('b', 10, 0)
    expect(a).toHaveLength(3)
    expect(new Set([...a, ...b])).toEqual(new Set(range(2, 8)))
    expect(p.pick('a', 10, 0)).toEqual([])
    p.setAvailable(9)
    expect(p.pick('b', 10, 0)).toEqual([])
    expect(p.pick('a', 10, 0)).toEqual([9])
  })

  it('keeps a delivered chunk out of the pool until verified, and returns it if verification fails', () => {
    const p = picker(1)
    p.addPeer('a', bits(1, [0]))
    p.addPeer('b', bits(1, [0]))
    expect(p.pick('a', 1, 0)).toEqual([0])
    p.requestDone('a', 0, 100, 10)
    expect(p.pick('b', 1, 20)).toEqual([])
    p.requestFailed('a', 0, 30)
    expect(p.peerStats('a')).toMatchObject({ failures: 1, inflight: 0 })
    // a sent bad data: not asked again for it within retryAfterMs, b is.
    expect(p.pick('a', 1, 40)).toEqual([])
    expect(p.pick('b', 1, 40)).toEqual([0])
    expect(p.markHave(0)).toEqual([{ peer: 'b', index: 0 }])
    expect(p.remaining).toBe(0)
  })

  it('wants a chunk again once it is lost (dropped from the store after it was held)', () => {
    const p = picker(2)
    p.addPeer('a', bits(2, [0, 1]))
    for (const i of p.pick('a', 2, 0)) {
      p.requestDone('a', i, 100, 10)
      p.markHave(i)
    }
    expect(p.remaining).toBe(0)
    expect(p.pick('a', 2, 20)).toEqual([])
    p.lost(1)
    expect(p.remaining).toBe(1)
    expect(p.pick('a', 2, 30)).toEqual([1])
  })

  it('does not ask a peer again for a chunk it failed or refused until retryAfterMs, and only failures count against it', () => {
    const p = picker(1, { retryAfterMs: 1000 })
    p.addPeer('a', bits(1, [0]))
    p.pick('a', 1, 0)
    p.requestFailed('a', 0, 0, { refused: true })
    expect(p.peerStats('a')).toEqual({ rate: undefined, failures: 0, inflight: 0 })
    expect(p.pick('a', 1, 999)).toEqual([])
    expect(p.pick('a', 1, 1000)).toEqual([0])
    p.requestFailed('a', 0, 1000)
    expect(p.peerStats('a')).toEqual({ rate: 0, failures: 1, inflight: 0 })
  })

  it('returns a removed peer\'s in-flight chunks to the pool', () => {
    const p = picker(4)
    p.addPeer('a', bits(4, range(0, 4)))
    p.addPeer('b', bits(4, range(0, 4)))
    const a = p.pick('a', 2, 0)
    const b = p.pick('b', 4, 0)
    expect(b).toHaveLength(2)
    expect(p.removePeer('a').sort()).toEqual([...a].sort())
    expect(new Set(p.pick('b', 4, 0))).toEqual(new Set(a))
    expect(p.removePeer('a')).toEqual([])
  })

  it('asks seeders only for chunks no other peer can give', () => {
    const p = picker(10)
    p.addPeer('seed', bits(10, range(0, 10)), { seeder: true })
    p.addPeer('a', bits(10, range(0, 5)))
    expect(new Set(p.pick('seed', 10, 0))).toEqual(new Set(range(5, 10)))
    // The seeder's copy does not make a chunk less rare: a peer's copies count alone.
    expect(new Set(p.pick('a', 10, 0))).toEqual(new Set(range(0, 5)))
    // Once the only other holder fails chunk 0, the seeder may serve it.
    p.requestFailed('a', 0, 0)
    expect(p.pick('seed', 10, 0)).toEqual([0])
    // A peer that later announces a chunk takes it off the seeder's list.
    p.peerHas('b', 3)
    p.addPeer('b', bits(10, []))
    p.peerHas('b', 1)
    p.requestFailed('a', 1, 0)
    expect(p.pick('seed', 10, 0)).toEqual([])
  })

  it('duplicates in-flight chunks in endgame, oldest first, and lists the duplicates to cancel', () => {
    const p = picker(4, { endgameThreshold: 4, maxDuplicatesInEndgame: 1 })
    p.addPeer('a', bits(4, range(0, 4)))
    p.addPeer('b', bits(4, []))
    p.addPeer('c', bits(4, range(0, 4)))
    const early = p.pick('a', 2, 0).sort()
    for (const i of early) p.peerHas('b', i)
    // b holds only chunks already in flight, while two others are still unrequested: no duplicates yet.
    expect(p.pick('b', 4, 50)).toEqual([])
    const late = p.pick('a', 2, 100).sort()
    expect([...early, ...late].sort()).toEqual([0, 1, 2, 3])
    // Everything is in flight now: c duplicates, the longest-waiting first.
    expect(p.pick('c', 2, 200).sort()).toEqual(early)
    // One duplicate per chunk at most: b, which holds only early chunks, gets nothing more.
    expect(p.pick('b', 4, 200)).toEqual([])
    p.requestDone('c', early[0]!, 1000, 300)
    expect(p.markHave(early[0]!)).toEqual([{ peer: 'a', index: early[0] }])
    expect(p.peerStats('a')?.inflight).toBe(3)
    // The chunk is no longer in flight anywhere, so a late duplicate cannot be cancelled twice.
    expect(p.markHave(early[0]!)).toEqual([])
  })

  it('prefers to duplicate chunks on the slower peer when they have waited equally', () => {
    const p = picker(6, { endgameThreshold: 6, maxDuplicatesInEndgame: 1 })
    p.addPeer('fast', bits(6, range(0, 6)))
    p.addPeer('slower', bits(6, range(0, 6)))
    p.addPeer('c', bits(6, range(0, 6)))
    // Rates 1000 and 500 B/ms: slower, but not slow enough to be kept off the tail.
    for (const [peer, ms] of [['fast', 1], ['slower', 2]] as const) {
      const [i] = p.pick(peer, 1, 0)
      p.requestDone(peer, i!, 1000, ms)
      p.markHave(i!)
    }
    const onFast = p.pick('fast', 2, 200)
    const onSlower = p.pick('slower', 2, 200)
    expect(onFast).toHaveLength(2)
    expect(new Set(p.pick('c', 2, 300))).toEqual(new Set(onSlower))
  })

  it('keeps the last chunks off a much slower peer when a fast one holds them', () => {
    const n = 8
    const p = new PiecePicker({ numChunks: n, have: new Bitfield(n), rng: createRng(1), endgameThreshold: 3, slowRatio: 0.25 })
    for (const i of range(0, 7)) p.setAvailable(i)
    p.addPeer('fast', bits(n, range(0, 7)))
    p.addPeer('slow', bits(n, range(0, 8)))
    let t = 0
    // Measure both while far from the tail: fast moves 1000 B/ms, slow 10 B/ms.
    for (const [peer, ms] of [['fast', 1], ['slow', 100], ['fast', 1], ['slow', 100], ['fast', 1]] as const) {
      const [i] = p.pick(peer, 1, t)
      t += ms
      p.requestDone(peer, i!, 1000, t)
      p.markHave(i!)
    }
    expect(p.remaining).toBe(3)
    expect(p.pick('slow', 3, t)).toEqual([])
    // A chunk only the slow peer holds still goes to it.
    p.setAvailable(7)
    expect(p.pick('slow', 3, t)).toEqual([7])
    expect(p.pick('fast', 3, t)).toHaveLength(2)
  })

  it('sends a chunk held only by slow peers to a seeder in the tail', () => {
    const n = 4
    const p = picker(n, { endgameThreshold: 4 })
    p.addPeer('seed', bits(n, range(0, 4)), { seeder: true })
    p.addPeer('slow', bits(n, [0, 1]))
    expect(p.pick('seed', 4, 0).sort()).toEqual([2, 3])
    const [i] = p.pick('slow', 1, 0)
    p.requestDone('slow', i!, 10, 1000)
    p.markHave(i!)
    p.requestDone('seed', 2, 100_000, 1000)
    p.markHave(2)
    const other = i === 0 ? 1 : 0
    expect(p.pick('slow', 1, 1000)).toEqual([])
    expect(p.pick('seed', 4, 1000)).toEqual([other])
  })

  it('reports requests without progress as timed out, measuring from the peer\'s last delivery', () => {
    const p = picker(4, { endgameThreshold: 0 })
    p.addPeer('a', bits(4, range(0, 4)))
    p.addPeer('b', bits(4, range(0, 4)))
    const a = p.pick('a', 2, 0)
    const [b] = p.pick('b', 1, 500)
    p.requestDone('a', a[0]!, 100, 900)
    expect(p.timedOut(1400, () => 1000)).toEqual([])
    expect(p.timedOut(1600, () => 1000)).toEqual([{ peer: 'b', index: b }])
    const stuck = p.timedOut(2000, () => 1000).map(r => `${r.peer}:${r.index}`)
    expect(new Set(stuck)).toEqual(new Set([`a:${a[1]}`, `b:${b}`]))
  })

  it('rejects bitfields of the wrong length', () => {
    const p = picker(4)
    expect(() => p.addPeer('a', new Bitfield(5))).toThrow(/5 bits, expected 4/)
    expect(() => new PiecePicker({ numChunks: 4, have: new Bitfield(3), rng: createRng(1) })).toThrow(/3 bits/)
  })

  it('drives random seeded swarms to completion without breaking its invariants', () => {
    for (let seed = 1; seed <= 40; seed++) runSwarm(seed)
  })
})

/**
 * One downloader against a random swarm: peers with random bitfields that grow by HAVEs, an optional
 * seeder, chunks published over time, random delays, failures and timeouts. Checks every pick and cancel
 * list against a model of the requests in flight.
 */
function runSwarm (seed: number): void {
  const rng = createRng(seed * 7919)
  const n = 20 + randomInt(rng, 150)
  const threshold = randomInt(rng, 12)
  const maxDup = 1 + randomInt(rng, 2)
  const have = bits(n, range(0, n).filter(() => rng() < 0.1))
  const p = new PiecePicker({ numChunks: n, have, rng: createRng(seed), endgameThreshold: threshold, maxDuplicatesInEndgame: maxDup, retryAfterMs: 500 })
  const peers = range(0, 1 + randomInt(rng, 8)).map(k => `p${k}`)
  const peerBits = new Map<string, Bitfield>()
  for (const peer of peers) {
    const b = bits(n, range(0, n).filter(() => rng() < 0.3))
    peerBits.set(peer, b)
    p.addPeer(peer, b)
  }
  // The seeder holds what is published; without one, some peer must end up holding every chunk.
  const hasSeeder = rng() < 0.7
  if (hasSeeder) p.addPeer('seed', new Bitfield(n), { seeder: true })
  const speed = new Map([...peers, 'seed'].map(peer => [peer, 1 + randomInt(rng, 5)]))
  const available = new Bitfield(n)
  const inflight = new Map<number, Map<string, number>>()
  const held = have.clone()

  for (let t = 0, step = 0; !held.complete; t += 100, step++) {
    expect(step, `seed ${seed} stalled with ${n - held.count} chunks left`).toBeLessThan(5000)
    // Publish a few chunks per step, as a seeder that is still pulling would.
    for (let k = 0; k < 5 && available.count < n; k++) {
      const i = available.count
      available.set(i)
      p.setAvailable(i)
      if (hasSeeder) p.peerHas('seed', i)
      else if (![...peerBits.values()].some(b => b.has(i))) p.peerHas(peers[randomInt(rng, peers.length)]!, i)
    }
    // Peers pick up chunks from elsewhere and announce them.
    const announcer = peers[randomInt(rng, peers.length)]!
    const fresh = randomInt(rng, n)
    if (available.has(fresh)) {
      peerBits.get(announcer)!.set(fresh)
      p.peerHas(announcer, fresh)
    }

    for (const peer of [...peers, ...(hasSeeder ? ['seed'] : [])]) {
      const slots = 4 - (p.peerStats(peer)?.inflight ?? 0)
      const endgame = p.remaining <= threshold
      for (const i of p.pick(peer, slots, t)) {
        expect(available.has(i) && !held.has(i)).toBe(true)
        const reqs = inflight.get(i) ?? new Map<string, number>()
        expect(reqs.has(peer)).toBe(false)
        expect(reqs.size).toBeLessThanOrEqual(endgame ? maxDup : 0)
        reqs.set(peer, t)
        inflight.set(i, reqs)
      }
    }

    // Deliver, fail or time out some requests.
    for (const [i, reqs] of [...inflight]) {
      for (const [peer, started] of [...reqs]) {
        if (!inflight.get(i)?.has(peer)) continue
        const r = rng()
        if (r < 0.05 || t - started > 3000) {
          p.requestFailed(peer, i, t)
          reqs.delete(peer)
        } else if (r < 0.05 + 0.1 * speed.get(peer)!) {
          p.requestDone(peer, i, 1000, t)
          reqs.delete(peer)
          held.set(i)
          const cancel = p.markHave(i)
          expect(cancel.map(c => c.peer).sort()).toEqual([...reqs.keys()].sort())
          inflight.delete(i)
        }
      }
      if (inflight.get(i)?.size === 0) inflight.delete(i)
    }
  }
  expect(p.remaining).toBe(0)
  for (const peer of peers) expect(p.peerStats(peer)?.inflight).toBe(0)
}
