/**
 * The seeder daemon's core: the watch loop. It lists the origin, admits each wanted version into the
 * cache (version-cache.ts) and publishes it (publisher.ts), pulls it once while the swarm already serves
 * what has arrived (puller.ts), fills unchanged files from earlier versions instead of the line
 * (file-dedup.ts), and keeps serving everything cached when the origin is unreachable.
 */
import type { PrivateKey } from '@libp2p/interface'
import { statfs } from 'node:fs/promises'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { chooseChunkSize } from '../chunker/chunk-size.ts'
import { createHeader, type ManifestFile, type ManifestHeader } from '../chunker/manifest.ts'
import { DiskFullError, InvalidInputError, isRetriable, NotFoundError, OriginChangedError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelVersion as key, type ModelRef, type ModelVersion } from '../model-version.ts'
import { revisionOf, type Origin } from '../origins/origin.ts'
import type { SwarmHost } from '../peer/swarm-host.ts'
import { VersionSwarm, type VersionSwarmOptions } from '../peer/version-swarm.ts'
import { createRng } from '../util/random.ts'
import { settledWithin } from '../util/sleep.ts'
import { TokenBucket } from '../util/token-bucket.ts'
import { formatBytes } from '../util/units.ts'
import { copyTwinChunks, findTwins, readChecksums, writeChecksums, type FileChecksums } from './file-dedup.ts'
import { HaGroup } from './ha-pull.ts'
import { Publisher } from './publisher.ts'
import { emptyPullStats, pullVersion } from './puller.ts'
import { compareVersions, wantedVersions } from './retention.ts'
import { SeederLog } from './seeder-log.ts'
import { UploadPolicy } from './upload-policy.ts'
import { DISK_RESERVE, VersionCache, type PublishedVersion, type RefusedVersion } from './version-cache.ts'

export { CacheFullError, type PublishedVersion, type RefusedVersion, type VersionState } from './version-cache.ts'

/** Defaults of the seeder's options; the CLI's options table shows these. */
export const SEEDER_DEFAULTS = {
  pollIntervalMs: 5000,
  parallelReads: 4,
  readSize: 256 * 1024 * 1024,
  inUseWindowMs: 60_000
} as const

/**
 * A resolve for a version the seeder does not hold waits for a listing of the origin — the poll running, or
 * one started then, at most one such every MISS_LISTING_INTERVAL_MS (a miss within that is answered from
 * what is held), or while the seeder recovers its cache the first poll after it — up to MISS_LISTING_WAIT_MS,
 * and is answered from what that listing published. A version whose completion marker was written since the last
 * poll is then found, where hosts asking for it by name took three 'not found' answers in ~2 s as final
 * (resolve/client.ts) while the seeder lists every 5 s by default: in the network lab's cold scenario, with
 * polls every 0.5 s but 16 hosts starting on the same two cores, a host asked at 2.4, 3.1 and 3.6 s, the
 * seeder published at 3.9 s, and the host exited 3.
 */
const MISS_LISTING_INTERVAL_MS = 1000
const MISS_LISTING_WAIT_MS = 5000

export interface SeederOptions {
  origin: Origin
  /** Local NVMe directory for pulled versions and state. */
  cacheDir: string
  key: PrivateKey
  host: SwarmHost
  log: Logger
  /** Budget for the line in bytes per second; undefined = unshaped. */
  lineRate?: number
  /** How often to list the origin, in ms. @default SEEDER_DEFAULTS.pollIntervalMs */
  pollIntervalMs?: number
  /** Concurrent ranged reads per pull. @default SEEDER_DEFAULTS.parallelReads */
  parallelReads?: number
  /** Longest single ranged read, in bytes. @default SEEDER_DEFAULTS.readSize */
  readSize?: number
  /** Fixed chunk size in bytes instead of the size policy (tests). */
  chunkSize?: number
  /** Cache size limit in bytes (the disk's free space limits too). @default unlimited */
  cacheCapacity?: number
  /** Versions kept per model, newest first; older ones are neither pulled unasked nor kept. @default all */
  keepVersions?: number
  /** Versions never evicted and always pulled. */
  pins?: ModelVersion[]
  /** A version downloaded from, reported on or resolved within this long is in use and never evicted, in ms. @default SEEDER_DEFAULTS.inUseWindowMs */
  inUseWindowMs?: number
  swarm?: VersionSwarmOptions
  /**
   * The seeders of this one's HA group (`--seeder-peer`), each a multiaddr ending in /p2p/<peer id>; its own
   * entry is skipped. Each version is then pulled by one of them and fetched from the swarm by the others (ha-pull.ts).
   */
  seederPeers?: readonly string[]
  /** How long the seeders ranked above may make no progress before this one pulls, ms. @default HA_DEFAULTS.takeoverGraceMs */
  takeoverGraceMs?: number
  /** Clock in ms. @default Date.now */
  now?: () => number
}

export class Seeder {
  readonly #opts: SeederOptions
  readonly #log: SeederLog
  readonly #now: () => number
  readonly #line: TokenBucket | undefined
  readonly #abort = new AbortController()
  readonly #pins: Set<string>
  readonly #cache: VersionCache
  readonly #publisher: Publisher
  /** The HA group, when other seeders serve the same origin. */
  readonly #ha: HaGroup | undefined
  /** Versions an HA seeder is bringing complete (pulling or fetching from the swarm), with that run. */
  readonly #sharing = new Map<PublishedVersion, Promise<void>>()
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> | undefined
  /** Admissions (listing, eviction, publish) run one at a time: polls and preheats must not race. */
  #admitting: Promise<unknown> = Promise.resolve()
  /** Pulls run one at a time: they share the line anyway, and a finished version is a dedup source for the next. */
  #pulls: Promise<void> = Promise.resolve()
  #originError: string | undefined
  /** When (ms) a resolve of a version not held last started a listing. */
  #missListingAt = -Infinity
  /** The start's recovery of the cache and first poll. */
  #started: Promise<void> = Promise.resolve()
  /** Since when (ms) the origin has been unreachable. */
  #originDownSince: number | undefined
  #recovering = true

  constructor (opts: SeederOptions) {
    this.#opts = opts
    this.#log = new SeederLog(opts.log.child({ component: 'seeder' }))
    this.#now = opts.now ?? Date.now
    // Burst of 20 ms of budget: any one-second window then carries at most 2 % over the rate (the goal is
    // ±3 %), while readers still get whole 64 KiB socket reads; 256 KiB floor for very low rates.
    // Starting empty: a full bucket let the pull's first second exceed the line budget by the burst.
    this.#line = opts.lineRate === undefined
      ? undefined
      : new TokenBucket({ rate: opts.lineRate, burst: Math.max(256 * 1024, Math.floor(opts.lineRate / 50)), initial: 0 })
    this.#pins = new Set((opts.pins ?? []).map(key))
    this.#publisher = new Publisher(opts.key)
    const ha = opts.seederPeers === undefined || opts.seederPeers.length === 0
      ? undefined
      : new HaGroup({ self: opts.host.node.peerId.toString(), peers: opts.seederPeers, graceMs: opts.takeoverGraceMs, now: this.#now, log: opts.log.child({ component: 'seeder' }) })
    this.#ha = ha !== undefined && ha.size > 0 ? ha : undefined
    this.#cache = new VersionCache({
      cacheDir: opts.cacheDir,
      capacity: opts.cacheCapacity,
      keepVersions: opts.keepVersions,
      pins: this.#pins,
      inUseWindowMs: opts.inUseWindowMs ?? SEEDER_DEFAULTS.inUseWindowMs,
      now: this.#now,
      log: this.#log,
      detach: v => opts.host.remove(v.meta.headerId),
      onEvicted: v => this.#updateLatest(v.ref.name)
    })
  }

  /** Held versions by NAME@VERSION. */
  get versions (): ReadonlyMap<string, PublishedVersion> { return this.#cache.versions }
  /** Versions that cannot be admitted, by NAME@VERSION. */
  get refused (): ReadonlyMap<string, RefusedVersion> { return this.#cache.refused }
  get key (): PrivateKey { return this.#opts.key }
  get originReachable (): boolean { return this.#originError === undefined }
  /** Since when (ms since the epoch) the origin has been unreachable, while it is. */
  get originDownSince (): number | undefined { return this.#originDownSince }
  /** True until the versions an earlier run left in the cache are published again. */
  get recovering (): boolean { return this.#recovering }
  /** Pinned versions, as NAME@VERSION. */
  get pins (): ReadonlySet<string> { return this.#pins }
  /** Why the last listing of the origin failed, while it does. */
  get originError (): string | undefined { return this.#originError }
  get origin (): Origin { return this.#opts.origin }

  async start (): Promise<void> {
    this.#opts.host.setResolver(ref => this.resolve(ref))
    this.#started = this.#recoverAndList()
    await this.#started
    this.#timer = setInterval(() => { void this.poll() }, this.#opts.pollIntervalMs ?? SEEDER_DEFAULTS.pollIntervalMs)
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#abort.abort(new Error('seeder stopping'))
    await this.#polling
    await this.#admitting.catch(() => {})
    await this.#pulls
    await Promise.all(this.#sharing.values())
    for (const v of this.#cache.versions.values()) {
      await v.swarm.close()
      await v.store.close()
    }
  }

  async #recoverAndList (): Promise<void> {
    await this.#cache.loadEvicted()
    for (const { ref, header } of await this.#cache.recover()) {
      await this.#publish(ref, header).catch(err => this.#log.recoveryFailed(ref, err as Error, 'the next poll admits it again'))
    }
    this.#recovering = false
    await this.poll()
  }

  /**
   * One listing of the origin: wanted ready versions are published and pulled, failed pulls that may
   * succeed now are retried, and the cache limits are applied. Never throws; nothing once stopping.
   */
  poll (): Promise<void> {
    if (this.#abort.signal.aborted) return Promise.resolve()
    this.#polling ??= (async () => {
      try {
        const ready = await this.#opts.origin.listReady(this.#abort.signal)
        if (this.#originError !== undefined) this.#log.originReachable(this.#opts.origin.description)
        this.#originError = undefined
        this.#originDownSince = undefined
        await this.#cache.forgetUnlisted(new Set(ready.map(key)))
        const wanted = wantedVersions(ready, this.#opts.keepVersions, v => this.#pins.has(key(v)))
          .sort((a, b) => compareVersions(b.version, a.version))
        for (const ref of wanted) {
          if (this.#abort.signal.aborted) break
          const v = this.#cache.get(ref)
          if (v === undefined && !this.#cache.isEvicted(ref)) await this.#admit(ref).catch(() => {})
          else if (v?.state === 'failed' && (v.retriable === true || await this.#spaceReturned(v))) this.#pull(v)
        }
      } catch (err) {
        const message = (err as Error).message
        if (this.#originError === undefined) this.#log.originUnreachable(this.#opts.origin.description, message)
        this.#originError = message
        this.#originDownSince ??= this.#now()
      }
      try {
        this.#cache.noteUsage()
        await this.#serially(() => this.#cache.enforceLimits())
      } catch (err) {
        this.#log.cleanupFailed(err as Error)
      } finally {
        this.#polling = undefined
      }
    })()
    return this.#polling
  }

  /**
   * Pulls NAME@VERSION now (`POST /v1/preheat`), whatever the retention limits: explicit demand.
   * Throws NotFoundError if the origin has no ready version of that name, CacheFullError if it cannot fit.
   */
  async preheat (ref: ModelVersion): Promise<PublishedVersion> {
    const held = this.#cache.get(ref)
    if (held !== undefined) {
      held.lastUsedAt = this.#now()
      if (held.state === 'failed') this.#pull(held)
      return held
    }
    if (this.#cache.isEvicted(ref)) await this.#cache.keepEvicted(k => k !== key(ref))
    if (!await this.#opts.origin.isReady(ref, this.#abort.signal)) {
      throw new NotFoundError(`${key(ref)} is not ready at ${this.#opts.origin.description} (no completion marker)`)
    }
    return this.#admit(ref)
  }

  /**
   * Signed items for NAME@VERSION, or for the newest version (latest pointer first); undefined when no
   * such version is held even after a listing of the origin (MISS_LISTING_INTERVAL_MS).
   */
  async resolve (ref: ModelRef): Promise<Uint8Array[] | undefined> {
    const held = this.#resolveHeld(ref)
    // Evicted: only a preheat brings it back, which no listing changes.
    const evicted = ref.version !== undefined && this.#cache.isEvicted({ name: ref.name, version: ref.version })
    if (held !== undefined || evicted || this.#abort.signal.aborted) return held
    // While recovering, a listing beside the recovery would admit versions it is still publishing.
    if (!this.#recovering && this.#polling === undefined) {
      if (this.#now() - this.#missListingAt < MISS_LISTING_INTERVAL_MS) return undefined
      this.#missListingAt = this.#now()
    }
    await settledWithin(this.#recovering ? this.#started : this.poll(), MISS_LISTING_WAIT_MS)
    return this.#resolveHeld(ref)
  }

  #resolveHeld (ref: ModelRef): Uint8Array[] | undefined {
    const found = this.#publisher.resolve(ref, this.#cache.versions)
    if (found === undefined) return undefined
    this.#cache.get({ name: ref.name, version: found.version })!.lastUsedAt = this.#now()
    return found.items
  }

  /** Lists the version's files, makes room for it, publishes it and queues its pull. */
  #admit (ref: ModelVersion): Promise<PublishedVersion> {
    return this.#serially(async () => {
      const existing = this.#cache.get(ref)
      if (existing !== undefined) return existing
      await this.#cache.removed(ref)
      try {
        const listing = await this.#opts.origin.listVersion(ref, this.#abort.signal)
        const total = listing.files.reduce((s, f) => s + f.size, 0)
        const chunkSize = this.#opts.chunkSize ?? chooseChunkSize(total)
        const header = createHeader({ ...ref, revision: revisionOf(listing), chunkSize, files: listing.files, dirs: listing.dirs })
        await this.#cache.enforceLimits({ ref, bytes: total })
        const v = await this.#publish(ref, header, listing.stamps)
        this.#cache.refused.delete(key(ref))
        return v
      } catch (err) {
        const error = (err as Error).message
        if (this.#cache.refused.get(key(ref))?.error !== error) this.#log.publishFailed(ref, error)
        this.#cache.refused.set(key(ref), { ref, error, at: this.#now() })
        throw err
      }
    })
  }

  #serially<T> (run: () => Promise<T>): Promise<T> {
    const next = this.#admitting.catch(() => {}).then(run)
    this.#admitting = next
    return next
  }

  /** Publishes a version; `stamps` are those of the listing its header was made from (none when recovered from disk). */
  async #publish (ref: ModelVersion, header: ManifestHeader, stamps?: Record<string, string>): Promise<PublishedVersion> {
    const { host } = this.#opts
    if (header.name !== ref.name || header.version !== ref.version) throw new InvalidInputError(`cached header for ${key(ref)} names ${key(header)}`)
    // Admitted from a listing, the version is in no cache entry: another revision on disk, finished or not, is
    // what a withdrawal left (its removal failed, or the seeder stopped during it), and goes, never mixed into
    // the new one.
    const store = await ChunkStore.open({ dir: this.#cache.dirOf(ref), header, reserveBytes: DISK_RESERVE, replaceRevision: stamps === undefined ? undefined : 'any' })
    // Chunks held from an earlier run are published at once; the pull fills in the rest.
    const meta = await this.#publisher.header(header, store)
    const policy = new UploadPolicy({ numChunks: store.layout.count, rng: createRng(0x5eed) })
    // In an HA group the swarm also fetches, from the other seeders and the hosts, and believes the group's
    // signatures; a download waiting on a pull is no stall to warn of (the group's takeover deals with that).
    const swarm = new VersionSwarm({
      components: host.node, meta, store, role: 'seeder', gate: policy, bulk: host.bulkAccess, log: this.#opts.log.child({ component: 'seeder' }), now: this.#now,
      options: this.#ha === undefined ? this.#opts.swarm : { ...this.#opts.swarm, stallAfterMs: Infinity },
      trust: this.#ha?.trust, download: this.#ha !== undefined
    })
    const now = this.#now()
    const v: PublishedVersion = { ref, meta, store, swarm, policy, state: 'pulling', pull: emptyPullStats(), bytesCopied: 0, chunksRepaired: 0, chunksReportedCorrupt: 0, checksums: await readChecksums(store), stamps, lastUsedAt: now, startedAt: now }
    this.#cache.add(v)
    swarm.on('fatal', err => this.#log.pullFailed(ref, err))
    // The swarm may bring an HA seeder's last chunk while no run watches it (its pull round failed): finish it.
    swarm.on('complete', () => { if (v.state !== 'ready') this.#pull(v) })
    swarm.on('corrupt', (index, peer) => {
      v.chunksReportedCorrupt++
      void this.#repair(v, index, peer)
    })
    host.add(swarm)
    swarm.start()
    await this.#updateLatest(ref.name)
    host.provide(meta.headerId, AbortSignal.timeout(30_000)).catch(err => this.#log.provideFailed(err as Error))
    this.#log.versionPublished(ref, { headerId: meta.headerId, chunks: store.layout.count, bytes: store.layout.totalSize, resumed: store.have.count })
    if (store.complete) await this.#finish(v)
    if (!store.complete || stamps === undefined) this.#pull(v)
    return v
  }

  /** Queues the version's pull behind any running one; in an HA group, starts bringing it complete with the others. */
  #pull (v: PublishedVersion): void {
    if (!v.store.complete) {
      v.state = 'pulling'
      v.error = undefined
      v.needsFreeBytes = undefined
    }
    if (this.#ha === undefined) this.#pulls = this.#pulls.then(() => this.#runPull(v))
    else this.#share(v)
  }

  /**
   * An HA seeder's way to a complete version: the group decides when this seeder pulls and which chunks
   * (each round queued like any pull); the swarm brings the rest. Finishes the version if the swarm
   * brought the last chunk; a failed round leaves it failed, for the next poll to retry.
   */
  #share (v: PublishedVersion): void {
    if (this.#sharing.has(v)) return
    const signal = this.#abort.signal
    const held = (): boolean => this.#cache.get(v.ref) === v
    const pull = (chunks: number[]): Promise<boolean> => {
      this.#pulls = this.#pulls.then(() => this.#runPull(v, chunks))
      return this.#pulls.then(() => v.state !== 'failed' && held())
    }
    // A version recovered from disk is checked against the origin first (an empty round does only that):
    // one changed there is withdrawn; one the check could not reach (origin down) may still come from the swarm.
    const run = (v.stamps === undefined ? pull([]) : Promise.resolve(true))
      .then(() => held() ? this.#ha!.complete(v, { pull, held }, signal) : undefined)
      .then(async () => {
        if (!v.store.have.complete || v.state === 'ready' || !held()) return
        await this.#finish(v)
        await this.#checksum(v, () => true, signal).catch(err => this.#log.checksumsUnavailable(v.ref, err as Error))
      })
      .catch(err => {
        if (signal.aborted) return
        v.state = 'failed'
        v.error = (err as Error).message
        v.retriable = isRetriable(err)
        this.#log.pullFailed(v.ref, err as Error)
      })
      .finally(() => this.#sharing.delete(v))
    this.#sharing.set(v, run)
  }

  /** Pulls `only` those chunks (an HA round) or every chunk the version lacks, and finishes it once every chunk is held. Never throws. */
  async #runPull (v: PublishedVersion, only?: readonly number[]): Promise<void> {
    if (this.#abort.signal.aborted || this.#cache.get(v.ref) !== v) return
    const signal = this.#abort.signal
    const batcher = this.#publisher.hashBatcher(v)
    try {
      // A version recovered from disk is checked against the origin before anything more is pulled or kept.
      v.stamps ??= await this.#currentStamps(v, signal)
      if (v.store.complete && v.store.have.complete) return
      // A finished version missing a chunk is being repaired: it stays ready and is not finished again.
      const repairing = v.store.complete
      await this.#copyTwins(v, batcher.onChunk, signal)
      await pullVersion(this.#opts.origin, v.ref, v.store, {
        parallel: this.#opts.parallelReads ?? SEEDER_DEFAULTS.parallelReads,
        rangeBytes: this.#opts.readSize ?? SEEDER_DEFAULTS.readSize,
        line: this.#line,
        signal,
        stats: v.pull,
        log: this.#opts.log.child({ component: 'seeder', version: key(v.ref) }),
        onChunk: batcher.onChunk,
        stamps: v.stamps,
        only
      })
      await batcher.flushed()
      // An HA round that left chunks to the swarm, or a repair: not finished here.
      if (repairing || !v.store.have.complete) return
      await this.#finish(v)
      // The remaining checksums let later versions skip this one's unchanged files; without them a later
      // version merely pulls those files, so a failure here is logged, not fatal.
      await this.#checksum(v, () => true, signal).catch(err => this.#log.checksumsUnavailable(v.ref, err as Error))
    } catch (err) {
      if (signal.aborted) return
      // A complete version whose identity could not be checked (origin down) keeps serving what it holds.
      if (v.store.complete && !(err instanceof OriginChangedError)) return
      if (err instanceof OriginChangedError && err.republished) {
        // Never a mix: what was pulled of the old content goes, and the next listing admits the version anew.
        this.#log.originChanged(v.ref, err)
        // Never throws (nothing awaits a lone seeder's pull queue): a removal that fails (EACCES, EIO) is logged.
        await this.#cache.withdraw(v, 'changed at the origin').catch((e: Error) => {
          // Node's recursive rm reports a file it may not unlink (EPERM) as ENOTDIR: the fix is named too.
          this.#log.pullFailed(v.ref, e, `could not remove the old content: ${e.message} — check the permissions and health of ${v.store.dir}*; a later poll removes them and pulls the new content once they can be removed`)
        })
        return
      }
      v.state = 'failed'
      v.error = (err as Error).message
      v.retriable = isRetriable(err)
      if (err instanceof DiskFullError) {
        // Another writer (or another version) took the disk: the pull resumes by itself when room returns.
        const missing = v.store.layout.totalSize - v.store.haveBytes
        v.needsFreeBytes = missing + DISK_RESERVE
        v.error += ` (the pull resumes by itself once ${this.#opts.cacheDir} has ${formatBytes(v.needsFreeBytes)} free: the ${formatBytes(missing)} missing + ${formatBytes(DISK_RESERVE)} reserve)`
      }
      this.#log.pullFailed(v.ref, err as Error, v.error)
    }
  }

  /** Whether a pull that failed for want of space may go on: the cache's filesystem has room again. */
  async #spaceReturned (v: PublishedVersion): Promise<boolean> {
    if (v.needsFreeBytes === undefined) return false
    const fs = await statfs(this.#opts.cacheDir).catch(() => undefined)
    return fs !== undefined && fs.bavail * fs.bsize >= v.needsFreeBytes
  }

  /**
   * A host says chunk `index` it got from us failed verification. Our copy is re-hashed from disk; if it
   * rotted, it is dropped (no longer served) and got again (counted in chunksRepaired): from the origin
   * (in the pull's bytes), or in an HA group from the swarm when a neighbour holds it, so the hosts that
   * stopped on it succeed when they rerun.
   */
  async #repair (v: PublishedVersion, index: number, peer: string): Promise<void> {
    if (this.#cache.get(v.ref) !== v || !v.store.have.has(index)) return
    if (await v.store.verifyHeld(index).catch(() => true)) {
      this.#log.corruptionNotConfirmed(v.ref, index, peer)
      return
    }
    v.chunksRepaired++
    this.#log.chunkRepairing(v.ref, index, peer)
    // In an HA group the chunk may come back from the swarm (hosts and the other seeders hold it); the
    // group pulls it from the origin only if nobody does.
    v.swarm.chunkLost(index)
    this.#pull(v)
  }

  /** The origin's stamps for a version, if its revision is still the header's; OriginChangedError if not. */
  async #currentStamps (v: PublishedVersion, signal: AbortSignal): Promise<Record<string, string>> {
    const listing = await this.#opts.origin.listVersion(v.ref, signal)
    const revision = revisionOf(listing)
    if (revision !== v.meta.header.revision) {
      throw new OriginChangedError(`${key(v.ref)} changed at the origin since it was cached (revision ${v.meta.header.revision || 'none'} → ${revision}) — versions must not change once their marker is written; it is pulled again as a new revision`, { republished: true })
    }
    return listing.stamps
  }

  /** Fills files identical to files of complete cached versions from local disk, so they never cross the line. */
  async #copyTwins (v: PublishedVersion, onChunk: (index: number, digest: Uint8Array) => void, signal: AbortSignal): Promise<void> {
    const held = [...this.#cache.versions.values()]
      .filter(o => o !== v && o.checksums !== undefined)
      .map(o => ({ store: o.store, checksums: o.checksums!, version: o }))
    // A twin has the same length, so only files of a length some held file has are worth a checksum now;
    // HDFS computes a checksum by reading the file's block CRCs, which for a big shard costs seconds.
    const sizes = new Set(held.filter(h => h.store.complete).flatMap(h => h.store.header.files.map(f => f.size)))
    await this.#checksum(v, f => sizes.has(f.size), signal)
    if (v.checksums === undefined) return
    const twins = findTwins(v.store, v.checksums, held)
    if (twins.size === 0) return
    // The versions copied from are in use: keep them out of eviction's reach meanwhile.
    for (const o of held) o.version.lastUsedAt = this.#now()
    v.bytesCopied += await copyTwinChunks(v.store, twins, onChunk, signal)
    this.#log.twinsCopied(v.ref, twins.size, v.bytesCopied)
  }

  /** Records the origin checksums of the version's non-empty files that `want` selects and still lack one. */
  async #checksum (v: PublishedVersion, want: (f: ManifestFile) => boolean, signal: AbortSignal): Promise<void> {
    const checksum = this.#opts.origin.checksum
    if (checksum === undefined) return
    const sums: FileChecksums = { ...v.checksums }
    const todo = v.store.header.files.filter(f => f.size > 0 && sums[f.path] === undefined && want(f))
    if (todo.length === 0 && v.checksums !== undefined) return
    for (const f of todo) {
      const sum = await checksum.call(this.#opts.origin, v.ref, f.path, signal)
      if (sum !== undefined) sums[f.path] = sum
    }
    await writeChecksums(v.store, sums)
    v.checksums = sums
  }

  async #finish (v: PublishedVersion): Promise<void> {
    await this.#publisher.complete(v)
    v.state = 'ready'
    v.finishedAt = this.#now()
    v.lastUsedAt = v.finishedAt
    const { bytesRead, bytesRetried } = v.pull
    this.#log.versionPulled(v.ref, { bytesRead, bytesRetried, bytesCopied: v.bytesCopied, seconds: (v.finishedAt - v.startedAt) / 1000 })
  }

  async #updateLatest (name: string): Promise<void> {
    const latest = await this.#publisher.updateLatest(name, this.#cache.versions)
    if (latest.moved) this.#log.latestUpdated(name, latest.version!)
  }
}
