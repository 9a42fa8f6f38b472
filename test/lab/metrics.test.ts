import { describe, expect, it } from 'vitest'
import { completionCdf, cumulativeBytes, goodputAtGoal, hostCap, lowerBound, percentile, summarize, summarizeFollow, summarizeShard, uploadUse, type LabParams } from '../../src/lab/metrics.ts'
import { ratioLines, scenarioLines } from '../../src/lab/report.ts'
import type { RunResult } from '../../src/lab/run-result.ts'

const MIB = 2 ** 20
const params: LabParams = { hosts: 8, size: 64 * MIB, files: 4, line: 12.5e6, up: 3.125e6, down: 12.5e6, seederUp: 6.25e6 }

describe('lab figures', () => {
  it('bounds the last host by the slowest of line, one download and all copies through all uploads', () => {
    // N·F/(u_s + N·u) = 8 · 64 MiB / 31.25 MB/s dominates F/L = F/d = 5.37 s.
    expect(lowerBound(params)).toBeCloseTo(8 * 64 * MIB / 31.25e6, 6)
    expect(lowerBound({ ...params, line: 1e6 })).toBeCloseTo(64 * MIB / 1e6, 6)
    expect(lowerBound({ ...params, hosts: 1, down: 1e6 })).toBeCloseTo(64 * MIB / 1e6, 6)
    // One host: the seeder must send every byte itself, whatever the host's own upload.
    expect(lowerBound({ ...params, hosts: 1 })).toBeCloseTo(64 * MIB / 6.25e6, 6)
  })

  it('caps a host at its download or its share of all uploads, whichever is less', () => {
    expect(hostCap(params)).toBeCloseTo(31.25e6 / 8, 6)
    expect(hostCap({ ...params, up: 20e6 })).toBe(12.5e6)
  })

  it('measures upload use per span from the switch-side counters, interpolating between samples', () => {
    // Two hosts (u = 100 B/s each) and the seeder (u_s = 200 B/s); samples every second from t0 = 10 s.
    const sample = (s: number, h0: number, h1: number, seed: number): RunResult['samples'][number] =>
      ({ at: 10_000 + s * 1000, ifs: { h0: { rx: h0, tx: 0 }, h1: { rx: h1, tx: 0 }, seed: { rx: seed, tx: 0 } } })
    const run: RunResult = {
      system: 'modelswarm',
      scenario: 'warm',
      t0: 10_000,
      end: 14_000,
      hosts: [{ host: 'h0', startedMs: 0, doneMs: 2000, verified: true }, { host: 'h1', startedMs: 0, doneMs: 4000, verified: true }],
      samples: [sample(-1, 0, 0, 0), sample(0, 0, 0, 0), sample(2, 100, 60, 400), sample(4, 300, 260, 400)],
      lineBytes: 0,
      seederEgress: 400,
      notes: []
    }
    const p: LabParams = { ...params, hosts: 2, up: 100, seederUp: 200 }
    const use = uploadUse(run, p, 4)
    expect(use.map(u => [u.from, u.to, u.done])).toEqual([[0, 1, 0], [1, 2, 1], [2, 3, 1], [3, 4, 2]])
    // 0–2 s: hosts sent 160 B of a possible 400, the seeder 400 of 400; 2–4 s: hosts 400 of 400, the seeder idle.
    expect(use[0]!.hosts).toBeCloseTo(0.4, 9)
    expect(use[1]!.hosts).toBeCloseTo(0.4, 9)
    expect(use[2]!.hosts).toBeCloseTo(1, 9)
    expect(use[0]!.seeder).toBeCloseTo(1, 9)
    expect(use[3]!.seeder).toBe(0)
    // No seeder interface (the direct baseline's has one, a run without is possible): NaN, not 0.
    const bare = { ...run, samples: run.samples.map(s => ({ at: s.at, ifs: { h0: s.ifs.h0!, h1: s.ifs.h1! } })) }
    expect(uploadUse(bare, p, 1)[0]!.seeder).toBeNaN()
    // Samples without the machine's CPU time: NaN, not 0 (0 would read as idle cores).
    expect(use[0]!.cpu).toBeNaN()
    // Samples out of order are taken in time order; before the first sample and after the last, their values.
    const shuffled = { ...run, samples: [run.samples[2]!, run.samples[0]!, run.samples[3]!, run.samples[1]!] }
    expect(uploadUse(shuffled, p, 4)).toEqual(use)
    const early = { ...run, samples: run.samples.slice(2) }
    expect(uploadUse(early, p, 2).map(u => u.hosts)).toEqual([0, 1])
    const late = { ...run, end: 16_000 }
    expect(uploadUse(late, p, 3).map(u => u.hosts)).toEqual([0.4, 1, 0])
    // A host that never finished: the spans run to the run's end; a run of no length has none.
    expect(uploadUse({ ...late, hosts: [run.hosts[0]!, { host: 'h1', startedMs: 0, verified: false }] }, p, 3).map(u => u.done)).toEqual([1, 1, 1])
    expect(uploadUse({ ...run, end: run.t0 }, p)).toEqual([])
  })

  it('gives the share of the machine\'s cores busy per span, from the CPU ticks each sample read', () => {
    // Two cores (200 ticks a second): all busy in the first second, a quarter in the next two.
    const sample = (s: number, busy: number): RunResult['samples'][number] => ({ at: 10_000 + s * 1000, ifs: { h0: { rx: 0, tx: 0 } }, cpu: { busy, total: 1000 + s * 200 } })
    const run: RunResult = {
      system: 'modelswarm',
      scenario: 'warm',
      t0: 10_000,
      end: 13_000,
      hosts: [{ host: 'h0', startedMs: 0, doneMs: 3000, verified: true }],
      samples: [sample(0, 500), sample(1, 700), sample(3, 800)],
      lineBytes: 0,
      seederEgress: 0,
      notes: []
    }
    expect(uploadUse(run, { ...params, hosts: 1 }, 3).map(u => u.cpu)).toEqual([1, 0.25, 0.25])
  })

  it('takes nearest-rank percentiles', () => {
    const v = [5, 1, 4, 2, 3]
    expect(percentile(v, 0.5)).toBe(3)
    expect(percentile(v, 0.99)).toBe(5)
    expect(percentile(v, 0.2)).toBe(1)
    expect(percentile([], 0.5)).toBeNaN()
  })

  it('summarizes a run: hosts that never completed count as not done, restarted hosts get no goodput', () => {
    const run: RunResult = {
      system: 'modelswarm',
      scenario: 'churn',
      t0: 1000,
      end: 31_000,
      hosts: [
        { host: 'h0', startedMs: 0, doneMs: 20_000, ownSeconds: 16, verified: true },
        { host: 'h1', startedMs: 0, doneMs: 30_000, ownSeconds: 5, verified: true, killed: true, restarted: true },
        { host: 'h2', startedMs: 0, verified: false, killed: true }
      ],
      samples: [],
      lineBytes: 65 * MIB,
      seederEgress: 128 * MIB,
      notes: []
    }
    const s = summarize(run, { ...params, hosts: 3 })
    expect(s.completed).toBe(2)
    expect(s.total).toBe(2)
    expect(s.lastCommon).toBe(30)
    expect(s.lastOwn).toBe(16)
    expect(s.p50).toBe(20)
    expect(s.lineOverF).toBeCloseTo(65 / 64, 9)
    expect(s.seederOverF).toBe(2)
    expect(s.goodputOverCap[0]).toBeCloseTo(64 * MIB / 16 / ((6.25e6 + 3 * 3.125e6) / 3), 9)
    expect(s.goodputOverCap[1]).toBeUndefined()
    expect(completionCdf(run)).toEqual([[20, 1 / 3], [30, 2 / 3]])
  })

  it('counts the hosts at the goodput goal unrounded: 0.8998 is short of 0.9 though two places print 0.90', () => {
    const base = summarize({ system: 'modelswarm', scenario: 'warm', t0: 0, end: 1, hosts: [], samples: [], lineBytes: 0, seederEgress: 0, notes: [] }, params)
    const s = { ...base, goodputOverCap: [0.95, 0.8998, undefined, 0.9] }
    expect(goodputAtGoal(s)).toEqual({ met: 2, counted: 3, lowest: 0.8998 })
    expect(ratioLines([s])[0]).toMatch(/goodput ÷ cap ≥ 0\.9: 2 of 3 hosts \(lowest 0\.89980\)$/)
    expect(goodputAtGoal({ ...base, goodputOverCap: [undefined] })).toEqual({ met: 0, counted: 0, lowest: NaN })
  })

  it('turns counter samples into bytes since the first sample, in seconds from t0', () => {
    const samples = [
      { at: 500, ifs: { off: { rx: 100, tx: 0 } } },
      { at: 1500, ifs: { off: { rx: 400, tx: 0 } } }
    ]
    expect(cumulativeBytes(samples, 1000, 'off', 'rx')).toEqual([[-0.5, 0], [0.5, 300]])
  })

  it('measures follow from the publish: last switch against the one-version bound, the seeder\'s notice, the new version\'s line bytes', () => {
    const run: RunResult = {
      system: 'modelswarm',
      scenario: 'follow',
      t0: 100_000,
      end: 140_000,
      hosts: [
        { host: 'h0', startedMs: -60_000, noticedMs: 900, doneMs: 30_000, ownSeconds: 28, verified: true },
        { host: 'h1', startedMs: -60_000, noticedMs: 1200, doneMs: 38_200, ownSeconds: 36, verified: true }
      ],
      samples: [],
      lineBytes: 64.5 * MIB,
      seederEgress: 70 * MIB,
      follow: { publishCallMs: 20, seederNoticedMs: 480, seederPulledMs: 6000, seederPollMs: 500, followIntervalMs: 500, firstVersionMs: 45_000 },
      notes: []
    }
    const f = summarizeFollow(run, { ...params, hosts: 2 })!
    const bound = lowerBound({ ...params, hosts: 2 })
    expect(f.lastSwitch).toBe(38.2)
    expect(f.bound).toBe(bound)
    expect(f.lastOverBound).toBeCloseTo(38.2 / bound, 9)
    expect(f.seederNoticed).toBe(0.48)
    expect([f.seederPoll, f.followInterval]).toEqual([0.5, 0.5])
    expect(f.lineOverF).toBeCloseTo(64.5 / 64, 9)
    expect(summarizeShard(run)).toBeUndefined()
    const lines = scenarioLines([run], { ...params, hosts: 2 })
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(`publish → last host switched 38.20 s ÷ bound ${bound.toFixed(2)} s = ${(38.2 / bound).toFixed(2)}`)
    expect(lines[0]).toContain('seeder noticed the new version after 0.48 s')
  })

  it('takes each host\'s first shard ÷ whole model from its reader\'s ask and from its spawn, skipping hosts that missed either', () => {
    const run: RunResult = {
      system: 'modelswarm',
      scenario: 'shard',
      t0: 0,
      end: 50_000,
      hosts: [
        { host: 'h0', spawnedMs: 0, startedMs: 0, firstShardMs: 4000, doneMs: 40_000, verified: true },
        { host: 'h1', spawnedMs: 0, startedMs: 1000, firstShardMs: 9000, doneMs: 41_000, verified: true },
        { host: 'h2', spawnedMs: 0, startedMs: 2000, firstShardMs: 5000, verified: false },
        // No spawn time: counted from its ask only.
        { host: 'h3', startedMs: 0, firstShardMs: 3000, doneMs: 30_000, verified: true }
      ],
      samples: [],
      lineBytes: 0,
      seederEgress: 64 * MIB,
      shards: 10,
      notes: []
    }
    const s = summarizeShard(run)!
    expect(s.shards).toBe(10)
    expect(s.ratios).toEqual([0.1, 0.2, undefined, 0.1])
    expect(s.median).toBe(0.1)
    expect(s.max).toBe(0.2)
    // h1 asked 1 s after its spawn: from the spawn its wait is 9 of 41 s.
    expect(s.fromSpawn.ratios).toEqual([0.1, 9 / 41, undefined, undefined])
    expect(s.fromSpawn.median).toBe(0.1)
    expect(s.fromSpawn.max).toBe(9 / 41)
    expect(summarizeFollow(run, params)).toBeUndefined()
    expect(scenarioLines([run], params)).toEqual(['modelswarm shard: first shard ÷ whole model verified, per host, from each reader\'s ask: median 0.10, max 0.20 ' +
      '(10 shards; goal ≤ 0.2); from the lab\'s spawn of the reader: median 0.10, max 0.22'])
  })
})
