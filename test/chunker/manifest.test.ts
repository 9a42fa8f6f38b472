import { describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import {
  chunkLayout, createHeader, filesOf, spansOf, createManifest, decodeHeader, decodeManifest, encodeHeader, encodeManifest,
  headerId, manifestId, MANIFEST_FORMAT, type ManifestFile
} from '../../src/chunker/manifest.ts'
import { ManifestError } from '../../src/errors.ts'

const h32 = (s: string): Uint8Array => createHash('sha256').update(s).digest()

function sample (files: ManifestFile[], chunkSize = 1024) {
  const header = createHeader({ name: 'qa-llm', version: '2026-11-24T10-00', chunkSize, files })
  const { count } = chunkLayout(header)
  return createManifest(header, Array.from({ length: count }, (_, i) => h32(String(i))))
}

/** Re-encodes a manifest object the way an attacker or a buggy tool might hand-write it. */
function raw (obj: unknown): Uint8Array { return Buffer.from(JSON.stringify(obj)) }

function validObject (): Record<string, unknown> {
  return JSON.parse(Buffer.from(encodeManifest(sample([{ path: 'a.bin', size: 3000, mode: 0o644 }]))).toString())
}

describe('chunk layout', () => {
  it('packs small files whole into shared chunks and starts each large file on a chunk of its own', () => {
    const header = createHeader({
      name: 'm', version: '1', chunkSize: 1024,
      files: [
        { path: 'a', size: 1024, mode: 0o644 },
        { path: 'b', size: 0, mode: 0o644 },
        { path: 'c', size: 100, mode: 0o644 },
        { path: 'd', size: 900, mode: 0o644 },
        { path: 'e', size: 100, mode: 0o644 },
        { path: 'f/g', size: 2049, mode: 0o755 },
        { path: 'h', size: 10, mode: 0o644 }
      ]
    })
    const l = chunkLayout(header)
    expect(l.count).toBe(7)
    expect(l.totalSize).toBe(1024 + 100 + 900 + 100 + 2049 + 10)
    const spans = Array.from({ length: l.count }, (_, i) => spansOf(l, i).map(s => [header.files[s.file]!.path, s.offset, s.length]))
    expect(spans).toEqual([
      [['a', 0, 1024]],
      [['c', 0, 100], ['d', 0, 900]], // c and d fit in one chunk
      [['e', 0, 100]], // e would overflow it: a new chunk, never a split file
      [['f/g', 0, 1024]], [['f/g', 1024, 1024]], [['f/g', 2048, 1]], // a large file closes the shared chunk
      [['h', 0, 10]]
    ])
    expect([...l.length]).toEqual([1024, 1000, 100, 1024, 1024, 1, 10])
    expect([...l.firstChunk]).toEqual([0, 1, 1, 1, 2, 3, 6])
    expect([...l.endChunk]).toEqual([1, 1, 2, 2, 3, 6, 7])
    expect(filesOf(l, 1)).toEqual([2, 3])
    expect(spansOf(l, 1).map(s => s.at)).toEqual([0, 100]) // where each span starts in its chunk
  })

  it('puts 5,000 files of 1–4 KiB into a handful of chunks', () => {
    const files = Array.from({ length: 5000 }, (_, i) => ({ path: `p${String(i).padStart(5, '0')}`, size: 1024 + (i * 7919) % 3072, mode: 0o644 }))
    const l = chunkLayout(createHeader({ name: 'm', version: '1', chunkSize: 4 * 1024 * 1024, files }))
    expect(l.count).toBeLessThanOrEqual(Math.ceil(l.totalSize / (4 * 1024 * 1024 - 4096)))
    expect([...l.length].reduce((a, b) => a + b, 0)).toBe(l.totalSize)
  })

  it('handles offsets past 4 GiB exactly', () => {
    const header = createHeader({ name: 'm', version: '1', chunkSize: 64 * 1024 * 1024, files: [{ path: 'big', size: 5 * 2 ** 30 + 7, mode: 0o644 }] })
    const l = chunkLayout(header)
    expect(l.count).toBe(81)
    expect(spansOf(l, 80)).toEqual([{ file: 0, offset: 5 * 2 ** 30, length: 7, at: 0 }])
    expect(l.length[80]).toBe(7)
  })
})

describe('manifest encoding', () => {
  it('round-trips and ids are stable hashes of canonical bytes', () => {
    const m = sample([{ path: 'b/x', size: 5000, mode: 0o644 }, { path: 'a', size: 0, mode: 0o600 }])
    const bytes = encodeManifest(m)
    const back = decodeManifest(bytes)
    expect(back.files.map(f => f.path)).toEqual(['a', 'b/x'])
    expect(Buffer.from(encodeManifest(back)).equals(Buffer.from(bytes))).toBe(true)
    expect(manifestId(back)).toBe(createHash('sha256').update(bytes).digest('hex'))
    expect(headerId(back)).toBe(createHash('sha256').update(encodeHeader(back)).digest('hex'))
    expect(decodeHeader(encodeHeader(m)).files).toEqual(m.files)
  })

  it('different content gives a different id', () => {
    const a = sample([{ path: 'a', size: 10, mode: 0o644 }])
    const b = sample([{ path: 'a', size: 11, mode: 0o644 }])
    expect(manifestId(a)).not.toBe(manifestId(b))
  })
})

describe('manifest validation rejects', () => {
  const cases: Array<[string, (o: Record<string, any>) => unknown]> = [
    ['non-JSON', () => 'not json{'],
    ['an array', () => []],
    ['null', () => null],
    ['wrong format tag', o => ({ ...o, format: 'modelswarm-manifest/1' })],
    ['unknown top-level field', o => ({ ...o, extra: 1 })],
    ['bad name', o => ({ ...o, name: '../x' })],
    ['empty name', o => ({ ...o, name: '' })],
    ['name with @', o => ({ ...o, name: 'a@b' })],
    ['reserved version latest', o => ({ ...o, version: 'latest' })],
    ['version with slash', o => ({ ...o, version: 'a/b' })],
    ['chunk size zero', o => ({ ...o, chunkSize: 0 })],
    ['chunk size fractional', o => ({ ...o, chunkSize: 1024.5 })],
    ['chunk size as string', o => ({ ...o, chunkSize: '1024' })],
    ['chunk size too large', o => ({ ...o, chunkSize: 2 ** 31 })],
    ['files not an array', o => ({ ...o, files: {} })],
    ['file not an object', o => ({ ...o, files: ['a'] })],
    ['file with extra field', o => ({ ...o, files: [{ ...o.files[0], owner: 'root' }] })],
    ['absolute path', o => ({ ...o, files: [{ ...o.files[0], path: '/etc/passwd' }] })],
    ['dot-dot path', o => ({ ...o, files: [{ ...o.files[0], path: '../escape' }] })],
    ['inner dot-dot', o => ({ ...o, files: [{ ...o.files[0], path: 'a/../../b' }] })],
    ['dot segment', o => ({ ...o, files: [{ ...o.files[0], path: './a' }] })],
    ['empty segment', o => ({ ...o, files: [{ ...o.files[0], path: 'a//b' }] })],
    ['trailing slash', o => ({ ...o, files: [{ ...o.files[0], path: 'a/' }] })],
    ['empty path', o => ({ ...o, files: [{ ...o.files[0], path: '' }] })],
    ['backslash', o => ({ ...o, files: [{ ...o.files[0], path: '..\\evil' }] })],
    ['NUL byte', o => ({ ...o, files: [{ ...o.files[0], path: 'a\u0000b' }] })],
    ['newline', o => ({ ...o, files: [{ ...o.files[0], path: 'a\nb' }] })],
    ['negative size', o => ({ ...o, files: [{ ...o.files[0], size: -1 }] })],
    ['unsafe size', o => ({ ...o, files: [{ ...o.files[0], size: 2 ** 60 }] })],
    ['mode beyond permission bits', o => ({ ...o, files: [{ ...o.files[0], mode: 0o4755 }] })],
    ['duplicate paths', o => ({ ...o, files: [o.files[0], o.files[0]], chunks: [...o.chunks, ...o.chunks] })],
    ['unsorted files', o => ({ ...o, files: [{ path: 'b', size: 0, mode: 420 }, { path: 'a', size: 0, mode: 420 }], chunks: [] })],
    ['file that is also a directory', o => ({ ...o, files: [{ path: 'a', size: 0, mode: 420 }, { path: 'a/b', size: 0, mode: 420 }], chunks: [] })],
    ['too few chunk hashes', o => ({ ...o, chunks: o.chunks.slice(1) })],
    ['too many chunk hashes', o => ({ ...o, chunks: [...o.chunks, o.chunks[0]] })],
    ['uppercase hex hash', o => ({ ...o, chunks: o.chunks.map((c: string) => c.toUpperCase()) })],
    ['short hash', o => ({ ...o, chunks: o.chunks.map((c: string) => c.slice(2)) })],
    ['hash as number', o => ({ ...o, chunks: o.chunks.map(() => 1) })],
    ['chunks not an array', o => ({ ...o, chunks: 'abc' })],
    ['too many chunks for the limit', o => ({ ...o, chunkSize: 1024, files: [{ path: 'a', size: 2 ** 40, mode: 420 }] })]
  ]
  for (const [what, mutate] of cases) {
    it(what, () => {
      const mutated = mutate(validObject())
      const bytes = typeof mutated === 'string' ? Buffer.from(mutated) : raw(mutated)
      expect(() => decodeManifest(bytes)).toThrow(ManifestError)
    })
  }

  it('non-canonical whitespace or key order', () => {
    const o = validObject()
    expect(() => decodeManifest(Buffer.from(JSON.stringify(o, null, 2)))).toThrow(/canonical/)
    const { format, ...rest } = o
    expect(() => decodeManifest(raw({ ...rest, format }))).toThrow(/canonical/)
    expect(decodeManifest(raw(o)).name).toBe('qa-llm')
    expect(o.format).toBe(MANIFEST_FORMAT)
  })

  it('a header where a manifest is expected, and the reverse', () => {
    const m = sample([{ path: 'a', size: 2000, mode: 0o644 }])
    expect(() => decodeManifest(encodeHeader(m))).toThrow(ManifestError)
    expect(() => decodeHeader(encodeManifest(m))).toThrow(/unknown field "chunks"/)
  })

  it('errors carry a stable code', () => {
    try {
      decodeManifest(Buffer.from('{}'))
      expect.unreachable()
    } catch (err) {
      expect((err as ManifestError).code).toBe('MS_BAD_MANIFEST')
    }
  })

  it('createManifest checks hash count and size', () => {
    const header = createHeader({ name: 'm', version: '1', chunkSize: 1024, files: [{ path: 'a', size: 2048, mode: 0o644 }] })
    expect(() => createManifest(header, [h32('x')])).toThrow(ManifestError)
    expect(() => createManifest(header, [h32('x'), new Uint8Array(31)])).toThrow(ManifestError)
  })
})
