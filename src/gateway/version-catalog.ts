/**
 * What the read gateway can serve: the versions in the host cache (`<cache-dir>/<name>/<version>/`, see
 * src/peer/host-cache.ts), the version each model's `latest` names, and the swarm fetches it starts for
 * versions the host lacks — one fetch per version however many requests ask for it at once.
 *
 * A version another process is writing into the host cache (a `fetch --cache-dir`, another gateway) is
 * not opened until that process completes or releases it: only the holder of a store's lock knows which
 * chunks it has verified (the bitfield on disk is trusted only after that holder's clean close), and a
 * second fetch of it would wait for that lock anyway. Its bytes are refused with StoreLockedError (the
 * server answers 503 SlowDown and Retry-After, and S3 clients retry); its header is served as it is.
 */
import { statSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeHeader, type ManifestHeader } from '../chunker/manifest.ts'
import { NotFoundError, StoreLockedError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelVersion, isValidName, isValidVersion, LATEST, type ModelVersion } from '../model-version.ts'
import { fetchModel, type FetchOptions } from '../peer/fetch.ts'
import { isHeld, versionCacheDir } from '../peer/host-cache.ts'
import { exists, readOptional } from '../util/files.ts'
import { VersionView } from './version-view.ts'

/** How long a resolved `latest` is used before the seeders are asked again, ms. */
export const LATEST_TTL_MS = 5000

/** The fetch options the gateway passes through to every fetch it starts (src/peer/fetch.ts). */
export type GatewayFetchOptions = Pick<FetchOptions, 'bootstrap' | 'trust' | 'peerHost' | 'lingerMs' | 'idleTimeoutMs' | 'swarm'>

export interface VersionCatalogInit {
  cacheDir: string
  fetch: GatewayFetchOptions
  /** The version the seeders call latest for a model (fetch.ts resolveLatest through the gateway's node). */
  resolveLatest: (name: string) => Promise<string>
  log: Logger
  /** Stops every fetch the catalog started. */
  signal: AbortSignal
  /** Clock in ms. @default Date.now */
  now?: () => number
}

interface FetchEntry {
  /** Resolves once the version's header is known and its store open. */
  view: Promise<VersionView>
  done: Promise<void>
}

const STATE_SUFFIX = '.modelswarm'

export class VersionCatalog {
  readonly #init: VersionCatalogInit
  readonly #now: () => number
  readonly #fetches = new Map<string, FetchEntry>()
  readonly #latest = new Map<string, { version: string, at: number } | Promise<string>>()
  /**
   * Complete versions' views by directory, with their header file's identity: a fetch through the host cache
   * replaces a finished copy of a version re-published at the origin, and the old view must not describe it.
   */
  readonly #completeViews = new Map<string, { view: VersionView, header: string }>()
  readonly #lockLooks = new Map<string, Promise<boolean>>()

  constructor (init: VersionCatalogInit) {
    this.#init = init
    this.#now = init.now ?? Date.now
  }

  /** Model names with at least one version (complete or partial) in the host cache, with the directory's mtime. */
  async models (): Promise<Array<{ name: string, created: Date }>> {
    const out: Array<{ name: string, created: Date }> = []
    for (const name of await listDir(this.#init.cacheDir)) {
      if (!isValidName(name)) continue
      if ((await this.heldVersions(name)).length === 0) continue
      out.push({ name, created: (await stat(join(this.#init.cacheDir, name))).mtime })
    }
    return out.sort((a, b) => a.name < b.name ? -1 : 1)
  }

  /** Versions of `name` whose header is in the host cache (complete or still arriving). */
  async heldVersions (name: string): Promise<string[]> {
    const out: string[] = []
    for (const entry of await listDir(join(this.#init.cacheDir, name))) {
      if (!entry.endsWith(STATE_SUFFIX)) continue
      const version = entry.slice(0, -STATE_SUFFIX.length)
      if (isValidVersion(version) && await exists(join(this.#init.cacheDir, name, entry, 'header.json'))) out.push(version)
    }
    return out.sort()
  }

  /**
   * The header and state of a held version without fetching anything; undefined when the host cache has
   * no header for it.
   */
  async peek (v: ModelVersion): Promise<VersionView | undefined> {
    const fetching = this.#fetches.get(formatModelVersion(v))
    if (fetching !== undefined) return await fetching.view
    const dir = versionCacheDir(this.#init.cacheDir, v)
    // One stat of the header file gives both its identity and Last-Modified; taken before the header is read,
    // so a header replaced in between only makes the next look read it again.
    const st = await stat(join(`${dir}${STATE_SUFFIX}`, 'header.json'), { bigint: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined
      throw err
    })
    if (st === undefined) return undefined
    const identity = `${st.ino}:${st.mtimeNs}`
    const complete = await exists(join(`${dir}${STATE_SUFFIX}`, 'complete'))
    const done = this.#completeViews.get(dir)
    if (done !== undefined && complete && identity === done.header) return done.view
    const header = await readHeader(dir)
    if (header === undefined) return undefined
    const view = new VersionView({ header, dir, complete, lastModified: st.mtime })
    if (complete) this.#completeViews.set(dir, { view, header: identity })
    return view
  }

  /**
   * The version to serve: complete from the host cache, or being fetched (started here if need be) with
   * its header known. `version` may be `latest`.
   * @throws StoreLockedError when another process is writing the version into the host cache
   * @throws NotFoundError when the seeders know no such model or version; what fetch throws otherwise
   */
  async open (name: string, version: string): Promise<VersionView> {
    const v = { name, version: version === LATEST ? await this.latest(name) : version }
    const held = await this.peek(v)
    if (held?.complete === true) return held
    const fetching = this.#fetches.get(formatModelVersion(v))
    if (fetching !== undefined) return await fetching.view
    // Refused before a fetch starts: a fetch would set up a swarm node and ask the seeders, only to find the lock taken.
    if (held !== undefined && await this.#heldElsewhere(versionCacheDir(this.#init.cacheDir, v))) throw new StoreLockedError(`${formatModelVersion(v)} is being written into the host cache by another process`)
    return await this.#fetch(v).view
  }

  /** The version the seeders call latest, cached for LATEST_TTL_MS; the last known one when they cannot be asked. */
  async latest (name: string): Promise<string> {
    const cached = this.#latest.get(name)
    if (cached instanceof Promise) return await cached
    if (cached !== undefined && this.#now() - cached.at < LATEST_TTL_MS) return cached.version
    const asking = this.#init.resolveLatest(name).then(version => {
      this.#latest.set(name, { version, at: this.#now() })
      return version
    }, (err: unknown) => {
      if (cached !== undefined && !(err instanceof NotFoundError)) {
        this.#init.log.warn({ model: name, err: (err as Error).message, version: cached.version }, 'could not resolve latest; serving the last known version')
        this.#latest.set(name, cached)
        return cached.version
      }
      this.#latest.delete(name)
      throw err
    })
    this.#latest.set(name, asking)
    return await asking
  }

  /** Waits for the fetches this catalog started to end (after the init signal stops them). */
  async close (): Promise<void> {
    await Promise.all([...this.#fetches.values()].map(f => f.done.catch(() => {})))
  }

  /**
   * Whether another process has the cached version's store open. Concurrent requests share one look: a look
   * takes the lock for a moment, and a second look meanwhile would take this process for another.
   */
  #heldElsewhere (dir: string): Promise<boolean> {
    let look = this.#lockLooks.get(dir)
    if (look === undefined) {
      look = heldElsewhere(dir).finally(() => this.#lockLooks.delete(dir))
      this.#lockLooks.set(dir, look)
    }
    return look
  }

  #fetch (v: ModelVersion): FetchEntry {
    const key = formatModelVersion(v)
    const running = this.#fetches.get(key)
    if (running !== undefined) return running
    const { log, cacheDir, signal } = this.#init
    const dir = versionCacheDir(cacheDir, v)
    let view: VersionView | undefined
    let ready!: (view: VersionView) => void
    const viewReady = new Promise<VersionView>(resolve => { ready = resolve })
    log.info({ version: key }, 'gateway: fetching a version the host lacks')
    const done = fetchModel({
      ...this.#init.fetch,
      name: v.name,
      version: v.version,
      out: dir,
      replaceRevision: 'any',
      log,
      signal,
      onSwarm: swarm => {
        // The same Last-Modified as peek() gives once the version is complete: the state's header file's mtime.
        const lastModified = statSync(join(`${dir}${STATE_SUFFIX}`, 'header.json'), { throwIfNoEntry: false })?.mtime ?? new Date(this.#now())
        view = new VersionView({ header: swarm.store.header, dir, complete: swarm.store.have.complete, lastModified })
        view.attach(swarm)
        ready(view)
      },
      onComplete: () => view?.markComplete()
    }).then(() => {
      view?.markComplete()
    }, (err: unknown) => {
      // A version the seeders do not know is the client's 404 (NoSuchKey or NoSuchBucket), not a fault here.
      if (err instanceof NotFoundError) log.info({ version: key, err: err.message }, 'gateway: no such version at the seeders')
      else log.warn({ version: key, err: (err as Error).message }, 'gateway: fetch failed')
      view?.fail(err as Error)
      throw err
    }).finally(() => {
      this.#fetches.delete(key)
    })
    const entry: FetchEntry = { view: Promise.race([viewReady, done.then(() => this.#afterFetch(v))]), done }
    entry.view.catch(() => {})
    this.#fetches.set(key, entry)
    return entry
  }

  /** A fetch that ended before announcing its swarm (the store was already complete): the version as on disk. */
  async #afterFetch (v: ModelVersion): Promise<VersionView> {
    const view = await this.peek(v)
    if (view === undefined) throw new NotFoundError(`${formatModelVersion(v)} vanished from the host cache`)
    return view
  }
}

/** Whether a process has the cached version's store open; false once its state directory is gone. */
async function heldElsewhere (dir: string): Promise<boolean> {
  try {
    return await isHeld(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

async function readHeader (dir: string): Promise<ManifestHeader | undefined> {
  const bytes = await readOptional(join(`${dir}${STATE_SUFFIX}`, 'header.json'))
  if (bytes === undefined) return undefined
  try {
    return decodeHeader(bytes)
  } catch {
    return undefined
  }
}

async function listDir (dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}
