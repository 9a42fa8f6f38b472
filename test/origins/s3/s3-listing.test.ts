import { describe, expect, it } from 'vitest'
import { revisionOf } from '../../../src/origins/origin.ts'
import { childNames, listingOf, stampOf, type S3ObjectInfo } from '../../../src/origins/s3/s3-listing.ts'

const at = (iso: string): Date => new Date(iso)
const obj = (key: string, size: number, etag = '"e1"', lastModified = at('2026-11-30T10:00:00.123Z')): S3ObjectInfo => ({ key, size, etag, lastModified })

describe('S3 listings to the origin view', () => {
  it('names one level below a prefix from common prefixes', () => {
    expect(childNames('p/', ['p/llm/', 'p/qa/', 'other/x/', 'p/'])).toEqual(['llm', 'qa'])
    expect(childNames('', ['llm/', 'qa/'])).toEqual(['llm', 'qa'])
  })

  it('turns a version\'s objects into files, parent directories and stamps; the marker and folder placeholders are no files', () => {
    const listing = listingOf('p/llm/v1/', [
      obj('p/llm/v1/model.safetensors', 1000, '"abc"'),
      obj('p/llm/v1/tokenizer/vocab/merges.txt', 10),
      obj('p/llm/v1/_SUCCESS', 0),
      obj('p/llm/v1/empty-dir/', 0),
      obj('p/llm/v1/config.json', 0)
    ], '_SUCCESS')
    expect(listing.files).toEqual([
      { path: 'config.json', size: 0, mode: 0o644 },
      { path: 'model.safetensors', size: 1000, mode: 0o644 },
      { path: 'tokenizer/vocab/merges.txt', size: 10, mode: 0o644 }
    ])
    expect(listing.dirs).toEqual([{ path: 'empty-dir', mode: 0o755 }, { path: 'tokenizer', mode: 0o755 }, { path: 'tokenizer/vocab', mode: 0o755 }])
    expect(listing.stamps['model.safetensors']).toBe('1000:abc:1796032800')
    expect(Object.keys(listing.stamps).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer/vocab/merges.txt'])
  })

  it('a stamp is the same from a listing (milliseconds) and a HEAD (whole seconds, quoted or bare ETag)', () => {
    expect(stampOf({ size: 5, etag: '"abc"', lastModified: at('2026-11-30T10:00:00.999Z') })).toBe(stampOf({ size: 5, etag: 'abc', lastModified: at('2026-11-30T10:00:00Z') }))
  })

  it('an object uploaded again changes the revision, even with the same size, whether its ETag or only its time moved', () => {
    const before = listingOf('v/', [obj('v/a.bin', 100, '"e1"', at('2026-11-30T10:00:00Z'))], '_SUCCESS')
    const otherBytes = listingOf('v/', [obj('v/a.bin', 100, '"e2"', at('2026-11-30T10:00:00Z'))], '_SUCCESS')
    const reuploaded = listingOf('v/', [obj('v/a.bin', 100, '"e1"', at('2026-11-30T10:05:00Z'))], '_SUCCESS')
    expect(revisionOf(otherBytes)).not.toBe(revisionOf(before))
    expect(revisionOf(reuploaded)).not.toBe(revisionOf(before))
    expect(revisionOf(listingOf('v/', [obj('v/a.bin', 100, '"e1"', at('2026-11-30T10:00:00.5Z'))], '_SUCCESS'))).toBe(revisionOf(before))
  })

  it('refuses keys that are no relative path, and a name that is both an object and a prefix', () => {
    for (const key of ['v/a//b', 'v/../x', 'v/./x', 'v//x']) {
      expect(() => listingOf('v/', [obj(key, 1)], '_SUCCESS'), key).toThrow(expect.objectContaining({ code: 'MS_INVALID_INPUT' }))
    }
    expect(() => listingOf('v/', [obj('v/a', 1), obj('v/a/b', 1)], '_SUCCESS')).toThrow(/both a file and a directory/)
  })
})
