/**
 * The seeder daemon's core: watches the origin, publishes each new version (signed header first),
 * pulls it once into the cache while serving what has arrived, keeps `latest` per model, and keeps
 * serving everything cached when the origin is unreachable.
 */
import type { PrivateKey } from '@libp2p/interface'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { chooseChunkSize } from '../chunker/chunk-size.ts'
import { createHeader, decodeHeader, type ManifestHeader } from '../chunker/manifest.ts'
import type { Logger } from '../log.ts'
import { createRng } from '../util/random.ts'
import { TokenBucket } from '../util/token-bucket.ts'
import { signComplete, signHashes, signHeader, signLatest, VersionMeta } from '../peer/publications.ts'
import type { SwarmHost } from '../peer/swarm-host.ts'
import { VersionSwarm, type VersionSwarmOptions } from '../peer/version-swarm.ts'
import type { Origin, OriginVersionRef } from './origin.ts'
import { pullVersion, type PullStats } from './puller.ts'
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
  /** Fixed chunk size instead of the size policy (tests). */
  chunkSize?: number
  swarm?: VersionSwarmOptions
}

export type VersionState = 'pulling' | 'ready' | 'failed'

export interface PublishedVersion {
  readonly ref: OriginVersionRef
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly swarm: VersionSwarm
  state: VersionState
  error?: string
  pull: PullStats
  startedAt: number
  finishedAt?: number
}

export class Seeder {
  readonly versions = new Map<string, PublishedVersion>()
  readonly #opts: SeederOptions
  readonly #log: Logger
  readonly #line: TokenBucket | undefined
  readonly #latest = new Map<string, { version: string, signed: Uint8Array }>()
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #polling: Promise<void> | undefined
  #originOk = true

  constructor (opts: SeederOptions) {
    this.#opts = opts
    this.#log = opts.log.child({ component: 'seeder' })
    // Burst of 1/8 s of budget: smooth at the second scale without starving parallel reads.
    this.#line = opts.lineRate === undefined ? undefined : new TokenBucket({ rate: opts.lineRate, burst: Math.max(256 * 1024, Math.floor(opts.lineRate / 8)) })
  }

  get key (): PrivateKey { return this.#opts.key }
  get originReachable (): boolean { return this.#originOk }

  async start (): Promise<void> {
    this.#opts.host.setResolver((name, version) => this.resolve(name, version))
    await this.#recoverCache()
    await this.poll()
    this.#timer = setInterval(() => { void this.poll() }, this.#opts.pollIntervalMs ?? 5000)
  }

  async stop (): Promise<void> {
    clearInterval(this.#timer)
    this.#abort.abort(new Error('seeder stopping'))
    await this.#polling
    for (const v of this.versions.values()) {
      await v.swarm.close()
      await v.store.close()
    }
  }

  /** One listing of the origin; new ready versions are published and pulled. Never throws. */
  poll (): Promise<void> {
    this.#polling ??= (async () => {
      try {
        const refs = await this.#opts.origin.listReady(this.#abort.signal)
        if (!this.#originOk) this.#log.info({ origin: this.#opts.origin.description }, 'origin reachable again')
        this.#originOk = true
        for (const ref of refs) {
          if (this.versions.has(key(ref)) || this.#abort.signal.aborted) continue
          try {
            const files = await this.#opts.origin.listFiles(ref, this.#abort.signal)
            const total = files.reduce((s, f) => s + f.size, 0)
            await this.#publish(ref, createHeader({ name: ref.name, version: ref.version, chunkSize: this.#opts.chunkSize ?? chooseChunkSize(total), files }))
          } catch (err) {
            this.#log.error({ version: key(ref), err: (err as Error).message }, 'cannot publish version')
          }
        }
      } catch (err) {
        if (this.#originOk) this.#log.warn({ origin: this.#opts.origin.description, err: (err as Error).message }, 'origin unreachable; serving cached versions')
        this.#originOk = false
      } finally {
        this.#polling = undefined
      }
    })()
    return this.#polling
  }

  /** Signed items for NAME@VERSION, or for the newest version (latest pointer first). */
  resolve (name: string, version: string | undefined): Uint8Array[] | undefined {
    if (version === undefined) {
      const latest = this.#latest.get(name)
      if (latest === undefined) return undefined
      const v = this.versions.get(`${name}@${latest.version}`)
      return v === undefined ? undefined : [latest.signed, ...v.meta.signedItems()]
    }
    const v = this.versions.get(`${name}@${version}`)
    return v === undefined ? undefined : [...v.meta.signedItems()]
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
          this.#log.error({ version: `${name}@${version}`, err: (err as Error).message }, 'cannot recover cached version')
        }
      }
    }
  }

  async #publish (ref: OriginVersionRef, header: ManifestHeader): Promise<void> {
    const { key: privateKey, host } = this.#opts
    const store = await ChunkStore.open({ dir: join(this.#opts.cacheDir, 'versions', ref.name, ref.version), header })
    const meta = VersionMeta.fromOwnHeader(header, await signHeader(header, privateKey))
    const policy = new UploadPolicy({ numChunks: store.layout.count, rng: createRng(0x5eed) })
    const swarm = new VersionSwarm({ node: host.node, meta, store, role: 'seeder', gate: policy, log: this.#log, options: this.#opts.swarm })
    const v: PublishedVersion = { ref, meta, store, swarm, state: 'pulling', pull: { bytesRead: 0, bytesRetried: 0, chunksPulled: 0, retries: 0 }, startedAt: Date.now() }
    this.versions.set(key(ref), v)
    // Chunks held from an earlier run are published at once; the pull fills in the rest.
    const held = [...store.have.setIndexes()].map(i => [i, store.hashOf(i)!] as const)
    if (held.length > 0) meta.addOwn(await signHashes(meta.headerId, held, privateKey))
    host.add(swarm)
    swarm.start()
    await this.#updateLatest(ref.name)
    host.provide(meta.headerId, AbortSignal.timeout(30_000)).catch(err => this.#log.debug({ err: (err as Error).message }, 'DHT provide failed'))
    this.#log.info({ version: key(ref), headerId: meta.headerId, chunks: store.layout.count, bytes: store.layout.totalSize, resumed: held.length }, 'version published')
    if (store.complete) {
      await this.#finish(v)
      return
    }
    void this.#pull(v)
  }

  async #pull (v: PublishedVersion): Promise<void> {
    const { key: privateKey } = this.#opts
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
    try {
      v.pull = await pullVersion(this.#opts.origin, v.ref, v.store, {
        parallel: this.#opts.parallelReads,
        line: this.#line,
        signal: this.#abort.signal,
        log: this.#log.child({ version: key(v.ref) }),
        onChunk: (index, digest) => {
          if (pending.length === 0) setImmediate(flush)
          pending.push([index, digest])
        }
      })
      await flushing
      await this.#finish(v)
    } catch (err) {
      if (this.#abort.signal.aborted) return
      v.state = 'failed'
      v.error = (err as Error).message
      this.#log.error({ version: key(v.ref), err: v.error }, 'pull failed; held chunks are still served')
    }
  }

  async #finish (v: PublishedVersion): Promise<void> {
    const manifest = await v.store.finalize()
    const signed = await signComplete(manifest, this.#opts.key)
    v.meta.addOwn(signed)
    v.swarm.broadcastSigned(signed.bytes, [])
    v.state = 'ready'
    v.finishedAt = Date.now()
    this.#log.info({ version: key(v.ref), bytesRead: v.pull.bytesRead, bytesRetried: v.pull.bytesRetried, seconds: (v.finishedAt - v.startedAt) / 1000 }, 'version pulled')
  }

  async #updateLatest (name: string): Promise<void> {
    const newest = [...this.versions.values()].filter(v => v.ref.name === name).map(v => v.ref.version).sort(compareVersions).at(-1)
    if (newest === undefined || this.#latest.get(name)?.version === newest) return
    const v = this.versions.get(`${name}@${newest}`)!
    const signed = await signLatest({ name, version: newest, headerId: v.meta.headerId, publishedAt: new Date().toISOString() }, this.#opts.key)
    this.#latest.set(name, { version: newest, signed: signed.bytes })
    this.#log.info({ model: name, version: newest }, 'latest updated')
  }
}

function key (ref: OriginVersionRef): string { return `${ref.name}@${ref.version}` }

/** Natural order, so v9 < v10 and timestamps sort as written. */
export function compareVersions (a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}
