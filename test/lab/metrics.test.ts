import { describe, expect, it } from 'vitest'
import { completionCdf, cumulativeBytes, lowerBound, percentile, summarize, type LabParams } from '../../src/lab/metrics.ts'
import type { RunResult } from '../../src/lab/run-result.ts'

const MIB = 2 ** 20
const params: LabParams = { hosts: 8, size: 64 * MIB, files: 4, line: 12.5e6, up: 3.125e6, down: 12.5e6, seederUp: 6.25e6 }

describe('lab figures', () => {
  it('bounds the last host by the slowest of line, one download and all copies through all uploads', () => {
    // N·F/(u_s + N·u) = 8 · 64 MiB / 31.25 MB/s dominates F/L = F/d = 5.37 s.
    expect(lowerBound(params)).toBeCloseTo(8 * 64 * MIB / 31.25e6, 6)
    expect(lowerBound({ ...params, line: 1e6 })).toBeCloseTo(64 * MIB / 1e6, 6)
    expect(lowerBound({ ...params, hosts: 1, down: 1e6 })).toBeCloseTo(64 * MIB / 1e6, 6)
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
    expect(s.goodputOverCap[0]).toBeCloseTo(64 * MIB / 16 / 12.5e6, 9)
    expect(s.goodputOverCap[1]).toBeUndefined()
    expect(completionCdf(run)).toEqual([[20, 1 / 3], [30, 2 / 3]])
  })

  it('turns counter samples into bytes since the first sample, in seconds from t0', () => {
    const samples = [
      { at: 500, ifs: { off: { rx: 100, tx: 0 } } },
      { at: 1500, ifs: { off: { rx: 400, tx: 0 } } }
    ]
    expect(cumulativeBytes(samples, 1000, 'off', 'rx')).toEqual([[-0.5, 0], [0.5, 300]])
  })
})
