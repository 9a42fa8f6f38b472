/**
 * Follow mode (`fetch --follow`), for rolling updates: track NAME@latest, fetch each new version as it is
 * published, then switch a `current` link to it in one rename, so whatever reads `ROOT/current` sees the old
 * complete version or the new complete version, never a partial one.
 *
 * Layout of ROOT (the `--out` directory):
 *   ROOT/versions/<version>/    one fetch output per version (with its `.modelswarm` state beside it)
 *   ROOT/current -> versions/<version>   a relative symlink, replaced by rename(2)
 *
 * The version `current` names is seeded until the next switch; the previous one's swarm is closed after it.
 * Every version's fetch runs on the one node and host the caller started (`fetch.peerHost`), so all of them
 * listen on the same addresses and bulk port under one peer id.
 * After each switch the `keep` most recent versions stay on disk (src/peer/keep-versions.ts), in ROOT and,
 * with a host cache, in the cache (versions another process holds open there are left alone).
 */
import { randomBytes } from 'node:crypto'
import { readdir, rename, stat, symlink, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { acquireStoreLock } from '../chunker/store-lock.ts'
import { ChunkStore } from '../chunker/chunk-store.ts'
import { StoreLockedError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelVersion } from '../model-version.ts'
import { makeDirs, syncDir } from '../util/files.ts'
import { backoffDelay } from '../util/backoff.ts'
import { sleep } from '../util/sleep.ts'
import { fetchViaHostCache } from './cached-fetch.ts'
import { FETCH_DEFAULTS, fetchModel, type FetchOptions, type FetchResult } from './fetch.ts'
import { isComplete } from './host-cache.ts'
import { versionsToRemove, type HeldVersion } from './keep-versions.ts'
import type { LatestResolver } from './latest-resolver.ts'
import type { PeerHost } from './peer-host.ts'

/** Defaults of follow's options; the CLI's options table shows these. */
export const FOLLOW_DEFAULTS = {
  /** Poll for a new latest version this often, ms: well inside the "deploy every minute" cadence. */
  intervalMs: 10_000,
  /** Signal the child gets after a switch. */
  signal: 'SIGHUP' as NodeJS.Signals,
  /** Versions kept: the current one and the one before it (a server may still be reading it while it reloads). */
  keep: 2
} as const

export interface FollowSwitch {
  result: FetchResult
  /** The version's own directory (`current` points at it). */
  dir: string
  first: boolean
}

export interface FollowOptions {
  /**
   * Fetch options shared by every version's fetch (`onComplete` is called for each); version, out, seedWhile
   * and signal are follow's. `peerHost` is required: a node per version would collide on fixed ports.
   */
  fetch: Omit<FetchOptions, 'version' | 'out' | 'seedWhile' | 'signal'> & { peerHost: PeerHost }
  /** The `--out` directory: versions/ and the `current` link live there. */
  root: string
  /** Host cache directory: versions are fetched there and placed in ROOT/versions/. */
  cacheDir?: string
  resolver: LatestResolver
  /** How often to ask the seeders for the latest version, ms. */
  intervalMs: number
  /** Versions kept on disk (the current one included). */
  keep: number
  /** Called once `current` points at a new complete version; awaited before the previous version is released. */
  onSwitch: (s: FollowSwitch) => void | Promise<void>
  /** Follow ends when this aborts (the child exited, or a stop signal before it started). */
  signal: AbortSignal
  log: Logger
}

/** The link that names the version in use. */
export function currentLink (root: string): string {
  return join(root, 'current')
}

/** Where follow puts one version under ROOT. */
export function followVersionDir (root: string, version: string): string {
  return join(root, 'versions', version)
}

/** Longest wait before fetching a version that failed again, ms. */
const MAX_RETRY_MS = 5 * 60_000

interface Fetched { held: Held, result: FetchResult }

interface Held {
  version: string
  /** Resolves to release the version: its fetch stops seeding and returns. */
  release: () => void
  run: Promise<unknown>
}

/**
 * Runs until `signal` aborts. The first version is awaited with fetch's rules (its failure ends follow
 * with that error); a later version that fails to fetch is logged and tried again after a backoff that
 * starts at the poll interval and grows to MAX_RETRY_MS, while the current version keeps serving.
 * @returns the version `current` names at the end, undefined when stopped before the first switch
 * @throws what the first resolve or fetch throws (not when it failed because `signal` aborted)
 */
export async function follow (opts: FollowOptions): Promise<string | undefined> {
  const log = opts.log.child({ component: 'follow' })
  let held: Held | undefined
  // A version that failed to fetch is tried again after a growing delay, not at every poll.
  const failed = new Map<string, { attempts: number, retryAt: number }>()
  try {
    for (let first = true; !opts.signal.aborted; first = false) {
      const meta = first
        ? await opts.resolver.resolve(opts.fetch.idleTimeoutMs ?? FETCH_DEFAULTS.idleTimeoutMs, opts.signal)
          .catch(err => { if (opts.signal.aborted) return undefined; throw err })
        : await opts.resolver.poll(opts.signal)
      const version = meta?.header.version
      const retry = version === undefined ? undefined : failed.get(version)
      if (version !== undefined && version !== held?.version && (retry === undefined || Date.now() >= retry.retryAt)) {
        log.info({ version: formatModelVersion(meta!.header), from: held?.version }, 'following: new version')
        const next = await fetchVersion(opts, version, first, log)
        if (next === undefined) {
          const attempts = (retry?.attempts ?? 0) + 1
          failed.set(version, { attempts, retryAt: Date.now() + backoffDelay(attempts, { baseMs: opts.intervalMs, maxMs: MAX_RETRY_MS }) })
        } else {
          failed.delete(version)
          const previous = held
          held = next.held
          await switchTo(opts, next, first, previous, log)
        }
      }
      await sleep(opts.intervalMs, opts.signal).catch(() => {})
    }
    return held?.version
  } finally {
    held?.release()
    await held?.run
  }
}

/** Points `current` at the new complete version, tells the caller, then releases and prunes what it replaced. */
async function switchTo (opts: FollowOptions, next: Fetched, first: boolean, previous: Held | undefined, log: Logger): Promise<void> {
  const { version } = next.held
  await switchCurrent(opts.root, version)
  log.info({ version: formatModelVersion(next.result), current: currentLink(opts.root) }, 'switched current')
  await opts.onSwitch({ result: next.result, dir: followVersionDir(opts.root, version), first })
  previous?.release()
  await previous?.run
  await prune(opts, version, log)
}

/**
 * Starts the fetch of `version` and waits until it is complete on disk; its swarm keeps seeding until the
 * returned `held.release()`. Undefined when a later version fails (logged); a first failure throws.
 */
async function fetchVersion (opts: FollowOptions, version: string, first: boolean, log: Logger): Promise<Fetched | undefined> {
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  let completed!: (r: FetchResult) => void
  const complete = new Promise<FetchResult>(resolve => { completed = resolve })
  const out = followVersionDir(opts.root, version)
  await makeDirs(join(opts.root, 'versions'))
  const fetchOpts: FetchOptions = {
    ...opts.fetch,
    version,
    out,
    // Stopping follow stops the download of a version not yet switched to; a held one is released instead.
    signal: opts.signal,
    seedWhile: async r => {
      completed(r)
      await released
    }
  }
  const run = opts.cacheDir === undefined ? fetchModel(fetchOpts) : fetchViaHostCache({ ...fetchOpts, version, cacheDir: opts.cacheDir })
  const endedEarly = run.then(() => { throw new Error('fetch ended before completing') })
  endedEarly.catch(() => {})
  try {
    const result = await Promise.race([complete, endedEarly])
    return { held: { version, release, run: run.catch(err => log.warn({ err: (err as Error).message, version }, 'seeding a followed version ended with an error')) }, result }
  } catch (err) {
    // Follow was stopped (the child exited, a stop signal): not a failure of this version.
    if (opts.signal.aborted) return undefined
    if (first) throw err
    log.warn({ err: (err as Error).message, version }, 'fetching the new version failed; trying again later (the current version keeps serving)')
    return undefined
  }
}

/**
 * Points ROOT/current at versions/<version>: a new symlink under a random name, renamed over the old one,
 * so `current` always resolves to a complete version (the directory appeared in one rename before this).
 */
export async function switchCurrent (root: string, version: string): Promise<void> {
  const tmp = join(root, `.current-${randomBytes(4).toString('hex')}`)
  await symlink(join('versions', version), tmp)
  try {
    await rename(tmp, currentLink(root))
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await syncDir(root)
}

/**
 * Deletes versions beyond `keep`, in ROOT/versions and in the host cache. A failure is logged, never thrown:
 * a version left on disk costs space, not the switch (another follower may be pruning the same cache).
 */
async function prune (opts: FollowOptions, current: string, log: Logger): Promise<void> {
  const inUse = new Set([current])
  const removeLogged = async (v: string, where: string, remove: () => Promise<boolean>): Promise<void> => {
    try {
      if (await remove()) log.info({ version: v, where }, 'removed an old version')
    } catch (err) {
      log.warn({ err: (err as Error).message, version: v, where }, 'could not remove an old version')
    }
  }
  for (const v of versionsToRemove(await heldVersions(join(opts.root, 'versions')), opts.keep, inUse)) {
    await removeLogged(v, opts.root, async () => { await ChunkStore.remove(followVersionDir(opts.root, v)); return true })
  }
  if (opts.cacheDir === undefined) return
  const cacheModelDir = join(opts.cacheDir, opts.fetch.name)
  for (const v of versionsToRemove(await heldVersions(cacheModelDir), opts.keep, inUse)) {
    const dir = join(cacheModelDir, v)
    await removeLogged(v, opts.cacheDir, async () => {
      // A version another process has open (fetching or seeding it) stays; its lock says so.
      const lock = await acquireStoreLock(`${dir}.modelswarm`).catch((err: unknown) => { if (err instanceof StoreLockedError) return undefined; throw err })
      if (lock === undefined) return false
      try {
        await ChunkStore.remove(dir)
        return true
      } finally {
        await lock.release()
      }
    })
  }
}

/** Fetch outputs under `parent` (complete or not), with the time each completed (or was last touched). */
async function heldVersions (parent: string): Promise<HeldVersion[]> {
  const names = await readdir(parent).catch(() => [] as string[])
  const held: HeldVersion[] = []
  for (const name of names) {
    if (!name.endsWith('.modelswarm')) continue
    const version = name.slice(0, -'.modelswarm'.length)
    const dir = join(parent, version)
    const marker = await isComplete(dir) ? join(`${dir}.modelswarm`, 'complete') : `${dir}.modelswarm`
    const at = await stat(marker).then(s => s.mtimeMs, () => undefined)
    if (at !== undefined) held.push({ version, completedAt: at })
  }
  return held
}
