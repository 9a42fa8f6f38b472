import { afterEach, describe, expect, it, vi } from 'vitest'
import { InvalidInputError } from '../../src/errors.ts'
import { createRng, randomInt } from '../../src/util/random.ts'
import { take, TokenBucket } from '../../src/util/token-bucket.ts'

const MiB = 1024 * 1024

/** Drives many takers against one bucket on a virtual clock; returns when each piece was admitted. */
function simulate (bucket: TokenBucket, takers: number, pieces: number, sizeOf: (taker: number) => number): { at: number, bytes: number, taker: number }[] {
  const admitted: { at: number, bytes: number, taker: number }[] = []
  // Each taker reserves its next piece as soon as the previous one is admitted, as `take` does.
  // Takers ready at the same instant queue in arrival order (`seq`), like awaiting promises do.
  const next = Array.from({ length: takers }, () => 0)
  const seq = Array.from({ length: takers }, (_, i) => i)
  const left = Array.from({ length: takers }, () => pieces)
  for (let arrivals = takers; left.some(n => n > 0); arrivals++) {
    let t = -1
    for (let i = 0; i < takers; i++) if (left[i]! > 0 && (t === -1 || next[i]! < next[t]! || (next[i] === next[t] && seq[i]! < seq[t]!))) t = i
    const bytes = sizeOf(t)
    const at = next[t]! + bucket.reserve(bytes, next[t]!)
    admitted.push({ at, bytes, taker: t })
    next[t] = at
    seq[t] = arrivals
    left[t]!--
  }
  return admitted
}

describe('TokenBucket', () => {
  it('holds the long-run average at exactly the rate', () => {
    const bucket = new TokenBucket({ rate: 100 * MiB, burst: 4 * MiB })
    const admitted = simulate(bucket, 8, 500, () => 256 * 1024)
    const total = admitted.reduce((s, a) => s + a.bytes, 0)
    const end = Math.max(...admitted.map(a => a.at))
    // The first `burst` bytes are free; the rest pass at exactly `rate`.
    expect((total - 4 * MiB) / (end / 1000)).toBeCloseTo(100 * MiB, 0)
  })

  it('never admits more than rate + burst in any one-second window', () => {
    const rng = createRng(5)
    const bucket = new TokenBucket({ rate: 10 * MiB, burst: 2 * MiB })
    const admitted = simulate(bucket, 5, 400, () => 1 + randomInt(rng, 2 * MiB)).sort((a, b) => a.at - b.at)
    let lo = 0
    let inWindow = 0
    for (const a of admitted) {
      inWindow += a.bytes
      while (admitted[lo]!.at <= a.at - 1000) inWindow -= admitted[lo++]!.bytes
      expect(inWindow).toBeLessThanOrEqual(12 * MiB + 1e-6)
    }
  })

  it('shares the rate fairly among concurrent takers', () => {
    const bucket = new TokenBucket({ rate: 1 * MiB, burst: 64 * 1024 })
    const admitted = simulate(bucket, 4, 200, () => 16 * 1024)
    // Over any stretch, each taker's share stays within one piece of the others'.
    const counts = [0, 0, 0, 0]
    for (const a of admitted) {
      counts[a.taker]!++
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1)
    }
  })

  it('admits no more than rate·t in the first t seconds when it starts empty', () => {
    const bucket = new TokenBucket({ rate: 10 * MiB, burst: 2 * MiB, initial: 0 })
    const admitted = simulate(bucket, 4, 100, () => 256 * 1024)
    // A piece admitted at `at` ms has been paid for by then.
    let sum = 0
    for (const a of admitted.sort((x, y) => x.at - y.at)) {
      sum += a.bytes
      expect(sum).toBeLessThanOrEqual(10 * MiB * a.at / 1000 + 1e-6)
    }
  })

  it('refills no further than the burst after idling, and tolerates a clock stepping back', () => {
    const bucket = new TokenBucket({ rate: 1000, burst: 500 })
    expect(bucket.reserve(500, 0)).toBe(0)
    expect(bucket.reserve(500, 0)).toBe(500)
    expect(bucket.reserve(500, 100_000)).toBe(0)
    expect(bucket.reserve(500, 100_000)).toBe(500)
    expect(bucket.reserve(100, 99_000)).toBe(1600)
  })

  it('rejects a reservation above the burst and bad settings with typed errors', () => {
    const bucket = new TokenBucket({ rate: 1000, burst: 500 })
    expect(() => bucket.reserve(501, 0)).toThrow(InvalidInputError)
    expect(() => bucket.reserve(-1, 0)).toThrow(InvalidInputError)
    expect(() => new TokenBucket({ rate: 0, burst: 1 })).toThrow(InvalidInputError)
    expect(() => new TokenBucket({ rate: 1, burst: Number.POSITIVE_INFINITY })).toThrow(InvalidInputError)
    expect(() => new TokenBucket({ rate: 1, burst: 10, initial: 11 })).toThrow(InvalidInputError)
  })
})

describe('take', () => {
  afterEach(() => { vi.useRealTimers() })

  it('waits for the budget, splitting transfers larger than the burst', async () => {
    vi.useFakeTimers({ now: 0 })
    const bucket = new TokenBucket({ rate: 1000, burst: 100, now: () => Date.now() })
    let done = false
    const p = take(bucket, 1100, undefined).then(() => { done = true })
    await vi.advanceTimersByTimeAsync(999)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    await p
    expect(done).toBe(true)
  })

  it('interleaves concurrent takers', async () => {
    vi.useFakeTimers({ now: 0 })
    const bucket = new TokenBucket({ rate: 1000, burst: 100, now: () => Date.now() })
    const finished: [string, number][] = []
    const a = take(bucket, 1000, undefined).then(() => finished.push(['a', Date.now()]))
    const b = take(bucket, 1000, undefined).then(() => finished.push(['b', Date.now()]))
    await vi.advanceTimersByTimeAsync(5000)
    await Promise.all([a, b])
    // 2000 bytes at 1000 B/s after a free 100: both end near 1.9 s, one piece apart, not 1 s and 2 s.
    expect(finished.map(f => f[0]).sort()).toEqual(['a', 'b'])
    for (const [, at] of finished) expect(at).toBeGreaterThanOrEqual(1800)
  })

  it('rejects with the abort reason, before or while waiting', async () => {
    vi.useFakeTimers({ now: 0 })
    const bucket = new TokenBucket({ rate: 1000, burst: 100, now: () => Date.now() })
    await expect(take(bucket, 10, AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone')
    const ac = new AbortController()
    const p = take(bucket, 1000, ac.signal)
    const settled = expect(p).rejects.toThrow('stop')
    await vi.advanceTimersByTimeAsync(300)
    ac.abort(new Error('stop'))
    await settled
    // The aborted transfer stopped reserving: a newcomer waits for at most one more piece.
    expect(bucket.reserve(100, Date.now())).toBeLessThanOrEqual(200)
  })
})
