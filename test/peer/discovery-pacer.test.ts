import { describe, expect, it } from 'vitest'
import { asksDht, DiscoveryPacer } from '../../src/peer/discovery-pacer.ts'

// rng() = 0.5 makes the jitter factor exactly 1 (util/backoff.ts: delay · (0.5 + rng())).
const pacer = (): DiscoveryPacer => new DiscoveryPacer({ baseMs: 2000, maxMs: 30_000, rng: () => 0.5 })

/** When the next round is due after `now`, to the ms. */
function nextDue (p: DiscoveryPacer, now: number): number {
  let t = now
  while (!p.due(t)) t++
  return t
}

describe('DiscoveryPacer', () => {
  it('runs one round at a time, the first at once', () => {
    const p = pacer()
    expect(p.due(0)).toBe(true)
    p.begin(0)
    expect(p.due(0)).toBe(false)
    expect(p.due(60_000)).toBe(false)
    p.end(1, 5000)
    expect(p.due(5000)).toBe(true)
  })

  it('doubles the wait after each round that gained nothing, up to the cap, and a gain ends the waits', () => {
    const p = pacer()
    const waits: number[] = []
    let now = 0
    for (let i = 0; i < 6; i++) {
      p.begin(0)
      p.end(0, now)
      const due = nextDue(p, now)
      waits.push(due - now)
      now = due
    }
    expect(waits).toEqual([2000, 4000, 8000, 16_000, 30_000, 30_000])
    p.begin(0)
    p.end(1, now)
    expect(p.due(now)).toBe(true)
    p.begin(0)
    p.end(0, now)
    expect(nextDue(p, now) - now).toBe(2000)
  })

  it('a neighbour leaving makes the next round due at once and the wait start over', () => {
    const p = pacer()
    for (let i = 0; i < 4; i++) { p.begin(0); p.end(0, 0) }
    expect(p.due(10_000)).toBe(false)
    p.neighbourLost()
    expect(p.due(10_000)).toBe(true)
    p.begin(0)
    p.end(0, 10_000)
    expect(nextDue(p, 10_000) - 10_000).toBe(2000)
  })

  it('a neighbour leaving while a round runs: the round ending without a gain does not delay the next', () => {
    const p = pacer()
    p.begin(0)
    p.neighbourLost()
    p.end(0, 5000)
    expect(p.due(5000)).toBe(true)
    p.begin(0)
    p.end(0, 5000)
    expect(nextDue(p, 5000) - 5000).toBe(2000)
  })

  it('counts the rounds in a row that gained nothing (what the fetch widens its search by); a gain or a neighbour leaving starts it over', () => {
    const p = pacer()
    expect(p.fruitless).toBe(0)
    p.begin(1)
    p.end(1, 0)
    p.begin(1)
    p.end(1, 10_000)
    expect(p.fruitless).toBe(2)
    p.begin(1)
    p.end(2, 20_000)
    expect(p.fruitless).toBe(0)
    p.begin(2)
    p.end(2, 20_000)
    expect(p.fruitless).toBe(1)
    p.neighbourLost()
    expect(p.fruitless).toBe(0)
  })

  it('asks the DHT only when the seeders\' hints do not do: after a fruitless round, or with no seeder neighbour', () => {
    expect(asksDht({ fruitless: 0, seederNeighbours: 1 })).toBe(false)
    expect(asksDht({ fruitless: 1, seederNeighbours: 1 })).toBe(true)
    expect(asksDht({ fruitless: 0, seederNeighbours: 0 })).toBe(true)
  })

  it('spreads the waits of hosts that started together (jitter in [0.5, 1.5) of the wait)', () => {
    const waits = [0, 0.25, 0.75].map(r => {
      const p = new DiscoveryPacer({ baseMs: 2000, maxMs: 30_000, rng: () => r })
      p.begin(0)
      p.end(0, 0)
      return nextDue(p, 0)
    })
    expect(waits).toEqual([1000, 1500, 2500])
  })
})
