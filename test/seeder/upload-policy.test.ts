import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { PiecePicker } from '../../src/peer/piece-picker.ts'
import { UploadPolicy, type UploadPolicyInit } from '../../src/seeder/upload-policy.ts'
import { createRng, randomInt } from '../../src/util/random.ts'

function policy (opts: Partial<UploadPolicyInit> = {}): UploadPolicy {
  return new UploadPolicy({ numChunks: 8, rng: createRng(1), ...opts })
}

describe('UploadPolicy', () => {
  it('serves chunks the swarm does not hold and refuses held ones, naming holders other than the requester', () => {
    const pol = policy({ maxHints: 2 })
    expect(pol.decide('p', 0, 0)).toEqual({ serve: true, reason: 'unheld' })
    for (const h of ['h1', 'h2', 'h3']) pol.peerHas(h, 1)
    pol.peerHas('p', 1)
    const d = pol.decide('p', 1, 0)
    expect(d).toMatchObject({ serve: false, reason: 'held' })
    if (d.serve) throw new Error('unreachable')
    expect(d.holders).toHaveLength(2)
    expect(d.holders).not.toContain('p')
  })

  it('spreads hints over the holders', () => {
    const pol = policy({ maxHints: 1, maxRefusals: 1000 })
    for (let h = 0; h < 10; h++) pol.peerHas(`h${h}`, 1)
    const named = new Set<string>()
    for (let k = 0; k < 100; k++) {
      const d = pol.decide(`p${k}`, 1, 0)
      if (!d.serve) named.add(d.holders[0]!)
    }
    expect(named.size).toBe(10)
  })

  it('refuses a second copy of a chunk just served, pointing at the peer receiving it, until it expires', () => {
    const pol = policy({ pendingMs: 1000 })
    expect(pol.decide('p', 0, 0).serve).toBe(true)
    expect(pol.decide('q', 0, 100)).toEqual({ serve: false, reason: 'pending', holders: ['p'] })
    // p announced it: now it is simply held.
    pol.peerHas('p', 0)
    expect(pol.decide('r', 0, 200)).toEqual({ serve: false, reason: 'held', holders: ['p'] })
    // A transfer whose upload failed stops blocking others at once.
    expect(pol.decide('p', 1, 0).serve).toBe(true)
    pol.uploadEnded('p', 1, false, 10)
    expect(pol.decide('q', 1, 20)).toEqual({ serve: true, reason: 'unheld' })
    // One whose upload ended whole but was never announced stops blocking others pendingMs after its end.
    expect(pol.decide('p', 2, 0).serve).toBe(true)
    pol.uploadEnded('p', 2, true, 500)
    expect(pol.decide('q', 2, 1500).serve).toBe(false)
    expect(pol.decide('q', 2, 1501)).toEqual({ serve: true, reason: 'unheld' })
  })

  it('counts a chunk as on its way for as long as its upload runs, however slow (lab: 22.8 s at p90), not pendingMs from the decision', () => {
    const pol = policy({ pendingMs: 1000, maxRefusals: 1000 })
    expect(pol.decide('p', 0, 0).serve).toBe(true)
    // Before, the second copy went out here, while the first was still under way.
    expect(pol.decide('q', 0, 20_000)).toEqual({ serve: false, reason: 'pending', holders: ['p'] })
    // The end of someone else's upload of it, or of an upload the gate did not decide, changes nothing.
    pol.uploadEnded('q', 0, false, 20_100)
    expect(pol.decide('q', 0, 20_200).serve).toBe(false)
    pol.uploadEnded('p', 0, true, 25_000)
    expect(pol.decide('q', 0, 25_900).serve).toBe(false)
    expect(pol.decide('q', 0, 26_001)).toEqual({ serve: true, reason: 'unheld' })
    // Served twice to one peer (its first request timed out on its side): the first upload failing leaves the
    // second on its way.
    expect(pol.decide('p', 1, 0).serve).toBe(true)
    expect(pol.decide('p', 1, 100).serve).toBe(true)
    pol.uploadEnded('p', 1, false, 200)
    expect(pol.decide('q', 1, 300).serve).toBe(false)
    pol.uploadEnded('p', 1, false, 400)
    expect(pol.decide('q', 1, 500)).toEqual({ serve: true, reason: 'unheld' })
  })

  it('serves a peer refused too often for the same chunk within the window', () => {
    const pol = policy({ maxRefusals: 2, windowMs: 1000 })
    pol.peerHas('h', 0)
    expect(pol.decide('p', 0, 0).serve).toBe(false)
    expect(pol.decide('p', 0, 10).serve).toBe(false)
    expect(pol.decide('p', 0, 20)).toEqual({ serve: true, reason: 'refused-too-often' })
    // The count starts over after serving, and after the window.
    expect(pol.decide('p', 0, 30).serve).toBe(false)
    expect(pol.decide('p', 0, 40).serve).toBe(false)
    expect(pol.decide('p', 0, 2000).serve).toBe(false)
  })

  it('serves a peer whose named holders all failed it, and stops naming holders that keep failing', () => {
    const pol = policy({ maxHints: 2, maxStrikes: 2 })
    pol.peerHas('h1', 0)
    pol.peerHas('h2', 0)
    const d = pol.decide('p', 0, 0)
    expect(d.serve ? [] : [...d.holders].sort()).toEqual(['h1', 'h2'])
    expect(pol.decide('p', 0, 10, ['h1'])).toEqual({ serve: false, reason: 'held', holders: ['h2'] })
    expect(pol.decide('p', 0, 20, ['h2'])).toEqual({ serve: true, reason: 'holders-failed' })
    // q reports both failing too: each has two strikes and is no longer named, only the peer the chunk is
    // on its way to.
    expect(pol.decide('q', 0, 30, ['h1', 'h2'])).toEqual({ serve: false, reason: 'pending', holders: ['p'] })
    // Once that transfer has failed, nobody usable holds chunk 0, so it is served.
    pol.uploadEnded('p', 0, false, 40)
    expect(pol.decide('r', 0, 50)).toEqual({ serve: true, reason: 'unheld' })
    // Strikes expire with the window.
    const later = pol.decide('s', 0, 60_000)
    expect(later.serve ? [] : [...later.holders].sort()).toEqual(['h1', 'h2'])
  })

  it('strikes a holder once per peer reporting it, however often that peer reports it', () => {
    const pol = policy({ maxHints: 2, maxStrikes: 2, maxRefusals: 1000 })
    for (const i of [0, 1, 2, 3]) pol.peerHas('h', i)
    // p names h on each request for chunk 0, and for chunk 1 too (a requester sends its paused peers with
    // every request; p is served both, h being no holder for p): before, the second report struck h for
    // everyone.
    for (let k = 0; k < 5; k++) pol.decide('p', k % 2, k, ['h'])
    expect(pol.decide('q', 2, 10)).toEqual({ serve: false, reason: 'held', holders: ['h'] })
    // A second peer reporting it (q, then served chunk 2) strikes it within the window, for everyone.
    pol.decide('q', 2, 20, ['h'])
    expect(pol.decide('r', 3, 30)).toEqual({ serve: true, reason: 'unheld' })
    // Strikes end with the window (30 s after the last report of each peer).
    expect(pol.decide('s', 0, 30_021)).toEqual({ serve: false, reason: 'held', holders: ['h'] })
    // A holder's report of itself counts for nothing.
    pol.peerHas('g', 4)
    for (const p of ['g', 't']) pol.decide(p, 4, 40_000, ['g'])
    expect(pol.decide('u', 4, 40_010)).toEqual({ serve: false, reason: 'held', holders: ['g'] })
  })

  it('forgets the copies of peers that are gone', () => {
    const pol = policy()
    pol.peerBitfield('h', bitsOf(8, [0, 1, 2]))
    expect(pol.decide('p', 2, 0).serve).toBe(false)
    pol.peerBitfield('h', bitsOf(8, [0, 1]))
    expect(pol.decide('q', 2, 0).serve).toBe(true)
    pol.peerGone('h')
    expect(pol.decide('q', 0, 0).serve).toBe(true)
    expect(() => pol.peerBitfield('h', new Bitfield(9))).toThrow(/9 chunks, expected 8/)
  })

  it('counts its decisions by outcome and reason', () => {
    const pol = policy({ maxRefusals: 1, maxHints: 1 })
    pol.decide('p', 0, 0) // served-unheld
    pol.decide('q', 0, 10) // refused-pending (on its way to p)
    pol.peerHas('p', 0)
    pol.decide('r', 0, 20) // refused-held, naming p
    pol.decide('r', 0, 30, ['p']) // served-holders-failed
    pol.peerHas('h', 1)
    pol.decide('s', 1, 40) // refused-held
    pol.decide('s', 1, 50) // served-refused-too-often
    expect(pol.decisions).toEqual({ 'served-unheld': 1, 'served-holders-failed': 1, 'served-refused-too-often': 1, 'refused-held': 2, 'refused-pending': 1 })
  })

  it('counts bytes served per chunk and in total', () => {
    const pol = policy()
    pol.served(0, 100)
    pol.served(0, 50)
    pol.served(3, 10)
    expect(pol.bytesServed(0)).toBe(150)
    expect(pol.bytesServed(3)).toBe(10)
    expect(pol.bytesServed()).toBe(160)
    expect(() => pol.served(8, 1)).toThrow(RangeError)
  })

  describe('reveal (super-seeding: whom the seeder tells of a chunk it just pulled)', () => {
    /** A policy over `n` chunks with peers p0..p{k-1} known, none holding anything. */
    function withPeers (k: number, opts: Partial<UploadPolicyInit> = {}, n = 16): UploadPolicy {
      const pol = new UploadPolicy({ numChunks: n, rng: createRng(1), ...opts })
      for (let i = 0; i < k; i++) pol.peerBitfield(`p${i}`, new Bitfield(n))
      return pol
    }

    it('tells one peer lacking the chunk, the peers taking turns', () => {
      const pol = withPeers(4)
      const told = [0, 1, 2, 3].map(i => pol.pulled(i, 0))
      expect(told.map(r => r.map(x => x.index))).toEqual([[0], [1], [2], [3]])
      expect(new Set(told.map(r => r[0]!.peers[0])).size).toBe(4)
      expect(told.every(r => r[0]!.peers.length === 1)).toBe(true)
      // A peer holding a chunk is never told of it; a chunk some peer holds already (a repair) is told to nobody.
      const pol2 = withPeers(2)
      pol2.peerHas('p0', 5)
      expect(pol2.pulled(5, 0)).toEqual([])
      pol2.peerHas('p0', 6)
      pol2.peerGone('p0')
      expect(pol2.pulled(6, 0)).toEqual([{ index: 6, peers: ['p1'] }])
    })

    it('tells `revealTo` peers, or all with Infinity', () => {
      expect(withPeers(5, { revealTo: 2 }).pulled(0, 0)[0]!.peers).toHaveLength(2)
      expect(withPeers(5, { revealTo: Infinity }).pulled(0, 0)[0]!.peers.sort()).toEqual(['p0', 'p1', 'p2', 'p3', 'p4'])
    })

    it('keeps at most maxRevealing chunks out; the rest go out, oldest first, as peers take them', () => {
      const pol = withPeers(4, { maxRevealing: 2 })
      const first = pol.pulled(0, 0)
      pol.pulled(1, 0)
      expect(pol.pulled(2, 0)).toEqual([])
      expect(pol.pulled(3, 0)).toEqual([])
      expect(pol.dueReveals(100)).toEqual([])
      pol.peerHas(first[0]!.peers[0]!, 0)
      expect(pol.dueReveals(200).map(r => r.index)).toEqual([2])
      // A chunk a peer got elsewhere (from the seeder's bitfield at its join) no longer waits.
      pol.peerHas('p3', 3)
      pol.peerHas('p3', 1)
      expect(pol.dueReveals(300)).toEqual([])
    })

    it('prefers peers with fewer chunks outstanding to the peer whose turn it is', () => {
      const pol = withPeers(3, { maxOutstanding: 1, maxRevealing: 8 })
      expect([0, 1, 2].map(i => pol.pulled(i, 0)[0]!.peers[0])).toEqual(['p0', 'p1', 'p2'])
      pol.peerHas('p1', 1)
      // p0's turn, but it has a chunk outstanding and p1 none.
      expect(pol.pulled(3, 0)[0]!.peers).toEqual(['p1'])
      // All at one outstanding: turns again, from after p1.
      expect(pol.pulled(4, 0)[0]!.peers).toEqual(['p2'])
    })

    it('tells another peer when those told are gone, or took nothing within revealAfterMs and it is not on its way', () => {
      const pol = withPeers(3, { revealAfterMs: 1000, pendingMs: 5000 })
      const [told] = pol.pulled(0, 0)
      const a = told!.peers[0]!
      pol.peerGone(a)
      const [again] = pol.dueReveals(10)
      expect(again!.index).toBe(0)
      const b = again!.peers[0]!
      expect(b).not.toBe(a)
      expect(pol.dueReveals(500)).toEqual([])
      // b asks and is served: the chunk is on its way, so it is not told to anyone else meanwhile.
      expect(pol.decide(b, 0, 600).serve).toBe(true)
      expect(pol.dueReveals(2000)).toEqual([])
      // Still under way after pendingMs: nobody else is told.
      expect(pol.dueReveals(5700)).toEqual([])
      // Sent whole, and b never announced it within pendingMs of the end: the third peer is told.
      pol.uploadEnded(b, 0, true, 6000)
      expect(pol.dueReveals(10_900)).toEqual([])
      const [third] = pol.dueReveals(11_100)
      expect(third!.peers).toHaveLength(1)
      expect([a, b]).not.toContain(third!.peers[0])
    })

    it('tells the chunk anew when its only holder leaves before anyone took it from them', () => {
      const pol = withPeers(2)
      const a = pol.pulled(0, 0)[0]!.peers[0]!
      pol.peerHas(a, 0)
      expect(pol.dueReveals(10)).toEqual([])
      pol.peerGone(a)
      expect(pol.dueReveals(20)).toEqual([{ index: 0, peers: [a === 'p0' ? 'p1' : 'p0'] }])
    })

    it('tells a peer that left and came back under the same id again, at once', () => {
      const pol = withPeers(1)
      expect(pol.pulled(0, 0)).toEqual([{ index: 0, peers: ['p0'] }])
      pol.peerGone('p0')
      pol.peerBitfield('p0', new Bitfield(16))
      // Its new session was not sent chunk 0 (held back): it must be told again, or it never learns of it.
      expect(pol.dueReveals(10)).toEqual([{ index: 0, peers: ['p0'] }])
    })

    it('after every peer was told everything, tells every peer of a chunk pulled again (a repair) and hides it from none', () => {
      const pol = withPeers(2)
      const [told] = pol.pulled(0, 0)
      pol.peerHas(told!.peers[0]!, 0)
      pol.whole()
      expect(pol.allDue()).toBe(true)
      expect(pol.pulled(0, 10)).toEqual([])
      expect(pol.pulled(1, 10)).toEqual([{ index: 1, peers: ['p0', 'p1'] }])
      expect(pol.bitfieldFor(bitsOf(16, [0, 1])).count).toBe(2)
    })

    it('tells a peer joining later of a chunk no peer was there to be told of', () => {
      const pol = new UploadPolicy({ numChunks: 4, rng: createRng(1) })
      expect(pol.pulled(0, 0)).toEqual([])
      pol.peerBitfield('p0', new Bitfield(4))
      expect(pol.dueReveals(10)).toEqual([{ index: 0, peers: ['p0'] }])
    })

    it('sends a peer joining the chunks held minus those held back', () => {
      const pol = withPeers(1, {}, 8)
      const have = bitsOf(8, [0, 1, 2, 3])
      pol.pulled(2, 0)
      pol.pulled(3, 0)
      expect([...pol.bitfieldFor(have).setIndexes()]).toEqual([0, 1])
      expect(pol.bitfieldFor(have).count).toBe(2)
      // Whole: a peer joining now is sent everything (the peers already there still wait for allDue).
      pol.whole()
      expect(pol.allDue()).toBe(false)
      expect([...pol.bitfieldFor(have).setIndexes()]).toEqual([0, 1, 2, 3])
    })

    it('holds nothing back from anyone when the version was pulled with no peer there', () => {
      const pol = new UploadPolicy({ numChunks: 4, rng: createRng(1) })
      for (const i of [0, 1, 2, 3]) expect(pol.pulled(i, 0)).toEqual([])
      pol.whole()
      expect(pol.allDue()).toBe(true)
      pol.peerBitfield('p0', new Bitfield(4))
      expect(pol.dueReveals(10)).toEqual([])
    })

    it('once whole, holds nothing back after every chunk held back has been taken by a peer', () => {
      const pol = withPeers(2, { maxRevealing: 1 })
      const [first] = pol.pulled(0, 0)
      pol.pulled(1, 0)
      expect(pol.allDue()).toBe(false)
      // Whole, but chunk 0 is still out and chunk 1 waits: telling everyone now would send them all to the seeder.
      pol.whole()
      expect(pol.allDue()).toBe(false)
      pol.peerHas(first!.peers[0]!, 0)
      const [second] = pol.dueReveals(10)
      expect(second!.index).toBe(1)
      expect(pol.allDue()).toBe(false)
      pol.peerHas(second!.peers[0]!, 1)
      expect(pol.allDue()).toBe(true)
      // Once: and from then on nothing is held back or told anew.
      expect(pol.allDue()).toBe(false)
      pol.peerGone('p0')
      pol.peerGone('p1')
      pol.peerBitfield('p2', new Bitfield(16))
      expect(pol.dueReveals(20_000)).toEqual([])
      expect(pol.bitfieldFor(bitsOf(16, [0, 1])).count).toBe(2)
    })
  })

  it.each([8, 50])('keeps seeder egress near 1·F while %i peers fetch from a seeder still pulling', n => {
    for (const seed of [1, 2, 3]) {
      const run = simulate(n, seed)
      expect(run.complete, `seed ${seed}: peers did not all finish`).toBe(true)
      // Every chunk leaves the seeder once; the rest is tail escape hatches (holders busy, seeder idle).
      expect(run.egress / run.size).toBeGreaterThanOrEqual(1)
      expect(run.egress / run.size).toBeLessThanOrEqual(1.5)
    }
  })
})

function bitsOf (n: number, indexes: number[]): Bitfield {
  const b = new Bitfield(n)
  for (const i of indexes) b.set(i)
  return b
}

interface Request { from: string, index: number }

/**
 * A round-based swarm: the seeder publishes `PULL` chunks a round while it pulls, uploads at most
 * `SEED_UP` chunks a round, each peer at most `PEER_UP`; each peer keeps up to `IN_FLIGHT` requests out,
 * `PER_SOURCE` per source. Every peer knows every other (HAVEs arrive at the end of the round), so a
 * refused peer just retries; the picker's last-resort rule and the policy decide where bytes come from.
 */
function simulate (n: number, seed: number): { complete: boolean, egress: number, size: number } {
  const CHUNKS = 64
  const CHUNK = 1 << 20
  const PULL = 8
  const SEED_UP = 4
  const PEER_UP = 2
  const IN_FLIGHT = 8
  const PER_SOURCE = 2
  const rng = createRng(seed)
  const names = Array.from({ length: n }, (_, i) => `p${i}`)
  const policy = new UploadPolicy({ numChunks: CHUNKS, rng: createRng(seed + 1), pendingMs: 2000 })
  const pickers = new Map<string, PiecePicker>()
  for (const [i, name] of names.entries()) {
    const picker = new PiecePicker({ numChunks: CHUNKS, have: new Bitfield(CHUNKS), rng: createRng(seed * 1000 + i), retryAfterMs: 1000 })
    picker.addPeer('seed', new Bitfield(CHUNKS), { seeder: true })
    for (const other of names) if (other !== name) picker.addPeer(other, new Bitfield(CHUNKS))
    pickers.set(name, picker)
  }
  const queues = new Map<string, Request[]>([...names, 'seed'].map(name => [name, []]))
  const inflight = new Map<string, number>(names.map(name => [name, 0]))
  let published = 0

  for (let round = 0; round < 400; round++) {
    const now = round * 1000
    for (let k = 0; k < PULL && published < CHUNKS; k++, published++) {
      for (const picker of pickers.values()) {
        picker.setAvailable(published)
        picker.peerHas('seed', published)
      }
    }
    if ([...pickers.values()].every(p => p.remaining === 0)) return { complete: true, egress: policy.bytesServed(), size: CHUNKS * CHUNK }

    // Requests, sources visited in a random order per peer.
    for (const name of names) {
      const picker = pickers.get(name)!
      const sources = ['seed', ...names.filter(o => o !== name)]
      for (let i = sources.length - 1; i > 0; i--) {
        const j = randomInt(rng, i + 1)
        ;[sources[i], sources[j]] = [sources[j]!, sources[i]!]
      }
      for (const source of sources) {
        const free = Math.min(PER_SOURCE - (picker.peerStats(source)?.inflight ?? 0), IN_FLIGHT - inflight.get(name)!)
        if (free <= 0) continue
        for (const index of picker.pick(source, free, now)) {
          queues.get(source)!.push({ from: name, index })
          inflight.set(name, inflight.get(name)! + 1)
        }
      }
    }

    // Uploads, first come first served; deliveries land at the end of the round.
    const delivered: (Request & { source: string, at: number })[] = []
    for (const [source, queue] of queues) {
      const cap = source === 'seed' ? SEED_UP : PEER_UP
      let sent = 0
      while (sent < cap && queue.length > 0) {
        const req = queue.shift()!
        if (source === 'seed') {
          const d = policy.decide(req.from, req.index, now)
          if (!d.serve) {
            pickers.get(req.from)!.requestFailed('seed', req.index, now, { refused: true })
            inflight.set(req.from, inflight.get(req.from)! - 1)
            continue
          }
          policy.served(req.index, CHUNK)
        }
        sent++
        delivered.push({ ...req, source, at: now + sent * 1000 / cap })
      }
    }
    // A duplicate already sent this round when its twin landed is wasted upload; the picker cancelled it.
    const cancelled = new Set<string>()
    for (const d of delivered) {
      if (cancelled.has(`${d.source}>${d.from}:${d.index}`)) continue
      const picker = pickers.get(d.from)!
      picker.requestDone(d.source, d.index, CHUNK, d.at)
      inflight.set(d.from, inflight.get(d.from)! - 1)
      for (const cancel of picker.markHave(d.index)) {
        const queue = queues.get(cancel.peer)!
        const at = queue.findIndex(r => r.from === d.from && r.index === d.index)
        if (at >= 0) queue.splice(at, 1)
        else cancelled.add(`${cancel.peer}>${d.from}:${d.index}`)
        inflight.set(d.from, inflight.get(d.from)! - 1)
      }
    }
    for (const d of delivered) {
      if (cancelled.has(`${d.source}>${d.from}:${d.index}`)) continue
      policy.peerHas(d.from, d.index)
      for (const [name, picker] of pickers) if (name !== d.from) picker.peerHas(d.from, d.index)
    }
  }
  return { complete: false, egress: policy.bytesServed(), size: CHUNKS * CHUNK }
}
