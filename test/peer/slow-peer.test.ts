/** The slow-peer decision under a mock clock: stallers and tricklers are routed around, fair peers never. */
import { describe, expect, it } from 'vitest'
import { SlowPeers } from '../../src/peer/slow-peer.ts'

const MiB = 1024 * 1024
const KB = 1000

/** `peer` delivers `bytesPerSec` from `from` to `to` (ms), one report per 100 ms. */
function deliver (s: SlowPeers, peer: string, bytesPerSec: number, from: number, to: number): void {
  for (let t = from + 100; t <= to; t += 100) s.bytes(peer, bytesPerSec / 10, t)
}

describe('SlowPeers', () => {
  it('routes around a peer that sends nothing while another delivers, once its requests are past the grace', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    s.started('staller', 0)
    deliver(s, 'fast', 50 * MiB, 0, 7000)
    expect(s.check(7000, 3).routeAround).toEqual([])
    deliver(s, 'fast', 50 * MiB, 7000, 8000)
    const { routeAround } = s.check(8000, 3)
    expect(routeAround.map(v => [v.peer, v.reason, v.heldMs, v.pauseMs])).toEqual([['staller', 'quiet', 8000, 10_000]])
    expect(s.paused('staller', 8000)).toBe(true)
    expect(s.pausedPeers(8000)).toEqual(['staller'])
  })

  it('routes around a trickler, whose bytes keep an idle timeout from ever firing', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    s.started('trickler', 0)
    deliver(s, 'fast', 20 * MiB, 0, 8000)
    deliver(s, 'trickler', 8 * 1024, 0, 8000)
    const [v] = s.check(8000, 3).routeAround
    expect(v).toMatchObject({ peer: 'trickler', reason: 'slow' })
    expect(v!.rate).toBeCloseTo(8 * 1024, -2)
    expect(v!.typicalOther).toBeCloseTo(20 * MiB, -5)
  })

  it('leaves alone peers within slowRatio of each other', () => {
    const s = new SlowPeers()
    for (const p of ['a', 'b', 'c']) s.started(p, 0)
    deliver(s, 'a', 30 * MiB, 0, 10_000)
    deliver(s, 'b', 3 * MiB, 0, 10_000)
    deliver(s, 'c', 2 * MiB, 0, 10_000)
    // c is under a tenth of a's rate but above a twentieth: a fair peer behind a slower link.
    expect(s.check(10_000, 3).routeAround).toEqual([])
  })

  it('judges a peer against the typical other peer, not a seeder on a wider link', () => {
    const s = new SlowPeers()
    // Lab, N = 16 at 6.25 Mbit/s up: hosts sharing their uplink among 8 uploads delivered 5–28 KB/s, the
    // seeder 245–590 KB/s. Against the seeder, c (a twentieth-and-a-half of it) would be slow.
    const rates: Record<string, number> = { seeder: 500 * KB, a: 20 * KB, b: 30 * KB, c: 12 * KB, trickler: 1 * KB }
    for (const [p, r] of Object.entries(rates)) {
      s.started(p, 0)
      deliver(s, p, r, 0, 10_000)
    }
    const verdicts = s.check(10_000, 6).routeAround
    expect(verdicts.map(v => v.peer)).toEqual(['trickler'])
    expect(verdicts[0]!.typicalOther).toBeCloseTo(30 * KB, -2)
  })

  it('catches tricklers even when they are half the peers, and leaves the paused out of the reference', () => {
    const s = new SlowPeers()
    // Three tricklers and a seeder: the others' median for each trickler is a trickler's rate, so the
    // reference is at least 1/20 of the best (the seeder's 500 KB/s), and 1 KB/s is under 1/20 of that.
    for (const p of ['seeder', 't1', 't2', 't3']) s.started(p, 0)
    deliver(s, 'seeder', 500 * KB, 0, 10_000)
    for (const t of ['t1', 't2', 't3']) deliver(s, t, 1 * KB, 0, 10_000)
    expect(s.check(10_000, 5).routeAround.map(v => v.peer).sort()).toEqual(['t1', 't2', 't3'])
    // While they are paused their rates count for nothing: a later trickler at 5 KB/s, beside a host at
    // 100 KB/s and the seeder, is judged against those two (with the paused in, the median would be 1 KB/s).
    for (const p of ['host', 't4']) s.started(p, 10_000)
    deliver(s, 'seeder', 500 * KB, 10_000, 19_000)
    deliver(s, 'host', 100 * KB, 10_000, 19_000)
    deliver(s, 't4', 5 * KB, 10_000, 19_000)
    expect(s.check(19_000, 7).routeAround.map(v => v.peer)).toEqual(['t4'])
  })

  it('measures a rate from the first byte: a request that waited in the peer\'s upload queue does not make it slow', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    s.started('queued', 0)
    deliver(s, 'fast', 30 * MiB, 0, 15_000)
    // Nothing for 7 s (behind the peer's other uploads), then a fair 2 MiB/s, a fifteenth of the best; judged
    // once past the grace (stretched to twice that 7 s silence). Counted from the request, 1/28: slow.
    deliver(s, 'queued', 2 * MiB, 7000, 15_000)
    expect(s.check(15_000, 3).routeAround).toEqual([])
    s.ended('queued')
    // A trickler that also waited first is still caught once it sends.
    s.started('trickler', 15_000)
    deliver(s, 'fast', 30 * MiB, 15_000, 30_000)
    deliver(s, 'trickler', 8 * 1024, 19_000, 30_000)
    expect(s.check(30_000, 4).routeAround).toMatchObject([{ peer: 'trickler', reason: 'slow' }])
  })

  it('routes around a quiet peer before anyone delivered (others wait behind it), unless it is the only neighbour', () => {
    const s = new SlowPeers()
    s.started('staller', 0)
    expect(s.check(8000, 1).routeAround).toEqual([])
    expect(s.check(8000, 2).routeAround).toMatchObject([{ peer: 'staller', reason: 'quiet', typicalOther: 0 }])
  })

  it('with no other rate to compare, routes around a peer under minRate when there is another neighbour', () => {
    const s = new SlowPeers()
    s.started('trickler', 0)
    deliver(s, 'trickler', 8 * 1024, 0, 8000)
    expect(s.check(8000, 1).routeAround).toEqual([])
    expect(s.check(8000, 2).routeAround).toMatchObject([{ peer: 'trickler', reason: 'slow', typicalOther: 0 }])
  })

  it('judges nobody before the grace, and a peer whose requests ended not at all', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    s.started('slowStarter', 4000)
    deliver(s, 'fast', 50 * MiB, 0, 11_000)
    expect(s.check(11_000, 3).routeAround).toEqual([])
    s.ended('fast')
    s.ended('slowStarter')
    expect(s.check(20_000, 3).routeAround).toEqual([])
  })

  it('resumes a paused peer once, after its pause, and doubles the next pause up to the cap', () => {
    const s = new SlowPeers({ maxPauseMs: 30_000 })
    s.bytes('fast', MiB, 0)
    const pauses: number[] = []
    let now = 0
    for (let round = 0; round < 4; round++) {
      s.started('staller', now)
      now += 8000
      const { routeAround } = s.check(now, 3)
      pauses.push(routeAround[0]!.pauseMs)
      s.ended('staller')
      expect(s.check(now + routeAround[0]!.pauseMs - 1, 3).resume).toEqual([])
      now += routeAround[0]!.pauseMs
      expect(s.check(now, 3).resume).toEqual(['staller'])
      expect(s.check(now, 3).resume).toEqual([])
      expect(s.paused('staller', now)).toBe(false)
    }
    expect(pauses).toEqual([10_000, 20_000, 30_000, 30_000])
  })

  it('sees a peer that slows down after a fast start, once its window slides', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    s.started('fading', 0)
    deliver(s, 'fast', 20 * MiB, 0, 60_000)
    deliver(s, 'fading', 20 * MiB, 0, 10_000)
    let verdict
    for (let t = 12_000; t <= 60_000 && verdict === undefined; t += 2000) {
      deliver(s, 'fading', 10 * 1024, t - 2000, t)
      verdict = s.check(t, 3).routeAround[0]
    }
    expect(verdict).toMatchObject({ peer: 'fading', reason: 'slow' })
  })

  it('waits longer while honest peers are sluggish: twice the longest silence that ended in the last minute', () => {
    const s = new SlowPeers()
    s.started('fast', 0)
    deliver(s, 'fast', 20 * MiB, 0, 40_000)
    // An honest peer on a starved CPU: 9 s without a byte, then its chunk.
    s.started('sluggish', 0)
    s.bytes('sluggish', MiB, 9000)
    s.ended('sluggish')
    s.started('staller', 10_000)
    expect(s.check(27_999, 3).routeAround).toEqual([])
    expect(s.check(28_000, 3).routeAround).toMatchObject([{ peer: 'staller', reason: 'quiet', heldMs: 18_000, limitMs: 18_000 }])
    s.ended('staller')
    // A minute on, that silence no longer counts.
    s.started('staller2', 70_000)
    deliver(s, 'fast', 20 * MiB, 40_000, 78_000)
    expect(s.check(78_000, 3).routeAround).toMatchObject([{ peer: 'staller2', limitMs: 8000 }])
  })

  it('forgets a peer that left', () => {
    const s = new SlowPeers()
    s.bytes('fast', MiB, 0)
    s.started('staller', 0)
    s.forget('staller')
    expect(s.check(10_000, 3).routeAround).toEqual([])
  })
})
