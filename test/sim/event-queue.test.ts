import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../src/sim/event-queue.ts'

describe('EventQueue', () => {
  it('runs events in time order, and same-time events in the order they were scheduled', () => {
    const q = new EventQueue()
    const seen: string[] = []
    q.at(5, () => seen.push('b@5'))
    q.at(1, () => seen.push('a@1'))
    q.at(5, () => seen.push('c@5'))
    q.at(3, () => q.after(2, () => seen.push(`d@${q.now}`)))
    q.run()
    expect(seen).toEqual(['a@1', 'b@5', 'c@5', 'd@5'])
    expect(q.now).toBe(5)
  })

  it('skips cancelled events and stops at `until` or when asked', () => {
    const q = new EventQueue()
    const seen: number[] = []
    const e = q.at(1, () => seen.push(1))
    q.at(2, () => seen.push(2))
    q.at(3, () => seen.push(3))
    q.at(10, () => seen.push(10))
    q.cancel(e)
    q.run(5, () => seen.length >= 2)
    expect(seen).toEqual([2, 3])
    q.run(5)
    expect(seen).toEqual([2, 3])
    q.run()
    expect(seen).toEqual([2, 3, 10])
  })

  it('runs deferred work at the same instant, before the next event', () => {
    const q = new EventQueue()
    const seen: string[] = []
    q.at(1, () => {
      q.defer(() => {
        seen.push(`deferred@${q.now}`)
        q.defer(() => seen.push(`nested@${q.now}`))
      })
      seen.push('event@1')
    })
    q.at(1, () => seen.push('second@1'))
    q.run()
    expect(seen).toEqual(['event@1', 'deferred@1', 'nested@1', 'second@1'])
  })

  it('never moves the clock back', () => {
    const q = new EventQueue()
    let at = -1
    q.at(4, () => q.at(2, () => { at = q.now }))
    q.run()
    expect(at).toBe(4)
  })

  it('moves a waiting event in place, behind what is already scheduled for its new time', () => {
    const q = new EventQueue()
    const seen: string[] = []
    const a = q.at(1, () => seen.push(`a@${q.now}`))
    const b = q.at(2, () => seen.push(`b@${q.now}`))
    q.at(5, () => seen.push(`c@${q.now}`))
    expect(q.reschedule(a, 5)).toBe(a)
    q.reschedule(b, 0.5)
    expect(q.size).toBe(3)
    q.run()
    expect(seen).toEqual(['b@0.5', 'c@5', 'a@5'])
  })

  it('keeps a handle harmless once its event ran or was cancelled, also after its slot is reused', () => {
    const q = new EventQueue()
    const seen: string[] = []
    const first = q.at(1, () => seen.push('first'))
    q.run()
    const second = q.at(2, () => seen.push('second'))
    q.cancel(first)
    expect(q.reschedule(first, 3)).toBeUndefined()
    expect(q.size).toBe(1)
    q.cancel(second)
    q.cancel(second)
    expect(q.size).toBe(0)
    q.at(4, () => seen.push('third'))
    q.run()
    expect(seen).toEqual(['first', 'third'])
  })
})
