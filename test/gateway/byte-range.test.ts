import { describe, expect, it } from 'vitest'
import { createHeader, chunkLayout } from '../../src/chunker/manifest.ts'
import { parseRange, rangeParts } from '../../src/gateway/byte-range.ts'

describe('parseRange', () => {
  it('reads one byte range as S3 does, clamped to the object', () => {
    expect(parseRange(undefined, 100)).toBeUndefined()
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 })
    expect(parseRange('bytes=90-200', 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange('bytes=95-', 100)).toEqual({ start: 95, end: 99 })
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange('bytes=-500', 100)).toEqual({ start: 0, end: 99 })
  })

  it('says unsatisfiable for a start past the end, a zero suffix or any range of an empty object', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=100000-', 40)).toBe('unsatisfiable')
    expect(parseRange('bytes=100-200', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable')
  })

  it('ignores what S3 ignores: other units, several ranges, reversed or malformed ranges', () => {
    for (const h of ['items=0-1', 'bytes=0-1,5-6', 'bytes=9-3', 'bytes=-', 'bytes=a-b', '']) expect(parseRange(h, 100), h).toBeUndefined()
  })
})

describe('rangeParts', () => {
  const header = createHeader({
    name: 'm', version: 'v1', chunkSize: 1024,
    files: [{ path: 'a.bin', size: 2500, mode: 0o644 }, { path: 'b.bin', size: 1024, mode: 0o644 }, { path: 'c.txt', size: 0, mode: 0o644 }]
  })
  const layout = chunkLayout(header)

  it('maps a file byte range to the chunks holding it, with the part each holds', () => {
    expect(rangeParts(layout, 0, 0, 2499)).toEqual([
      { chunk: 0, fileOffset: 0, length: 1024 }, { chunk: 1, fileOffset: 1024, length: 1024 }, { chunk: 2, fileOffset: 2048, length: 452 }
    ])
    expect(rangeParts(layout, 0, 1000, 1100)).toEqual([{ chunk: 0, fileOffset: 1000, length: 24 }, { chunk: 1, fileOffset: 1024, length: 77 }])
    expect(rangeParts(layout, 1, 10, 19)).toEqual([{ chunk: 3, fileOffset: 10, length: 10 }])
    expect(rangeParts(layout, 2, 0, -1)).toEqual([])
  })

  it('finds a packed small file in the chunk it shares with others', () => {
    const packed = chunkLayout(createHeader({
      name: 'm', version: 'v1', chunkSize: 1024,
      files: [{ path: 'a', size: 300, mode: 0o644 }, { path: 'b', size: 300, mode: 0o644 }, { path: 'c', size: 2048, mode: 0o644 }, { path: 'd', size: 10, mode: 0o644 }]
    }))
    expect(rangeParts(packed, 1, 0, 299)).toEqual([{ chunk: 0, fileOffset: 0, length: 300 }])
    expect(rangeParts(packed, 2, 1000, 1100)).toEqual([{ chunk: 1, fileOffset: 1000, length: 24 }, { chunk: 2, fileOffset: 1024, length: 77 }])
    expect(rangeParts(packed, 3, 5, 9)).toEqual([{ chunk: 3, fileOffset: 5, length: 5 }])
  })
})
