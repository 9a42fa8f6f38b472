/**
 * From S3 listings to the origin's view, no I/O: the names one level under a prefix, a version's objects
 * as files and directories, and each object's stamp.
 *
 * S3 has no directories and no modes: directories are the key prefixes between slashes, files get mode
 * 0644 and directories 0755, and zero-byte keys ending in `/` (the "folders" consoles create) only add a
 * directory.
 */
import type { ManifestDir, ManifestFile } from '../../chunker/manifest.ts'
import { InvalidInputError } from '../../errors.ts'
import type { OriginListing } from '../origin.ts'

export const FILE_MODE = 0o644
export const DIR_MODE = 0o755

/** What a listing (ListObjectsV2) or a HeadObject says about one object. */
export interface S3ObjectInfo {
  key: string
  size: number
  etag: string
  lastModified: Date | undefined
}

/** The names one level below `prefix`, from a delimited listing's common prefixes (`prefix` + name + `/`). */
export function childNames (prefix: string, commonPrefixes: readonly string[]): string[] {
  return commonPrefixes
    .filter(p => p.startsWith(prefix) && p.length > prefix.length + 1)
    .map(p => p.slice(prefix.length, -1))
    .filter(name => name !== '.' && name !== '..' && !name.includes('/'))
}

/**
 * The content identity of an object: size first (the puller reads a shrunk file from it), ETag, and the
 * modification time in whole seconds (HeadObject's Last-Modified header has no milliseconds, listings may).
 * S3 objects are replaced whole, never changed in place, so a re-upload under the same key changes the
 * time and, for other bytes, the ETag.
 */
export function stampOf (o: Pick<S3ObjectInfo, 'size' | 'etag' | 'lastModified'>): string {
  const seconds = o.lastModified === undefined ? '' : String(Math.floor(o.lastModified.getTime() / 1000))
  return `${o.size}:${unquote(o.etag)}:${seconds}`
}

/** ETags arrive quoted (`"9e107d9d…"`), from some servers unquoted: compare them bare. */
export function unquote (etag: string): string {
  return etag.replace(/^"(.*)"$/, '$1')
}

/**
 * A version's files (marker excluded), directories and stamps from every object under `versionPrefix`
 * (`…/<name>/<version>/`). Throws InvalidInputError for a key that is no relative path (empty, `.` or `..`
 * parts) or a name used both as a file and as a directory.
 */
export function listingOf (versionPrefix: string, objects: readonly S3ObjectInfo[], marker: string): OriginListing {
  const files: ManifestFile[] = []
  const stamps: Record<string, string> = {}
  const dirs = new Set<string>()
  for (const o of objects) {
    if (!o.key.startsWith(versionPrefix)) continue
    const rel = o.key.slice(versionPrefix.length)
    const folder = rel.endsWith('/') && o.size === 0
    const parts = (folder ? rel.slice(0, -1) : rel).split('/')
    if (rel === '' || (folder && rel === '/')) continue
    if (parts.some(p => p === '' || p === '.' || p === '..')) {
      throw new InvalidInputError(`s3 key ${JSON.stringify(o.key)}: only keys that are relative paths (no empty, . or .. parts) can be part of a model`)
    }
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'))
    if (folder) {
      dirs.add(parts.join('/'))
      continue
    }
    if (rel === marker) continue
    files.push({ path: rel, size: o.size, mode: FILE_MODE })
    stamps[rel] = stampOf(o)
  }
  for (const f of files) {
    if (dirs.has(f.path)) throw new InvalidInputError(`s3 key ${JSON.stringify(versionPrefix + f.path)} is both an object and a prefix of other objects: it cannot be both a file and a directory`)
  }
  return {
    files: files.sort(byPath),
    dirs: [...dirs].map((path): ManifestDir => ({ path, mode: DIR_MODE })).sort(byPath),
    stamps
  }
}

function byPath (a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0
}
