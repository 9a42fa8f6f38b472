/**
 * `fetch --cache-dir`: a fetch that goes through the host cache. The version is downloaded into
 * `<cache-dir>/<name>/<version>/` under that store's lock by whichever process gets the lock first; every
 * other process fetching it waits for that one (or finds it done) and never downloads it again. Each then
 * places the cached version at its own `--out` (src/peer/host-cache.ts).
 *
 * The process holding the cache store also seeds it; one that found it held by another does not (the host
 * already serves the version through that one, under that one's upload cap) until that one has gone.
 */
import { decodeManifest, manifestId } from '../chunker/manifest.ts'
import { StoreLockedError } from '../errors.ts'
import { formatModelVersion } from '../model-version.ts'
import { sleep } from '../util/sleep.ts'
import { fetchModel, FETCH_DEFAULTS, type FetchOptions, type FetchResult } from './fetch.ts'
import { CacheCopyReplacedError, isHeld, placeVersion, versionCacheDir, waitForCacheTurn, type Placement } from './host-cache.ts'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'

/** How often a fetch waiting for another process's download of the same version looks again, ms. */
export const CACHE_POLL_MS = 250

export interface CachedFetchOptions extends FetchOptions {
  /** A concrete version: the cache directory is chosen from it (resolve `@latest` first). */
  version: string
  cacheDir: string
}

export interface CachedFetchResult extends FetchResult {
  /** Whether this process held the cache's store: fetched what was missing of it (stats say how much) and seeded it. */
  holder: boolean
  placement: Placement
}

/**
 * Fetches `name@version` into the host cache (or waits for the process that is doing so), places it at
 * `out`, then calls `onComplete` and `seedWhile` (or lingers) as fetchModel does.
 * @throws what fetchModel throws, and what placeVersion throws (`out` holding something else)
 */
export async function fetchViaHostCache (opts: CachedFetchOptions): Promise<CachedFetchResult> {
  const started = Date.now()
  const v = { name: opts.name, version: opts.version }
  const dir = versionCacheDir(opts.cacheDir, v)
  const log = opts.log.child({ component: 'host-cache' })
  for (;;) {
    const turn = await waitForCacheTurn(dir, {
      pollMs: CACHE_POLL_MS,
      signal: opts.signal,
      onWait: () => log.info({ version: formatModelVersion(v), dir }, 'another process is fetching this version into the host cache; waiting for it')
    })
    if (turn === 'free') {
      let completed = false
      let placed: Placement | undefined
      try {
        const result = await fetchModel({
          ...opts,
          out: dir,
          replaceRevision: 'any',
          onComplete: undefined,
          seedWhile: async r => {
            completed = true
            placed = await placeVersion(dir, opts.out)
            log.info({ version: formatModelVersion(v), out: opts.out, ...placed }, 'placed from the host cache')
            const done: CachedFetchResult = { ...r, holder: true, placement: placed }
            opts.onComplete?.(done)
            await seedAfter(opts, done)
          }
        })
        return { ...result, holder: true, placement: placed! }
      } catch (err) {
        // Another process opened the store between our look and our open: wait for it like for any other.
        if (err instanceof StoreLockedError && !completed) continue
        throw err
      }
    }
    // Complete, and held by another process that seeds it: take the files, leave the seeding to that one
    // while it lasts. Replaced meanwhile (re-published at the origin): wait for the new copy like for any other.
    const placement = await placeVersion(dir, opts.out).catch((err: unknown) => {
      if (err instanceof CacheCopyReplacedError) return undefined
      throw err
    })
    if (placement === undefined) continue
    log.info({ version: formatModelVersion(v), out: opts.out, ...placement }, 'placed from the host cache')
    const result: CachedFetchResult = { ...await cachedResult(dir, v.name, v.version, started), holder: false, placement }
    opts.onComplete?.(result)
    if (opts.seedWhile === undefined) return result
    const serving = opts.seedWhile(result)
    const served = new AbortController()
    const takeover = seedWhenReleased(dir, opts, serving, served.signal)
    try {
      await serving
    } finally {
      served.abort()
      await takeover
    }
    return result
  }
}

/** How often a process serving a cached version that another one seeds checks whether that one has gone, ms. */
export const TAKEOVER_POLL_MS = 2000

/**
 * While `serving` runs, waits for the process seeding the cached version to release it (its container
 * stopped), then opens the cache's store and seeds it until `serving` settles, so the host keeps serving the
 * version to others while any of its processes uses it. Never throws: seeding is a service, not the job.
 */
async function seedWhenReleased (dir: string, opts: CachedFetchOptions, serving: Promise<unknown>, stop: AbortSignal): Promise<void> {
  const log = opts.log.child({ component: 'host-cache' })
  while (!stop.aborted) {
    await sleep(TAKEOVER_POLL_MS, stop).catch(() => {})
    if (stop.aborted || await isHeld(dir).catch(() => true)) continue
    try {
      log.info({ version: formatModelVersion(opts), dir }, 'the process seeding the host cache\'s copy has gone; seeding it from here')
      await fetchModel({ ...opts, out: dir, replaceRevision: 'any', onSwarm: undefined, onComplete: undefined, signal: stop, seedWhile: async () => await serving.catch(() => {}) })
      return
    } catch (err) {
      if (stop.aborted) return
      if (err instanceof StoreLockedError) continue
      log.warn({ err: (err as Error).message }, 'could not seed the host cache\'s copy')
      return
    }
  }
}

/** What fetchModel does once complete: `seedWhile`, else linger. */
async function seedAfter (opts: FetchOptions, result: FetchResult): Promise<void> {
  if (opts.seedWhile !== undefined) await opts.seedWhile(result)
  else if ((opts.lingerMs ?? FETCH_DEFAULTS.lingerMs) > 0) await sleep(opts.lingerMs!, opts.signal).catch(() => {})
}

async function cachedResult (dir: string, name: string, version: string, started: number): Promise<FetchResult> {
  const manifest = decodeManifest(await readFile(join(`${dir}.modelswarm`, 'manifest.json')))
  return {
    name,
    version,
    manifestId: manifestId(manifest),
    bytes: manifest.files.reduce((n, f) => n + f.size, 0),
    seconds: (Date.now() - started) / 1000,
    resumedChunks: 0,
    stats: { bytesDown: 0, bytesUp: 0, chunksDown: 0, chunksUp: 0, rejected: 0, duplicates: 0, banned: [] }
  }
}
