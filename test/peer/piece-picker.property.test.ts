// The picker's fast pick (walking its ordered buckets) against the straightforward rule (`scan: true`:
// check every wanted chunk, keep the best by rarity then rank) on random swarms: the same operations go to
// both pickers, built from one seed, and every pick, cancel list and dropped request must be identical.
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { PiecePicker } from '../../src/peer/piece-picker.ts'
import { createRng, randomInt, type Rng } from '../../src/util/random.ts'

function randomBits (rng: Rng, n: number, density: number): Bitfield {
  const b = new Bitfield(n)
  for (let i = 0; i < n; i++) if (rng() < density) b.set(i)
  return b
}

describe('PiecePicker (property)', () => {
  it('picks exactly what checking every wanted chunk picks', () => {
    const params = fc.record({
      seed: fc.nat(),
      n: fc.integer({ min: 1, max: 300 }),
      endgame: fc.integer({ min: 0, max: 6 }),
      steps: fc.integer({ min: 1, max: 400 })
    })
    fc.assert(fc.property(params, ({ seed, n, endgame, steps }) => {
      const rng = createRng(seed)
      const have = randomBits(rng, n, rng() * 0.5)
      const make = (scan: boolean): PiecePicker =>
        new PiecePicker({ numChunks: n, have, rng: createRng(seed ^ 0x51), endgameThreshold: endgame, retryAfterMs: 50, scan })
      const fast = make(false)
      const slow = make(true)
      // `f` runs twice: whatever it draws from `rng` must be drawn before.
      const both = <T>(f: (p: PiecePicker) => T): T => {
        const a = f(fast)
        const b = f(slow)
        expect(a).toEqual(b)
        return a
      }
      const peers: string[] = []
      const inflight: Array<{ peer: string, index: number }> = []
      const forget = (peer: string, index: number): void => { inflight.splice(inflight.findIndex(x => x.peer === peer && x.index === index) >>> 0, 1) }
      let now = 0
      for (let i = 0; i < n; i++) if (rng() < 0.7) both(p => p.setAvailable(i))
      for (let step = 0; step < steps; step++) {
        now += randomInt(rng, 30)
        const op = randomInt(rng, 10)
        const peer = peers.length > 0 ? peers[randomInt(rng, peers.length)]! : undefined
        if (op === 0 || peer === undefined) {
          const name = `p${randomInt(rng, 12)}`
          const bits = randomBits(rng, n, rng())
          const seeder = rng() < 0.2
          for (const r of both(p => p.removePeer(name))) forget(name, r)
          both(p => p.addPeer(name, bits, { seeder }))
          if (!peers.includes(name)) peers.push(name)
        } else if (op === 1) {
          const i = randomInt(rng, n)
          both(p => p.setAvailable(i))
        } else if (op === 2) {
          const i = randomInt(rng, n)
          both(p => p.peerHas(peer, i))
        } else if (op <= 5) {
          const max = 1 + randomInt(rng, 6)
          for (const index of both(p => p.pick(peer, max, now))) inflight.push({ peer, index })
        } else if (op === 6 && inflight.length > 0) {
          const [r] = inflight.splice(randomInt(rng, inflight.length), 1)
          both(p => p.requestDone(r!.peer, r!.index, 1000, now))
          if (rng() < 0.8) {
            for (const c of both(p => p.markHave(r!.index))) forget(c.peer, c.index)
          } else both(p => p.requestFailed(r!.peer, r!.index, now))
        } else if ((op === 7 || op === 8) && inflight.length > 0) {
          const [r] = inflight.splice(randomInt(rng, inflight.length), 1)
          const opts = rng() < 0.5 ? { refused: true, retryAfterMs: randomInt(rng, 100) } : {}
          both(p => p.requestFailed(r!.peer, r!.index, now, opts))
        } else if (op === 9 && rng() < 0.3) {
          for (const r of both(p => p.removePeer(peer))) forget(peer, r)
          peers.splice(peers.indexOf(peer), 1)
        } else if (op === 9) {
          // A reader's priority (the read gateway): set on a few chunks, cleared again later.
          const i = randomInt(rng, n)
          const priority = rng() < 0.5 ? 0 : 1 + randomInt(rng, 3)
          both(p => p.setPriority(i, priority))
        }
      }
      expect(fast.remaining).toBe(slow.remaining)
    }), { numRuns: 300 })
  })
})
