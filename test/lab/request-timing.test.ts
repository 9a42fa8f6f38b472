import { describe, expect, it } from 'vitest'
import { isUrgentRequestEnd, urgentRequestsNote } from '../../src/lab/request-timing.ts'
import { SWARM_MSG } from '../../src/peer/swarm-log.ts'

const line = (o: Record<string, unknown>): Record<string, unknown> => ({ level: 20, msg: SWARM_MSG.chunkRequestEnded, urgent: true, ...o })

describe('urgent requests in the shard report', () => {
  it('keeps only the end lines of urgent requests', () => {
    expect(isUrgentRequestEnd(line({}))).toBe(true)
    expect(isUrgentRequestEnd(line({ urgent: false }))).toBe(false)
    expect(isUrgentRequestEnd({ msg: SWARM_MSG.downloadComplete, urgent: true })).toBe(false)
  })

  it('counts outcomes and aborted second copies that had bytes, with time to first byte and transfer percentiles', () => {
    const lines = [
      line({ outcome: 'ok', waitMs: 100, transferMs: 500 }),
      line({ outcome: 'ok', waitMs: 300, transferMs: 700 }),
      line({ outcome: 'ok', waitMs: 200, transferMs: 4000 }),
      line({ outcome: 'aborted', waitMs: 900, transferMs: 1200 }),
      line({ outcome: 'aborted', waitMs: 2500 }),
      line({ outcome: 'busy', waitMs: 2 })
    ]
    expect(urgentRequestsNote(lines)).toBe("urgent chunk requests (the hosts' debug logs): 6, 3 delivered, 2 aborted (1 after bytes had come: " +
      'second copies, hedges or endgame); time to the first byte p50 0.20 s, p90 0.90 s; delivered, first byte to last p50 0.70 s, p90 4.00 s, max 4.00 s')
  })

  it('says nothing without debug logs, and n/a where no request got a byte', () => {
    expect(urgentRequestsNote([])).toBeUndefined()
    expect(urgentRequestsNote([line({ outcome: 'busy', waitMs: 3 })])).toContain('p50 n/a')
  })
})
