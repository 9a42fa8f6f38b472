/**
 * Byte ranges of an object: the HTTP `Range` header as S3 reads it (one range, RFC 9110 §14.1.2), and which
 * chunks of a version hold a file's bytes.
 */
import { spansOf, type ChunkLayout } from '../chunker/manifest.ts'

/** An inclusive byte range [start, end] of an object, as Content-Range writes it. */
export interface ByteRange { start: number, end: number }

/**
 * What a `Range` header asks of an object of `size` bytes: `undefined` for the whole object (no header, or
 * one S3 ignores: another unit, several ranges, bad syntax), `'unsatisfiable'` (→ 416 InvalidRange), or one
 * inclusive range clamped to the object.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    // A suffix: the last N bytes.
    const n = Number(m[2])
    if (n === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? Infinity : Number(m[2])
  if (end < start) return undefined
  if (start >= size) return 'unsatisfiable'
  return { start, end: Math.min(end, size - 1) }
}

/** A part of a file range that one chunk holds, in file order. */
export interface RangePart { chunk: number, fileOffset: number, length: number }

/**
 * The chunks holding bytes [start, end] (inclusive) of file `file`, with the part of the range each holds,
 * in file order (a packed small file is in one chunk, shared with others). O(chunks of the file).
 */
export function rangeParts (layout: ChunkLayout, file: number, start: number, end: number): RangePart[] {
  const parts: RangePart[] = []
  for (let i = layout.firstChunk[file]!; i < layout.endChunk[file]!; i++) {
    for (const span of spansOf(layout, i)) {
      if (span.file !== file) continue
      const from = Math.max(start, span.offset)
      const to = Math.min(end, span.offset + span.length - 1)
      if (from <= to) parts.push({ chunk: i, fileOffset: from, length: to - from + 1 })
    }
  }
  return parts
}
