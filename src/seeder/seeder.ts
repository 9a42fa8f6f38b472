/**
 * The seeder daemon's core: watches the origin, publishes each new version (signed header first),
 * pulls it once into the cache while serving what has arrived, keeps `latest` per model, keeps the
 * cache within its limits, and keeps serving everything cached when the origin is unreachable.
 */
import type { PrivateKey } from '@libp2p/interface'
import { readdir, readFile, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { chooseChunkSize } from '../chunker/chunk-size.ts'
import { createHeader, decodeHeader, type ManifestFile, type ManifestHeader } from '../chunker/manifest.ts'
import { InvalidInputError, isRetriable, ModelswarmError, NotFoundError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { readOptional, writeAtomic } from '../util/files.ts'
import { createRng } from '../util/random.ts'
import { TokenBucket } from '../util/token-bucket.ts'
import { signComplete, signHashes, signHeader, signLatest, VersionMeta } from '../peer/publications.ts'
import type { SwarmHost } from '../peer/swarm-host.ts'
import { VersionSwarm, type VersionSwarmOptions } from '../peer/version-swarm.ts'
import { copyFile, findTwins, readChecksums, writeChecksums, type FileChecksums } from './file-dedup.ts'
import type { Origin } from '../origins/origin.ts'
import { formatModelVersion as key, type ModelRef, type ModelVersion } from '../model-version.ts'
import { emptyPullStats, pullVersion, type PullStats } from './puller.ts'
import { compareVersions, planEviction, wantedVersions, type CachedVersion } from './retention.ts'
import { UploadPolicy } from './upload-policy.ts'

export interface SeederOptions {
  origin: Origin
  /** Local NVMe directory for pulled versions and state. */
  cacheDir: string
  key: PrivateKey
  host: SwarmHost
  log: Logger
  /** Budget for the line in bytes per second; undefined = unshaped. */
  lineRate?: number
  /** How often to list the origin. @default 5 s */
  pollIntervalMs?: number
  /** Concurrent ranged reads per pull. @default 4 */
  parallelReads?: number
  /** Longest single ranged read. @default 256 MiB */
  readSize?: number
  /** Fixed chunk size instead of the size policy (tests). */
  chunkSize?: number
  /** Cache size limit in bytes (the disk's free space limits too). @default unlimited */
  cacheCapacity?: number
  /** Versions kept per model, newest first; older ones are neither pulled unasked nor kept. @default all */
  keepVersions?: number
  /** Versions never evicted and always pulled. */
  pins?: ModelVersion[]
  /** A version downloaded from, reported on or resolved within this long is in use and never evicted. @default 60 s */
  inUseWindowMs?: number
  swarm?: VersionSwarmOptions
}

export type VersionState = 'pulling' | 'ready' | 'failed'

export interface PublishedVersion {
  readonly ref: ModelVersion
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly swarm: VersionSwarm
  state: VersionState
  error?: string
  /** Whether a failed pull may succeed if tried again (an unreachable origin) rather than never (access denied). */
  retriable?: boolean
  /** Bytes read from the origin for this version, retries included (counted as they arrive). */
  readonly pull: PullStats
  /** Bytes filled from identical files of other cached versions instead of the origin. */
  bytesCopied: number
  /** Origin checksums of the version's files, once known. */
  checksums?: FileChecksums
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
const DISK_RESERVE = 64 * 1024 * 1024

export class Seeder {
  readonly versions = new Map<string, PublishedVersion>()
  readonly refused = new Map<string, RefusedVersion>()
  readonly #opts: SeederOptions
  readonly #log: Logger
  readonly #line: TokenBucket | undefined
  readonly #latest = new Map<string, { version: string, signed: Uint8Array }>()
  readonly #abort = new AbortController()
  readonly #pins: Set<string>
  /** Upload counters at the last usage check, to see which versions were downloaded from since. */
  readonly #bytesUpSeen = new Map<string, number>()
  /**
   * Versions evicted: not pulled again unasked (only a preheat brings one back), or they would ping-pong
   * over the line. Kept in `<cache-dir>/evicted.json` so a restart does not pull them again either;
   * forgotten once the origin no longer lists them.
   */
  readonly #evicted = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> | undefined
  /** Admissions (listing, eviction, publish) run one at a time: polls and preheats must not race. */
  #admitting: Promise<unknown> = Promise.resolve()
  /** Pulls run one at a time: they share the line anyway, and a finished version is a dedup source for the next. */
  #pulls: Promise<void> = Promise.resolve()
  #originError: string | undefined

  constructor (opts: SeederOptions) {
    this.#opts = opts
    this.#log = opts.log.child({ component: 'seeder' })
    // Burst of 20 ms of budget: any one-second window then carries at most 2 % over the rate (the goal is
    // ±3 %), while readers still get whole 64 KiB socket reads; 256 KiB floor for very low rates.
    // Starting empty: a full bucket let the pull's first second exceed the line budget by the burst.
    this.#line = opts.lineRate === undefined ? undefined : new TokenBucket({ rate: opts.lineRate, burst: Math.max(256 * 1024, Math.floor(opts.lineRate / 50)), initial: 0 })
    this.#pins = new Set((opts.pins ?? []).map(key))
  }

  get key (): PrivateKey { return this.#opts.key }
  get originReachable (): boolean { return this.#originError === undefined }
  /** Why the last listing of the origin failed, while it does. */
  get originError (): string | undefined { return this.#originError }
  get origin (): Origin { return this.#opts.origin }

  async start (): Promise<void> {
    this.#opts.host.setResolver(ref => this.resolve(ref))
    await this.#loadEvicted()
    await this.#recoverCache()
    await this.poll()
    this.#timer = setInterval(() => { void this.poll() }, this.#opts.pollIntervalMs ?? 5000)
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#abort.abort(new Error('seeder stopping'))
    await this.#polling
    await this.#admitting.catch(() => {})
    await this.#pulls
    for (const v of this.versions.values()) {
      await v.swarm.close()
      await v.store.close()
    }
  }

  /**
   * One listing of the origin: wanted ready versions are published and pulled, failed pulls that may
   * succeed now are retried, and the cache limits are applied. Never throws.
   */
  poll (): Promise<void> {
    this.#polling ??= (async () => {
      try {
        const ready = await this.#opts.origin.listReady(this.#abort.signal)
        if (this.#originError !== undefined) this.#log.info({ origin: this.#opts.origin.description }, 'origin reachable again')
        this.#originError = undefined
        const listed = new Set(ready.map(key))
        if ([...this.#evicted].some(k => !listed.has(k))) await this.#setEvicted(k => listed.has(k))
        const wanted = wantedVersions(ready, this.#opts.keepVersions, v => this.#pins.has(key(v)))
          .sort((a, b) => compareVersions(b.version, a.version))
        for (const ref of wanted) {
          if (this.#abort.signal.aborted) break
          const v = this.versions.get(key(ref))
          if (v === undefined && !this.#evicted.has(key(ref))) await this.#admit(ref).catch(() => {})
          else if (v?.state === 'failed' && v.retriable === true) this.#pull(v)
        }
      } catch (err) {
        const message = (err as Error).message
        if (this.#originError === undefined) this.#log.warn({ origin: this.#opts.origin.description, err: message }, 'origin unreachable; serving cached versions')
        this.#originError = message
      }
      try {
        this.#noteUsage()
        await this.#serially(() => this.#enforceLimits())
      } catch (err) {
        this.#log.error({ err: (err as Error).message }, 'cache clean-up failed')
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
    const held = this.versions.get(key(ref))
    if (held !== undefined) {
      held.lastUsedAt = Date.now()
      if (held.state === 'failed') this.#pull(held)
      return held
    }
    if (this.#evicted.has(key(ref))) await this.#setEvicted(k => k !== key(ref))
    if (!await this.#opts.origin.isReady(ref, this.#abort.signal)) {
      throw new NotFoundError(`${key(ref)} is not ready at ${this.#opts.origin.description} (no completion marker)`)
    }
    return this.#admit(ref)
  }

  /** Signed items for NAME@VERSION, or for the newest version (latest pointer first). */
  resolve ({ name, version }: ModelRef): Uint8Array[] | undefined {
    if (version === undefined) {
      const latest = this.#latest.get(name)
      if (latest === undefined) return undefined
      const v = this.versions.get(key({ name, version: latest.version }))
      if (v === undefined) return undefined
      v.lastUsedAt = Date.now()
      return [latest.signed, ...v.meta.signedItems()]
    }
    const v = this.versions.get(key({ name, version }))
    if (v === undefined) return undefined
    v.lastUsedAt = Date.now()
    return [...v.meta.signedItems()]
  }

  /** Lists the version's files, makes room for it, publishes it and queues its pull. */
  #admit (ref: ModelVersion): Promise<PublishedVersion> {
    return this.#serially(async () => {
      const existing = this.versions.get(key(ref))
      if (existing !== undefined) return existing
      try {
        const files = await this.#opts.origin.listFiles(ref, this.#abort.signal)
        const total = files.reduce((s, f) => s + f.size, 0)
        const header = createHeader({ name: ref.name, version: ref.version, chunkSize: this.#opts.chunkSize ?? chooseChunkSize(total), files })
        await this.#enforceLimits({ ref, bytes: total })
        const v = await this.#publish(ref, header)
        this.refused.delete(key(ref))
        return v
      } catch (err) {
        const error = (err as Error).message
        if (this.refused.get(key(ref))?.error !== error) this.#log.error({ version: key(ref), err: error }, 'cannot publish version')
        this.refused.set(key(ref), { ref, error, at: Date.now() })
        throw err
      }
    })
  }

  #serially<T> (run: () => Promise<T>): Promise<T> {
    const next = this.#admitting.catch(() => {}).then(run)
    this.#admitting = next
    return next
  }

  /**
   * Applies retention and capacity, counting `incoming` (a version about to be pulled) as already
   * present. Throws CacheFullError when the incoming version cannot fit.
   */
  async #enforceLimits (incoming?: { ref: ModelVersion, bytes: number }): Promise<void> {
    const now = Date.now()
    const window = this.#opts.inUseWindowMs ?? 60_000
    const entries = new Map<CachedVersion, PublishedVersion>()
    for (const v of this.versions.values()) {
      entries.set({ ...v.ref, bytes: v.store.layout.totalSize, lastUsedAt: v.lastUsedAt, pinned: this.#pins.has(key(v.ref)), busy: v.state === 'pulling' || now - v.lastUsedAt < window }, v)
    }
    const cached = [...entries.keys()]
    if (incoming !== undefined) cached.push({ ...incoming.ref, bytes: incoming.bytes, lastUsedAt: now, pinned: false, busy: true })
    const used = cached.reduce((s, v) => s + v.bytes, 0)
    // Other tenants of the disk count too: never plan beyond what is actually free.
    const fs = await statfs(this.#opts.cacheDir)
    const capacity = Math.min(this.#opts.cacheCapacity ?? Infinity, used - (incoming?.bytes ?? 0) + fs.bavail * fs.bsize - DISK_RESERVE)
    const plan = planEviction(cached, { capacity, keepVersions: this.#opts.keepVersions })
    if (incoming !== undefined && !plan.fits) {
      throw new CacheFullError(`${key(incoming.ref)} needs ${incoming.bytes} bytes but the cache can hold only ${Math.max(0, capacity - (plan.used - incoming.bytes))} more without evicting pinned or in-use versions (capacity ${capacity} bytes) — raise --cache-capacity, unpin versions or free disk space`)
    }
    for (const c of plan.evict) await this.#evict(entries.get(c)!, incoming === undefined ? 'retention' : `room for ${key(incoming.ref)}`)
  }

  async #evict (v: PublishedVersion, reason: string): Promise<void> {
    this.versions.delete(key(v.ref))
    this.#evicted.add(key(v.ref))
    await this.#setEvicted(() => true)
    this.#bytesUpSeen.delete(key(v.ref))
    this.#opts.host.remove(v.meta.headerId)
    await v.swarm.close()
    await v.store.close()
    await ChunkStore.remove(v.store.dir)
    await this.#updateLatest(v.ref.name)
    this.#log.info({ version: key(v.ref), bytes: v.store.layout.totalSize, reason }, 'version evicted')
  }

  get #evictedFile (): string { return join(this.#opts.cacheDir, 'evicted.json') }

  async #loadEvicted (): Promise<void> {
    const bytes = await readOptional(this.#evictedFile)
    try {
      for (const k of JSON.parse(bytes?.toString('utf8') ?? '[]') as string[]) this.#evicted.add(k)
    } catch (err) {
      this.#log.warn({ file: this.#evictedFile, err: (err as Error).message }, 'unreadable list of evicted versions ignored; they may be pulled again')
    }
  }

  /** Keeps the evicted versions `keep` selects, in memory and on disk. */
  async #setEvicted (keep: (k: string) => boolean): Promise<void> {
    for (const k of this.#evicted) if (!keep(k)) this.#evicted.delete(k)
    await writeAtomic(this.#evictedFile, JSON.stringify([...this.#evicted].sort()))
  }

  /** Marks versions hosts downloaded from or reported on since the last check as used now. */
  #noteUsage (): void {
    for (const [k, v] of this.versions) {
      const up = v.swarm.stats.bytesUp
      if (up !== this.#bytesUpSeen.get(k)) v.lastUsedAt = Date.now()
      this.#bytesUpSeen.set(k, up)
      for (const r of v.swarm.reports.values()) v.lastUsedAt = Math.max(v.lastUsedAt, r.at)
    }
  }

  /** Versions left in the cache by an earlier run: serve what they hold, resume what they lack. */
  async #recoverCache (): Promise<void> {
    const root = join(this.#opts.cacheDir, 'versions')
    for (const name of await readdir(root).catch(() => [])) {
      for (const entry of await readdir(join(root, name)).catch(() => [])) {
        if (!entry.endsWith('.modelswarm')) continue
        const version = entry.slice(0, -'.modelswarm'.length)
        try {
          const header = decodeHeader(await readFile(join(root, name, entry, 'header.json')))
          await this.#publish({ name, version }, header)
        } catch (err) {
          this.#log.error({ version: key({ name, version }), err: (err as Error).message }, 'cannot recover cached version')
        }
      }
    }
  }

  async #publish (ref: ModelVersion, header: ManifestHeader): Promise<PublishedVersion> {
    const { key: privateKey, host } = this.#opts
    if (header.name !== ref.name || header.version !== ref.version) throw new InvalidInputError(`cached header for ${key(ref)} names ${key(header)}`)
    const store = await ChunkStore.open({ dir: join(this.#opts.cacheDir, 'versions', ref.name, ref.version), header, reserveBytes: DISK_RESERVE })
    const meta = VersionMeta.fromOwnHeader(header, await signHeader(header, privateKey))
    const policy = new UploadPolicy({ numChunks: store.layout.count, rng: createRng(0x5eed) })
    const swarm = new VersionSwarm({ components: host.node, meta, store, role: 'seeder', gate: policy, bulk: host.bulkAccess, log: this.#log, options: this.#opts.swarm })
    const now = Date.now()
    const v: PublishedVersion = { ref, meta, store, swarm, state: 'pulling', pull: emptyPullStats(), bytesCopied: 0, checksums: await readChecksums(store), lastUsedAt: now, startedAt: now }
    this.versions.set(key(ref), v)
    // Chunks held from an earlier run are published at once; the pull fills in the rest.
    const held = [...store.have.setIndexes()].map(i => [i, store.hashOf(i)!] as const)
    if (held.length > 0) meta.addOwn(await signHashes(meta.headerId, held, privateKey))
    host.add(swarm)
    swarm.start()
    await this.#updateLatest(ref.name)
    host.provide(meta.headerId, AbortSignal.timeout(30_000)).catch(err => this.#log.debug({ err: (err as Error).message }, 'DHT provide failed'))
    this.#log.info({ version: key(ref), headerId: meta.headerId, chunks: store.layout.count, bytes: store.layout.totalSize, resumed: held.length }, 'version published')
    if (store.complete) await this.#finish(v)
    else this.#pull(v)
    return v
  }

  /** Queues the version's pull behind any running one. */
  #pull (v: PublishedVersion): void {
    v.state = 'pulling'
    v.error = undefined
    this.#pulls = this.#pulls.then(() => this.#runPull(v))
  }

  async #runPull (v: PublishedVersion): Promise<void> {
    if (this.#abort.signal.aborted || this.versions.get(key(v.ref)) !== v) return
    const { key: privateKey, origin } = this.#opts
    const signal = this.#abort.signal
    let pending: Array<readonly [number, Uint8Array]> = []
    let flushing: Promise<void> = Promise.resolve()
    // Chunks finishing in the same turn of the event loop share one signature and one message.
    const flush = (): void => {
      const batch = pending
      pending = []
      flushing = flushing.then(async () => {
        const signed = await signHashes(v.meta.headerId, batch, privateKey)
        const fresh = v.meta.addOwn(signed)
        v.swarm.broadcastSigned(signed.bytes, fresh)
        v.swarm.announceHave(batch.map(([i]) => i))
      })
    }
    const onChunk = (index: number, digest: Uint8Array): void => {
      if (pending.length === 0) setImmediate(flush)
      pending.push([index, digest])
    }
    try {
      await this.#copyTwins(v, onChunk, signal)
      await pullVersion(origin, v.ref, v.store, {
        parallel: this.#opts.parallelReads,
        rangeBytes: this.#opts.readSize,
        line: this.#line,
        signal,
        stats: v.pull,
        log: this.#log.child({ version: key(v.ref) }),
        onChunk
      })
      await flushing
      await this.#finish(v)
      // The remaining checksums let later versions skip this one's unchanged files; without them a later
      // version merely pulls those files, so a failure here is logged, not fatal.
      await this.#checksum(v, () => true, signal).catch(err => this.#log.warn({ version: key(v.ref), err: (err as Error).message }, 'origin checksums unavailable; later versions will not reuse these files'))
    } catch (err) {
      if (signal.aborted) return
      v.state = 'failed'
      v.error = (err as Error).message
      v.retriable = isRetriable(err)
      this.#log.error({ version: key(v.ref), err: v.error, code: (err as { code?: string }).code }, 'pull failed; held chunks are still served')
    }
  }

  /** Fills files identical to files of complete cached versions from local disk, so they never cross the line. */
  async #copyTwins (v: PublishedVersion, onChunk: (index: number, digest: Uint8Array) => void, signal: AbortSignal): Promise<void> {
    const held = [...this.versions.values()].filter(o => o !== v && o.checksums !== undefined).map(o => ({ store: o.store, checksums: o.checksums!, version: o }))
    // A twin has the same length, so only files of a length some held file has are worth a checksum now;
    // HDFS computes a checksum by reading the file's block CRCs, which for a big shard costs seconds.
    const sizes = new Set(held.filter(h => h.store.complete).flatMap(h => h.store.header.files.map(f => f.size)))
    await this.#checksum(v, f => sizes.has(f.size), signal)
    if (v.checksums === undefined) return
    const twins = findTwins(v.store, v.checksums, held)
    if (twins.size === 0) return
    // The versions copied from are in use: keep them out of eviction's reach meanwhile.
    for (const o of held) o.version.lastUsedAt = Date.now()
    for (const [fileIndex, source] of twins) v.bytesCopied += await copyFile(v.store, fileIndex, source, onChunk, signal)
    this.#log.info({ version: key(v.ref), files: twins.size, bytes: v.bytesCopied }, 'unchanged files copied from cached versions')
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
    const manifest = await v.store.finalize()
    const signed = await signComplete(manifest, this.#opts.key)
    v.meta.addOwn(signed)
    v.swarm.broadcastSigned(signed.bytes, [])
    v.state = 'ready'
    v.finishedAt = Date.now()
    v.lastUsedAt = v.finishedAt
    this.#log.info({ version: key(v.ref), bytesRead: v.pull.bytesRead, bytesRetried: v.pull.bytesRetried, bytesCopied: v.bytesCopied, seconds: (v.finishedAt - v.startedAt) / 1000 }, 'version pulled')
  }

  async #updateLatest (name: string): Promise<void> {
    const newest = [...this.versions.values()].filter(v => v.ref.name === name).map(v => v.ref.version).sort(compareVersions).at(-1)
    if (newest === undefined) {
      this.#latest.delete(name)
      return
    }
    if (this.#latest.get(name)?.version === newest) return
    const v = this.versions.get(key({ name, version: newest }))!
    const signed = await signLatest({ name, version: newest, headerId: v.meta.headerId, publishedAt: new Date().toISOString() }, this.#opts.key)
    this.#latest.set(name, { version: newest, signed: signed.bytes })
    this.#log.info({ model: name, version: newest }, 'latest updated')
  }
}
