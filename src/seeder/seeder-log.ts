/**
 * What the seeder says in its logs, one function per state change (after Kraken's torrentlog): the
 * message texts live here only, so dashboards, tests and the demo that match on them have one place to look.
 */
import type { Logger } from '../log.ts'
import { formatModelVersion, type ModelVersion } from '../model-version.ts'

export const SEEDER_MSG = {
  versionPublished: 'version published',
  versionPulled: 'version pulled',
  versionEvicted: 'version evicted',
  pullFailed: 'pull failed; held chunks are still served',
  originChanged: 'version changed at the origin; withdrawn, to be pulled again as a new revision',
  chunkRepairing: 'a chunk in the cache failed verification; dropped, to be got again from the origin (in an HA group, from a neighbour holding it if any)',
  originUnreachable: 'origin unreachable; serving cached versions',
  originReachable: 'origin reachable again',
  latestUpdated: 'latest updated'
} as const

export class SeederLog {
  readonly log: Logger

  constructor (log: Logger) { this.log = log }

  versionPublished (ref: ModelVersion, fields: { headerId: string, chunks: number, bytes: number, resumed: number }): void {
    this.log.info({ version: formatModelVersion(ref), ...fields }, SEEDER_MSG.versionPublished)
  }

  publishFailed (ref: ModelVersion, err: string): void { this.log.error({ version: formatModelVersion(ref), err }, 'cannot publish version') }

  versionPulled (ref: ModelVersion, fields: { bytesRead: number, bytesRetried: number, bytesCopied: number, seconds: number }): void {
    this.log.info({ version: formatModelVersion(ref), ...fields }, SEEDER_MSG.versionPulled)
  }

  /** `message` replaces the error's own when the seeder has more to say (what it does next). */
  pullFailed (ref: ModelVersion, err: Error, message = err.message): void {
    this.log.error({ version: formatModelVersion(ref), err: message, code: (err as { code?: string }).code }, SEEDER_MSG.pullFailed)
  }

  originChanged (ref: ModelVersion, err: Error): void {
    this.log.warn({ version: formatModelVersion(ref), err: err.message }, SEEDER_MSG.originChanged)
  }

  chunkRepairing (ref: ModelVersion, index: number, peer: string): void {
    this.log.warn({ version: formatModelVersion(ref), chunk: index, reportedBy: peer }, SEEDER_MSG.chunkRepairing)
  }

  corruptionNotConfirmed (ref: ModelVersion, index: number, peer: string): void {
    this.log.warn({ version: formatModelVersion(ref), chunk: index, reportedBy: peer }, 'a host reported a chunk corrupt but it verifies here; the bytes were damaged on the way or at the host')
  }

  twinsCopied (ref: ModelVersion, files: number, bytes: number): void {
    this.log.info({ version: formatModelVersion(ref), files, bytes }, 'unchanged files copied from cached versions')
  }

  checksumsUnavailable (ref: ModelVersion, err: Error): void {
    this.log.warn({ version: formatModelVersion(ref), err: err.message }, 'origin checksums unavailable; later versions will not reuse these files')
  }

  versionEvicted (ref: ModelVersion, bytes: number, reason: string): void {
    this.log.info({ version: formatModelVersion(ref), bytes, reason }, SEEDER_MSG.versionEvicted)
  }

  evictedListUnreadable (file: string, err: Error): void {
    this.log.warn({ file, err: err.message }, 'unreadable list of evicted versions ignored; they may be pulled again')
  }

  /** `then`: what becomes of the version (removed and pulled again, or retried by the next poll). */
  recoveryFailed (ref: ModelVersion, err: Error, then: string): void {
    this.log.error({ version: formatModelVersion(ref), err: err.message }, `cannot recover cached version: ${then}`)
  }

  originUnreachable (origin: string, err: string): void { this.log.warn({ origin, err }, SEEDER_MSG.originUnreachable) }
  originReachable (origin: string): void { this.log.info({ origin }, SEEDER_MSG.originReachable) }
  cleanupFailed (err: Error): void { this.log.error({ err: err.message }, 'cache clean-up failed') }
  latestUpdated (model: string, version: string): void { this.log.info({ model, version }, SEEDER_MSG.latestUpdated) }
  provideFailed (err: Error): void { this.log.debug({ err: err.message }, 'DHT provide failed') }
}
