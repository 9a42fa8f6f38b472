import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { parseProcStat } from '../../src/lab/counters.ts'

describe('parseProcStat', () => {
  it('sums the first line into busy and total ticks, leaving out idle, iowait and the guest times counted in user', () => {
    const text = [
      'cpu  100 5 40 800 20 3 7 2 30 4',
      'cpu0 50 2 20 400 10 1 3 1 15 2',
      'intr 12345 0 0',
      'ctxt 999'
    ].join('\n')
    // total = 100 + 5 + 40 + 800 + 20 + 3 + 7 + 2 = 977 (guest 30 and guest_nice 4 are inside user and nice)
    expect(parseProcStat(text)).toEqual({ busy: 977 - 800 - 20, total: 977 })
    // Older kernels print fewer columns: the missing ones count as 0.
    expect(parseProcStat('cpu  10 0 5 85\n')).toEqual({ busy: 15, total: 100 })
  })

  it('reads nothing from text without a well-formed cpu line', () => {
    expect(parseProcStat('')).toBeUndefined()
    expect(parseProcStat('cpu0 1 2 3 4\n')).toBeUndefined()
    expect(parseProcStat('cpu  1 2 x 4\n')).toBeUndefined()
    expect(parseProcStat('cpu  1 2\n')).toBeUndefined()
  })

  it('parses this machine\'s /proc/stat', () => {
    const t = parseProcStat(readFileSync('/proc/stat', 'utf8'))
    expect(t).toBeDefined()
    expect(t!.total).toBeGreaterThan(0)
    expect(t!.busy).toBeGreaterThanOrEqual(0)
    expect(t!.busy).toBeLessThanOrEqual(t!.total)
  })
})
