import { describe, expect, it } from 'vitest'
import { decodeToken, encodeToken, listObjects, type ObjectEntry } from '../../src/gateway/list-objects.ts'

const entries: ObjectEntry[] = ['latest/a', 'latest/d/x', 'v1/a', 'v1/d/x', 'v1/d/y', 'v1/e/z', 'v1/f', 'v2/a']
  .map(key => ({ key, size: 1, etag: '"e"', lastModified: new Date(0) }))

const keys = (p: { contents: ObjectEntry[] }): string[] => p.contents.map(c => c.key)

describe('listObjects', () => {
  it('filters by prefix and folds keys under the delimiter into common prefixes', () => {
    const page = listObjects(entries, { prefix: 'v1/', delimiter: '/', after: '', maxKeys: 1000 })
    expect(keys(page)).toEqual(['v1/a', 'v1/f'])
    expect(page.commonPrefixes).toEqual(['v1/d/', 'v1/e/'])
    expect(page.truncated).toBe(false)
    expect(listObjects(entries, { prefix: '', delimiter: '/', after: '', maxKeys: 1000 }).commonPrefixes).toEqual(['latest/', 'v1/', 'v2/'])
  })

  it('pages through keys and common prefixes alike, each page starting after the last item of the one before', () => {
    const seen: string[] = []
    let after = ''
    for (let pages = 0; ; pages++) {
      const page = listObjects(entries, { prefix: 'v1/', delimiter: '/', after, maxKeys: 1 })
      seen.push(...keys(page), ...page.commonPrefixes)
      if (!page.truncated) break
      after = page.last!
      expect(pages).toBeLessThan(10)
    }
    expect(seen).toEqual(['v1/a', 'v1/d/', 'v1/e/', 'v1/f'])
  })

  it('round-trips continuation tokens and refuses ones it did not write', () => {
    expect(decodeToken(encodeToken('v1/d/é'))).toBe('v1/d/é')
    expect(decodeToken('not a token!')).toBeUndefined()
  })
})
