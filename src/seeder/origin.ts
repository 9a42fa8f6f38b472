/**
 * Where model versions come from. Only seeders talk to an origin; peers never do. HDFS (WebHDFS) is
 * the production origin; a local directory is the embedded default for the demo and tests.
 * An origin holds `ROOT/<name>/<version>/…files`, and a version is ready once its completion marker
 * (default `_SUCCESS`) exists.
 */
import type { ManifestFile } from '../chunker/manifest.ts'

export interface OriginVersionRef { name: string, version: string }

export interface Origin {
  /** Human-readable location, for logs. */
  readonly description: string
  /** Versions whose completion marker exists. One cheap listing per model root. */
  listReady: (signal?: AbortSignal) => Promise<OriginVersionRef[]>
  /** The version's files (marker excluded), relative paths, sizes and modes. */
  listFiles: (ref: OriginVersionRef, signal?: AbortSignal) => Promise<ManifestFile[]>
  /** Streams exactly `length` bytes at `offset` of a file; must throw rather than end short. */
  read: (ref: OriginVersionRef, path: string, offset: number, length: number, signal?: AbortSignal) => AsyncIterable<Uint8Array>
  /** Called with every byte count read, for the bytes-over-the-line counter. */
  onBytes?: (n: number) => void
}

export const DEFAULT_MARKER = '_SUCCESS'
