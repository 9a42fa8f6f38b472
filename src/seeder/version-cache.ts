/**
 * The seeder's cache of versions on local disk: what it holds and in what state, the limits it keeps
 * (capacity with LRU eviction, retention, pins, in-use versions never evicted; the decisions are
 * retention.ts's), which versions were evicted (remembered across restarts so a restart does not pull
 * them again), and the versions an earlier run left on disk.
 *
 * Layout under the cache directory: `versions/<name>/<version>` (+ `.partial`, `.modelswarm`: a
 * ChunkStore each), `evicted.json`, and the identity key beside them.
 */
import { readdir, readFile, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { decodeHeader, type ManifestHeader } from '../chunker/manifest.ts'
import { ModelswarmError } from '../errors.ts'
import { formatModelVersion as key, type ModelVersion } from '../model-version.ts'
import type { VersionMeta } from '../peer/publications.ts'
import type { VersionSwarm } from '../peer/version-swarm.ts'
import { readOptional, writeAtomic } from '../util/files.ts'
import type { FileChecksums } from './file-dedup.ts'
import type { UploadPolicy } from './upload-policy.ts'
import type { PullStats } from './puller.ts'
import { planEviction, type CachedVersion } from './retention.ts'
import type { SeederLog } from './seeder-log.ts'

export type VersionState = 'pulling' | 'ready' | 'failed'

export interface PublishedVersion {
  readonly ref: ModelVersion
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly swarm: VersionSwarm
  /** The swarm's upload gate (super-seeding), read for its decision counts. */
  readonly policy: UploadPolicy
  state: VersionState
  error?: string
  /** Whether a failed pull may succeed if tried again (an unreachable origin) rather than never (access denied). */
  retriable?: boolean
  /** A pull that failed for want of disk space: the free bytes the cache's filesystem needs before it is resumed. */
  needsFreeBytes?: number
  /** Bytes read from the origin for this version, retries included (counted as they arrive). */
  readonly pull: PullStats
  /** Bytes filled from identical files of other cached versions instead of the origin. */
  bytesCopied: number
  /** Chunks found rotten on disk after a host reported them, dropped and got again (origin or, in an HA group, swarm). */
  chunksRepaired: number
  /** Chunks hosts reported failing verification after receiving them from this seeder. */
  chunksReportedCorrupt: number
  /** Origin checksums of the version's files, once known. */
  checksums?: FileChecksums
  /** Each file's stamp at the origin listing the header was made from (undefined for a version recovered from disk). */
  stamps?: Record<string, string>
  lastUsedAt: number
  startedAt: number
  finishedAt?: number
}

/** A version the seeder would pull but cannot: no room even after evicting everything allowed. */
export interface RefusedVersion { ref: ModelVersion, error: string, at: number }

/** The cache cannot hold a version without evicting pinned or in-use versions. */
export class CacheFullError extends ModelswarmError {
  constructor (message: string) { super('MS_CACHE_FULL', message) }
}

/** Disk space ChunkStore keeps free beyond what a model needs (its own default). */
export const DISK_RESERVE = 64 * 1024 * 1024

export interface VersionCacheOptions {
  cacheDir: string
  /** Cache size limit in bytes (the disk's free space limits too). */
  capacity?: number
  /** Versions kept per model, newest first. */
  keepVersions?: number
  pins: ReadonlySet<string>
  /** A version downloaded from, reported on or resolved within this long is in use and never evicted, in ms. */
  inUseWindowMs: number
  now: () => number
  log: SeederLog
  /** Called as a version starts leaving the cache, before its swarm closes: stop routing requests to it. */
  detach: (v: PublishedVersion) => void
  /** Called once a version is out of the cache, before its files are deleted: a deletion that fails leaves nothing naming it. */
  onEvicted: (v: PublishedVersion) => Promise<void>
}

export class VersionCache {
  readonly versions = new Map<string, PublishedVersion>()
  readonly refused = new Map<string, RefusedVersion>()
  readonly #opts: VersionCacheOptions
  /** Upload counters at the last usage check, to see which versions were downloaded from since. */
  readonly #bytesUpSeen = new Map<string, number>()
  /** Removals from disk under way, by version key. */
  readonly #removing = new Map<string, Promise<void>>()
  /**
   * Versions evicted: not pulled again unasked (only a preheat brings one back), or they would ping-pong
   * over the line. Kept in `<cache-dir>/evicted.json` so a restart does not pull them again either;
   * forgotten once the origin no longer lists them.
   */
  readonly #evicted = new Set<string>()

  constructor (opts: VersionCacheOptions) {
    this.#opts = opts
  }

  /** Where a version's store lives. */
  dirOf (ref: ModelVersion): string {
    return join(this.#opts.cacheDir, 'versions', ref.name, ref.version)
  }

  get (ref: ModelVersion): PublishedVersion | undefined { return this.versions.get(key(ref)) }
  add (v: PublishedVersion): void { this.versions.set(key(v.ref), v) }
  isEvicted (ref: ModelVersion): boolean { return this.#evicted.has(key(ref)) }

  /** Reads `evicted.json`; an unreadable one is ignored with a warning (those versions may be pulled again). */
  async loadEvicted (): Promise<void> {
    const bytes = await readOptional(this.#evictedFile)
    try {
      for (const k of JSON.parse(bytes?.toString('utf8') ?? '[]') as string[]) this.#evicted.add(k)
    } catch (err) {
      this.#opts.log.evictedListUnreadable(this.#evictedFile, err as Error)
    }
  }

  /** Keeps the evicted versions `keep` selects, in memory and on disk. */
  async keepEvicted (keep: (k: string) => boolean): Promise<void> {
    for (const k of this.#evicted) if (!keep(k)) this.#evicted.delete(k)
    await writeAtomic(this.#evictedFile, JSON.stringify([...this.#evicted].sort()))
  }

  /** Forgets evicted versions the origin no longer lists. */
  async forgetUnlisted (listed: ReadonlySet<string>): Promise<void> {
    if ([...this.#evicted].some(k => !listed.has(k))) await this.keepEvicted(k => listed.has(k))
  }

  /**
   * Versions an earlier run left in the cache, with their headers. One whose header cannot be read (damaged, or
   * written in an older manifest format) can never be served and would block its own pull: it is logged and
   * removed, and the origin's copy is pulled again; if it cannot be removed, that is logged, and its next
   * admission replaces it (ChunkStore.open, replaceRevision 'any') or says why it cannot.
   */
  async recover (): Promise<Array<{ ref: ModelVersion, header: ManifestHeader }>> {
    const root = join(this.#opts.cacheDir, 'versions')
    const out: Array<{ ref: ModelVersion, header: ManifestHeader }> = []
    for (const name of await readdir(root).catch(() => [])) {
      for (const entry of await readdir(join(root, name)).catch(() => [])) {
        if (!entry.endsWith('.modelswarm')) continue
        const ref = { name, version: entry.slice(0, -'.modelswarm'.length) }
        try {
          out.push({ ref, header: decodeHeader(await readFile(join(root, name, entry, 'header.json'))) })
        } catch (err) {
          // A removal that fails too leaves the version to the next admission, which replaces it or says why
          // it cannot; the other versions are recovered either way.
          const removal = await ChunkStore.remove(this.dirOf(ref)).then(() => undefined, (e: Error) => e)
          this.#opts.log.recoveryFailed(ref, err as Error, removal === undefined
            ? 'removed, pulled again from the origin'
            : `could not remove it either (${removal.message}) — check the permissions and health of ${this.dirOf(ref)}*`)
        }
      }
    }
    return out
  }

  /** Marks versions hosts downloaded from or reported on since the last check as used now. */
  noteUsage (): void {
    for (const [k, v] of this.versions) {
      const up = v.swarm.stats.bytesUp
      if (up !== this.#bytesUpSeen.get(k)) v.lastUsedAt = this.#opts.now()
      this.#bytesUpSeen.set(k, up)
      for (const r of v.swarm.reports.values()) v.lastUsedAt = Math.max(v.lastUsedAt, r.at)
    }
  }

  /**
   * Applies retention and capacity, counting `incoming` (a version about to be pulled) as already
   * present. Throws CacheFullError when the incoming version cannot fit.
   */
  async enforceLimits (incoming?: { ref: ModelVersion, bytes: number }): Promise<void> {
    const now = this.#opts.now()
    const entries = new Map<CachedVersion, PublishedVersion>()
    for (const v of this.versions.values()) {
      entries.set({ ...v.ref, bytes: v.store.layout.totalSize, lastUsedAt: v.lastUsedAt, pinned: this.#opts.pins.has(key(v.ref)), busy: v.state === 'pulling' || now - v.lastUsedAt < this.#opts.inUseWindowMs }, v)
    }
    const cached = [...entries.keys()]
    if (incoming !== undefined) cached.push({ ...incoming.ref, bytes: incoming.bytes, lastUsedAt: now, pinned: false, busy: true })
    const used = cached.reduce((s, v) => s + v.bytes, 0)
    // Other tenants of the disk count too: never plan beyond what is actually free.
    const fs = await statfs(this.#opts.cacheDir)
    const capacity = Math.min(this.#opts.capacity ?? Infinity, used - (incoming?.bytes ?? 0) + fs.bavail * fs.bsize - DISK_RESERVE)
    const plan = planEviction(cached, { capacity, keepVersions: this.#opts.keepVersions })
    if (incoming !== undefined && !plan.fits) {
      throw new CacheFullError(`${key(incoming.ref)} needs ${incoming.bytes} bytes but the cache can hold only ${Math.max(0, capacity - (plan.used - incoming.bytes))} more without evicting pinned or in-use versions (capacity ${capacity} bytes) — raise --cache-capacity, unpin versions or free disk space`)
    }
    for (const c of plan.evict) await this.#evict(entries.get(c)!, incoming === undefined ? 'retention' : `room for ${key(incoming.ref)}`)
  }

  /**
   * Drops a version whose origin content changed: deleted like an eviction, but not remembered as
   * evicted, so the next listing admits it again as a new revision.
   */
  async withdraw (v: PublishedVersion, reason: string): Promise<void> {
    if (this.versions.get(key(v.ref)) === v) await this.#remove(v, reason)
  }

  async #evict (v: PublishedVersion, reason: string): Promise<void> {
    this.#evicted.add(key(v.ref))
    await this.keepEvicted(() => true)
    await this.#remove(v, reason)
  }

  async #remove (v: PublishedVersion, reason: string): Promise<void> {
    const k = key(v.ref)
    this.versions.delete(k)
    this.#bytesUpSeen.delete(k)
    this.#opts.detach(v)
    // Registered before anything is awaited: an admission of the same version waits for it (removed()).
    const evicted = this.#opts.onEvicted(v)
    const removing = (async () => {
      await evicted
      await v.swarm.close()
      await v.store.close()
      await ChunkStore.remove(v.store.dir)
    })()
    this.#removing.set(k, removing)
    try {
      await removing
    } finally {
      if (this.#removing.get(k) === removing) this.#removing.delete(k)
    }
    this.#opts.log.versionEvicted(v.ref, v.store.layout.totalSize, reason)
  }

  /**
   * Resolves once no copy of `ref` is being removed from disk: a version withdrawn (changed at the origin)
   * leaves the cache at once, and the next listing may admit it anew while its old files are still being
   * deleted — a store opened in the same directory then made the removal fail (rmdir: directory not empty).
   */
  async removed (ref: ModelVersion): Promise<void> {
    await this.#removing.get(key(ref))?.catch(() => {})
  }

  get #evictedFile (): string { return join(this.#opts.cacheDir, 'evicted.json') }
}
