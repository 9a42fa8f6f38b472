import { describe, expect, it } from 'vitest'
import { liveness, readiness, type ReadinessInput } from '../../src/seeder/health.ts'

const base: ReadinessInput = {
  snapshot: { versions: [], line: { origin: 'dir:/o', at: 0, originBytesRead: 0, bytesPulled: 0, bytesRetried: 0, bytesCopied: 0 } },
  recovering: false,
  originDownSince: undefined,
  originError: undefined,
  pins: new Set(),
  originGraceMs: 60_000,
  now: 1_000_000
}

describe('seeder readiness and liveness', () => {
  it('is ready with the origin up, nothing pinned failing and the cache recovered', () => {
    expect(readiness(base)).toEqual({ ok: true, reasons: [] })
  })

  it('is not ready while recovering the cache', () => {
    expect(readiness({ ...base, recovering: true })).toMatchObject({ ok: false, reasons: [expect.stringMatching(/recovering/)] })
  })

  it('stays ready through an origin outage shorter than the grace, not longer', () => {
    const down = { ...base, originDownSince: base.now - 59_000, originError: 'ECONNREFUSED' }
    expect(readiness(down).ok).toBe(true)
    expect(readiness({ ...down, originDownSince: base.now - 61_000 })).toMatchObject({ ok: false, reasons: ['origin unreachable for 61 s: ECONNREFUSED'] })
  })

  it('is not ready when a pinned version failed; an unpinned failure does not count', () => {
    const snapshot = { ...base.snapshot, versions: [{ name: 'm', version: 'v1', state: 'failed' as const, error: 'access denied' }] }
    expect(readiness({ ...base, snapshot }).ok).toBe(true)
    expect(readiness({ ...base, snapshot, pins: new Set(['m@v1']) })).toMatchObject({ ok: false, reasons: ['pinned m@v1 cannot be served: access denied'] })
  })

  it('is not alive once the event loop stalled past the limit', () => {
    expect(liveness(50, 10_000).ok).toBe(true)
    expect(liveness(12_000, 10_000)).toEqual({ ok: false, reasons: ['event loop stalled for 12000 ms'] })
  })
})
