/**
 * Where model versions come from. Only seeders talk to an origin; peers never do. HDFS (WebHDFS) is
 * the production origin; a local directory is the embedded default for the demo and tests.
 * An origin holds `ROOT/<name>/<version>/…files`, and a version is ready once its completion marker
 * (default `_SUCCESS`) exists.
 */
import { createHash } from 'node:crypto'
import type { ManifestDir, ManifestFile } from '../chunker/manifest.ts'
import type { ModelVersion } from '../model-version.ts'

/**
 * Where an origin read's bytes go: the origin asks for a region, fills a prefix of it (for
 * HDFS the kernel writes DataNode bytes straight into it), and says how much.
 */
export interface ReadSink {
  /** A writable region for the next body bytes; must not be empty while bytes are still expected. */
  region: () => Uint8Array
  /**
   * The first `n` bytes of the region last returned now hold the next body bytes. A returned promise
   * pauses the read until it settles; a rejection ends the read with that error. `region` may be asked
   * for while the promise is pending (Node picks the next read's buffer right away): the region it gives
   * then must be safe to fill once the promise settles.
   */
  filled: (n: number) => void | Promise<void>
}

export interface Origin {
  /** Human-readable location, for logs. */
  readonly description: string
  /** Bytes received from the origin at its transport layer (HTTP bodies for WebHDFS), retries included. */
  readonly bytesRead: number
  /** Versions whose completion marker exists. A few cheap listings, whatever the number of versions. */
  listReady: (signal?: AbortSignal) => Promise<ModelVersion[]>
  /** Whether one version's completion marker exists (a preheat asks for a version the last listing may not have seen). */
  isReady: (ref: ModelVersion, signal?: AbortSignal) => Promise<boolean>
  /** The version as the origin has it now: files (marker excluded) and directories with modes, and each file's stamp. */
  listVersion: (ref: ModelVersion, signal?: AbortSignal) => Promise<OriginListing>
  /** One file's stamp now, as listVersion gives it; a different answer means the file may hold other bytes. */
  stampOf: (ref: ModelVersion, path: string, signal?: AbortSignal) => Promise<string>
  /** Reads exactly `length` bytes at `offset` of a file into `sink`'s regions; must throw rather than end short. */
  read: (ref: ModelVersion, path: string, offset: number, length: number, sink: ReadSink, signal?: AbortSignal) => Promise<void>
  /**
   * A content checksum of a whole file that is cheap for the origin to give (no data transfer), or
   * undefined when it has none. Files with equal size and checksum are the same bytes, so a file already
   * held under another version is copied locally instead of pulled.
   */
  checksum?: (ref: ModelVersion, path: string, signal?: AbortSignal) => Promise<string | undefined>
}

/** A version's files and directories at the origin, with what identifies each file's content there. */
export interface OriginListing {
  files: ManifestFile[]
  dirs: ManifestDir[]
  /**
   * Path → the origin's identity of the file's current content (size, modification time and inode or
   * HDFS file id): equal stamps mean the same bytes, a rewrite in place or a replacement changes it.
   */
  stamps: Record<string, string>
}

/**
 * The revision of a listing: a digest of its files, directories and stamps, recorded in the version's
 * header when its pull starts. A version re-published under the same name gets another revision, so
 * another header id: its bytes can never be mixed with the earlier ones.
 */
export function revisionOf (listing: OriginListing): string {
  const files = [...listing.files].sort((a, b) => a.path < b.path ? -1 : a.path > b.path ? 1 : 0)
  const entries = files.map(f => [f.path, f.size, f.mode, listing.stamps[f.path] ?? ''])
  return createHash('sha256').update(JSON.stringify({ files: entries, dirs: listing.dirs })).digest('hex').slice(0, 32)
}

export const DEFAULT_MARKER = '_SUCCESS'
