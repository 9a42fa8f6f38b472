import { describe, expect, it } from 'vitest'
import { versionsToRemove } from '../../src/peer/keep-versions.ts'

const held = (...vs: Array<[string, number]>): Array<{ version: string, completedAt: number }> => vs.map(([version, completedAt]) => ({ version, completedAt }))

describe('versionsToRemove', () => {
  it('keeps the K most recently completed and removes the rest, oldest first', () => {
    expect(versionsToRemove(held(['a', 1], ['c', 3], ['b', 2], ['d', 4]), 2, new Set())).toEqual(['a', 'b'])
  })

  it('never removes a version in use, even beyond K', () => {
    expect(versionsToRemove(held(['a', 1], ['b', 2], ['c', 3]), 1, new Set(['a']))).toEqual(['b'])
  })

  it('orders by completion time, not by name', () => {
    expect(versionsToRemove(held(['z-old', 1], ['a-new', 2]), 1, new Set())).toEqual(['z-old'])
  })

  it('keeps everything when K covers what is held, and breaks time ties by name', () => {
    expect(versionsToRemove(held(['a', 1], ['b', 2]), 5, new Set())).toEqual([])
    expect(versionsToRemove(held(['v1', 5], ['v2', 5]), 1, new Set())).toEqual(['v1'])
  })

  it('keep 0 removes all but what is in use', () => {
    expect(versionsToRemove(held(['a', 1], ['b', 2]), 0, new Set(['b']))).toEqual(['a'])
  })
})
