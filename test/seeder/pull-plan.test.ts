import { describe, expect, it } from 'vitest'
import { chunkLayout, createHeader } from '../../src/chunker/manifest.ts'
import { planReads } from '../../src/seeder/pull-plan.ts'

const C = 1024
/** a.bin: 10 chunks, b.bin: 2.5 chunks (3, the last short), c.bin: empty. */
const layout = chunkLayout(createHeader({
  name: 'm',
  version: 'v1',
  chunkSize: C,
  files: [{ path: 'a.bin', size: 10 * C, mode: 0o644 }, { path: 'b.bin', size: 2.5 * C, mode: 0o644 }, { path: 'c.bin', size: 0, mode: 0o644 }]
}))
const all = Array.from({ length: layout.count }, (_, i) => i)

describe('planReads', () => {
  it('gives each parallel reader an equal share of a file when ranges may be long', () => {
    const a = all.slice(0, 10)
    expect(planReads(layout, a, { parallel: 2, rangeBytes: 1 << 30 })).toEqual([{ first: 0, count: 5 }, { first: 5, count: 5 }])
  })

  it('caps a range at rangeBytes, in whole chunks', () => {
    expect(planReads(layout, all.slice(0, 10), { parallel: 1, rangeBytes: 3.5 * C })).toEqual([
      { first: 0, count: 3 }, { first: 3, count: 3 }, { first: 6, count: 3 }, { first: 9, count: 1 }
    ])
  })

  it('joins chunks of consecutive files (the puller reads each file once), and counts a short last chunk by its bytes', () => {
    expect(planReads(layout, all, { parallel: 1, rangeBytes: 1 << 30 })).toEqual([{ first: 0, count: 13 }])
    expect(planReads(layout, all, { parallel: 1, rangeBytes: 12.5 * C })).toEqual([{ first: 0, count: 13 }])
    expect(planReads(layout, all, { parallel: 1, rangeBytes: 12.4 * C })).toEqual([{ first: 0, count: 12 }, { first: 12, count: 1 }])
  })

  it('splits at chunks already held', () => {
    expect(planReads(layout, [0, 1, 4, 5, 6, 12], { parallel: 1, rangeBytes: 1 << 30 })).toEqual([
      { first: 0, count: 2 }, { first: 4, count: 3 }, { first: 12, count: 1 }
    ])
  })

  it('reads one chunk at a time when rangeBytes is below a chunk', () => {
    expect(planReads(layout, [2, 3], { parallel: 1, rangeBytes: 1 })).toEqual([{ first: 2, count: 1 }, { first: 3, count: 1 }])
  })

  it('plans nothing when nothing is missing', () => {
    expect(planReads(layout, [], { parallel: 4, rangeBytes: 1 << 30 })).toEqual([])
  })
})
