/**
 * Where model versions come from. Only seeders talk to an origin; peers never do. HDFS (WebHDFS) is
 * the production origin; a local directory is the embedded default for the demo and tests.
 * An origin holds `ROOT/<name>/<version>/…files`, and a version is ready once its completion marker
 * (default `_SUCCESS`) exists.
 */
import type { ManifestFile } from '../chunker/manifest.ts'
import { ModelswarmError } from '../errors.ts'
import type { ReadSink } from './datanode-reader.ts'

export interface OriginVersionRef { name: string, version: string }

export interface Origin {
  /** Human-readable location, for logs. */
  readonly description: string
  /** Bytes received from the origin at its transport layer (HTTP bodies for WebHDFS), retries included. */
  readonly bytesRead: number
  /** Versions whose completion marker exists. A few cheap listings, whatever the number of versions. */
  listReady: (signal?: AbortSignal) => Promise<OriginVersionRef[]>
  /** Whether one version's completion marker exists (a preheat asks for a version the last listing may not have seen). */
  isReady: (ref: OriginVersionRef, signal?: AbortSignal) => Promise<boolean>
  /** The version's files (marker excluded), relative paths, sizes and modes. */
  listFiles: (ref: OriginVersionRef, signal?: AbortSignal) => Promise<ManifestFile[]>
  /** Reads exactly `length` bytes at `offset` of a file into `sink`'s regions; must throw rather than end short. */
  read: (ref: OriginVersionRef, path: string, offset: number, length: number, sink: ReadSink, signal?: AbortSignal) => Promise<void>
  /**
   * A content checksum of a whole file that is cheap for the origin to give (no data transfer), or
   * undefined when it has none. Files with equal size and checksum are the same bytes, so a file already
   * held under another version is copied locally instead of pulled.
   */
  checksum?: (ref: OriginVersionRef, path: string, signal?: AbortSignal) => Promise<string | undefined>
}

export const DEFAULT_MARKER = '_SUCCESS'

/** The origin's bytes disagree with what it said earlier (a hash recorded, a listed size): the version changed under us. */
export class OriginChangedError extends ModelswarmError {
  constructor (message: string) { super('MS_ORIGIN_CHANGED', message) }
}
