/**
 * ListObjects (v1 and v2) over a sorted list of keys: prefix, delimiter (common prefixes), a start after
 * which to list, and a page size — the listing rules of the S3 API reference, as pure code.
 */

export interface ObjectEntry {
  key: string
  size: number
  etag: string
  lastModified: Date
}

export interface ListQuery {
  prefix: string
  delimiter: string
  /** List keys after this one; when it is a common prefix (ends with the delimiter), after every key under it. */
  after: string
  /** Keys and common prefixes returned at most, 0–1000. */
  maxKeys: number
}

export interface ListPage {
  contents: ObjectEntry[]
  commonPrefixes: string[]
  truncated: boolean
  /** The last key or common prefix returned: where the next page starts after. */
  last: string | undefined
}

/** S3's largest page. */
export const MAX_KEYS = 1000

/** One page of `entries` (sorted by key, code-unit order as S3 sorts UTF-8 keys for ASCII) for `q`. */
export function listObjects (entries: readonly ObjectEntry[], q: ListQuery): ListPage {
  const contents: ObjectEntry[] = []
  const commonPrefixes: string[] = []
  let last: string | undefined
  const afterPrefix = q.delimiter !== '' && q.after.endsWith(q.delimiter) ? q.after : undefined
  for (const e of entries) {
    if (!e.key.startsWith(q.prefix) || e.key <= q.after || (afterPrefix !== undefined && e.key.startsWith(afterPrefix))) continue
    const cut = q.delimiter === '' ? -1 : e.key.indexOf(q.delimiter, q.prefix.length)
    const item = cut < 0 ? e.key : e.key.slice(0, cut + q.delimiter.length)
    if (item === last) continue
    if (contents.length + commonPrefixes.length >= q.maxKeys) return { contents, commonPrefixes, truncated: true, last }
    if (cut < 0) contents.push(e)
    else commonPrefixes.push(item)
    last = item
  }
  return { contents, commonPrefixes, truncated: false, last }
}

/** An opaque continuation token: the last item of a page, base64url. */
export function encodeToken (last: string): string {
  return Buffer.from(last, 'utf8').toString('base64url')
}

/** The item a continuation token names; undefined for one this gateway did not write. */
export function decodeToken (token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(token)) return undefined
  const last = Buffer.from(token, 'base64url').toString('utf8')
  return encodeToken(last) === token ? last : undefined
}
