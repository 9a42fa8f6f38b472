import { describe, expect, it } from 'vitest'
import { defaultScenario, lowerBoundMs, type Scenario } from '../../src/sim/scenario.ts'
import { simulate, type Progress } from '../../src/sim/swarm-sim.ts'

const MiB = 1024 * 1024

function scenario (over: Partial<Scenario>): Scenario {
  return defaultScenario({ latencyMs: 0, ...over })
}

describe('simulate', () => {
  it('one seeder and one host: F / min(u_s, d), and the seeder sends exactly F', () => {
    for (const [seederUp, down] of [[4 * MiB, 8 * MiB], [8 * MiB, 2 * MiB]] as const) {
      const s = scenario({ hosts: 1, modelBytes: 64 * MiB, chunkSize: 4 * MiB, seederUp, down })
      const r = simulate(s)
      expect(r.hosts[0]!.completedAt).toBeCloseTo(64 * MiB / Math.min(seederUp, down) * 1000, 6)
      expect(r.seederBytes).toBe(64 * MiB)
      expect(r.hostBytesDown).toBe(64 * MiB)
      expect(r.hosts[0]!.completedAt).toBeCloseTo(lowerBoundMs(s), 6)
    }
  })

  it('adds the latency of a session (4 one-way delays), a request and the last byte', () => {
    // 4 chunks, 4 requests per peer: one wave of requests, so the link never idles.
    const s = scenario({ hosts: 1, modelBytes: 16 * MiB, chunkSize: 4 * MiB, seederUp: 4 * MiB, down: 8 * MiB, latencyMs: 5 })
    const r = simulate(s)
    expect(r.hosts[0]!.completedAt).toBeCloseTo(6 * 5 + 4000, 6)
  })

  it('two hosts, one chunk: the seeder serves the first and points the second at it (egress exactly F)', () => {
    // h0 asks first and is served; h1 is refused ("pending": on its way to h0), dials h0, and gets the
    // chunk from h0 once h0 announces it: 1 s from the seeder, then 1 s from h0 at u = 1 MiB/s.
    const s = scenario({ hosts: 2, modelBytes: MiB, chunkSize: MiB, up: MiB, down: 100 * MiB, seederUp: MiB })
    const r = simulate(s)
    expect(r.hosts.map(h => h.completedAt)).toEqual([1000, 2000].map(t => expect.closeTo(t, 6)))
    expect(r.seederBytes).toBe(MiB)
    expect(r.hostBytesUp).toBe(MiB)
  })

  it('cold: a chunk is served once the pull has read it, and the line carries F once', () => {
    // The token bucket starts empty and is paid after each 1 MiB region, as the puller does: chunk 0 is
    // read at once, its payment holds the reader 1 s, chunk 1 is read at 1 s.
    const s = scenario({
      hosts: 1, modelBytes: 2 * MiB, chunkSize: MiB, warm: false, line: MiB, seederUp: Infinity, down: Infinity, pull: { parallel: 1, rangeBytes: 256 * MiB }
    })
    const r = simulate(s)
    expect(r.hosts[0]!.completedAt).toBeCloseTo(1000, 6)
    expect(r.lineBytes).toBe(2 * MiB)
  })

  it('cold, 100 hosts: a chunk the seeder pulls is asked of it by a few hosts, not by every host', () => {
    // Told to all, every host asked the seeder for every fresh chunk at once (the only holder): 2,500
    // requests for 64 chunks here, all but 64 refused or busy. Told to one host each (UploadPolicy's
    // reveal), the others get it from that host; what is left is the tail's last-resort asks: once the
    // seeder is whole it tells everyone everything (allDue), and the hosts whose neighbours lack the last
    // chunks ask it, each refused with the holder's name. How many hosts that is depends on the run:
    // 130–392 asks over seeds 1–10, so several seeds, each well under the 2,600–2,900 of telling all.
    const Gbit = 1e9 / 8
    const s = scenario({
      hosts: 100, modelBytes: 1024 * MiB, chunkSize: 16 * MiB, warm: false, up: 2 * Gbit, down: 4 * Gbit, seederUp: 10 * Gbit, line: 10 * Gbit
    })
    for (const seed of [1, 2, 3, 4]) {
      const r = simulate({ ...s, seed })
      expect(r.hosts.every(h => h.completedAt !== undefined)).toBe(true)
      const asked = r.seederAnswers.ok + r.seederAnswers.busy + r.seederAnswers.refused + r.seederAnswers.missing
      expect(r.seederAnswers.ok).toBe(64)
      expect(asked).toBeLessThan(8 * 64)
    }
    const all = simulate({ ...s, policy: { revealTo: Infinity, maxRevealing: Infinity } })
    expect(all.seederAnswers.refused + all.seederAnswers.busy).toBeGreaterThan(10 * 64)
  })

  it('conserves bytes: what hosts received is what the seeder and the hosts sent', () => {
    const s = scenario({ hosts: 12, latencyMs: 2, warm: false })
    const r = simulate(s)
    expect(r.hosts.every(h => h.completedAt !== undefined)).toBe(true)
    expect(r.hostBytesDown).toBeCloseTo(r.seederBytes + r.hostBytesUp, 0)
    expect(r.hostBytesDown).toBeGreaterThanOrEqual(12 * s.modelBytes)
    expect(r.lineBytes).toBe(s.modelBytes)
    for (const h of r.hosts) expect(h.completedAt!).toBeGreaterThanOrEqual(lowerBoundMs(s))
  })

  it('replays a run exactly from its seed', () => {
    const times = (seed: number): Array<number | undefined> => simulate(scenario({ hosts: 10, latencyMs: 1, seed })).hosts.map(h => h.completedAt)
    expect(times(3)).toEqual(times(3))
    expect(times(3)).not.toEqual(times(4))
  })

  it('late joiners start late and still finish', () => {
    const s = scenario({ hosts: 10, latencyMs: 1, arrivals: { lateFraction: 0.5, windowMs: 20_000 } })
    const r = simulate(s)
    const late = r.hosts.filter(h => h.startedAt > 0)
    expect(late.length).toBeGreaterThan(0)
    for (const h of r.hosts) expect(h.completedAt).toBeGreaterThan(h.startedAt)
  })

  it('killed hosts that restart resume and finish; those that do not are left out', () => {
    const failures = { killFraction: 1, fromMs: 1000, toMs: 5000, restartFraction: 1, restartAfterMs: 2000 }
    const restarted = simulate(scenario({ hosts: 8, latencyMs: 1, failures }))
    expect(restarted.hosts.every(h => h.completedAt !== undefined && !h.killed)).toBe(true)

    const gone = simulate(scenario({ hosts: 8, latencyMs: 1, failures: { ...failures, killFraction: 0.5, restartFraction: 0 } }))
    const killed = gone.hosts.filter(h => h.killed)
    expect(killed.length).toBeGreaterThan(0)
    for (const h of gone.hosts) expect(h.killed || h.completedAt !== undefined).toBe(true)
  })

  it('reports progress without changing the run, and a stopped run says how far it got', () => {
    const s = scenario({ hosts: 12, latencyMs: 1 })
    const plain = simulate(s)
    expect(plain.chunksHeld).toBe(plain.chunksTotal)
    const seen: Progress[] = []
    const watched = simulate(s, { onProgress: p => seen.push(p), progressEveryMs: 1000 })
    expect(watched.events).toBe(plain.events)
    expect(watched.hosts.map(h => h.completedAt)).toEqual(plain.hosts.map(h => h.completedAt))
    expect(seen.length).toBeGreaterThan(2)
    for (let k = 1; k < seen.length; k++) expect(seen[k]!.chunksHeld).toBeGreaterThanOrEqual(seen[k - 1]!.chunksHeld)
    expect(seen.at(-1)!.chunksHeld).toBeLessThan(plain.chunksTotal)

    // stop() is asked every 65,536 events: this run (100 hosts × 256 chunks) has more than that.
    const big = scenario({ hosts: 100, chunkSize: 256 * 1024 })
    const stopped = simulate(big, { stop: () => true })
    expect(stopped.stopped).toBe(true)
    expect(stopped.events).toBeLessThan(2 ** 16)
    expect(stopped.chunksHeld).toBeGreaterThan(0)
    expect(stopped.chunksHeld).toBeLessThan(stopped.chunksTotal)
    expect(stopped.hosts.some(h => h.completedAt === undefined)).toBe(true)
  })
})
