/**
 * The host cache (`--cache-dir`): one directory per host that every modelswarm process on it shares, so a
 * version crosses the network to a host once however many containers ask for it (as Dragonfly's dfdaemon
 * and Kraken's agent keep one store per node).
 *
 * Layout: `<cache-dir>/<name>/<version>/` is a complete or partial fetch output directory — the model's
 * files plus its `.modelswarm/` state (bitfield, manifest, store lock) — written only by the process that
 * holds that store's lock. Fetch, the read gateway and the node agent all find a version there.
 *
 * A fetch places a cached version at its own `--out` as hard links (a reflink or a copy where `--out` is on
 * another filesystem), so N containers hold one copy of the bytes. Linked files share one inode with the
 * cache and with every other container's `--out`: a write through any of them changes all of them. So the
 * cache's files lose their write bits when first placed; root (CAP_DAC_OVERRIDE) can still write them, so
 * containers must treat `--out` as read-only.
 */
import { randomBytes } from 'node:crypto'
import { chmod, copyFile, constants, link, lstat, readdir, readFile, readlink, rename, rm, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { acquireStoreLock, type StoreLock } from '../chunker/store-lock.ts'
import { InvalidInputError, StoreLockedError } from '../errors.ts'
import type { ModelVersion } from '../model-version.ts'
import { exists, makeDirs, readOptional, syncDir, writeAtomic } from '../util/files.ts'
import { sleep } from '../util/sleep.ts'

/** Directory of one version inside a host cache; `v` must be a validated ModelVersion (names have no '/'). */
export function versionCacheDir (cacheDir: string, v: ModelVersion): string {
  return join(cacheDir, v.name, v.version)
}

/** State files of a complete store that make a placed copy a complete fetch output of its own (lock and `clean` are per store). */
const STATE_FILES = ['header.json', 'hashes', 'bitfield', 'manifest.json'] as const

/** Whether the fetch output directory `dir` holds a complete, verified version (its `complete` marker is written last). */
export async function isComplete (dir: string): Promise<boolean> {
  return await exists(join(`${dir}.modelswarm`, 'complete')) && await exists(dir)
}

export interface CacheTurnOptions {
  /** How often to look again while another process holds the version, ms. */
  pollMs: number
  /** Called once when this process starts waiting for another. */
  onWait?: () => void
  signal?: AbortSignal
}

/**
 * Waits until this process may open the cached version's store (`'free'`: no process holds its lock — it is
 * absent, partial or complete), or until another process that holds it has completed it (`'complete'`).
 * The lock is taken and released at once: the caller opens the store itself, and may still lose a race for it
 * (ChunkStore.open then throws StoreLockedError and the caller waits again).
 * @throws the signal's reason when aborted
 */
export async function waitForCacheTurn (dir: string, opts: CacheTurnOptions): Promise<'free' | 'complete'> {
  const stateDir = `${dir}.modelswarm`
  // No state directory: no process has opened the version's store. Creating one here to lock it left an
  // empty `<name>/<version>.modelswarm/` behind every fetch of a version no seeder knows; the store's own
  // open creates it once the version is found, and a process that loses that race waits (see above).
  if (!await exists(stateDir)) return 'free'
  let waiting = false
  for (;;) {
    opts.signal?.throwIfAborted()
    const lock = await tryLock(stateDir)
    if (lock !== undefined) {
      await lock.release()
      return 'free'
    }
    if (await isComplete(dir)) return 'complete'
    if (!waiting) opts.onWait?.()
    waiting = true
    await sleep(opts.pollMs, opts.signal)
  }
}

/** Whether some process (this one included) has the cached version's store open now. */
export async function isHeld (dir: string): Promise<boolean> {
  const lock = await tryLock(`${dir}.modelswarm`)
  await lock?.release()
  return lock === undefined
}

async function tryLock (stateDir: string): Promise<StoreLock | undefined> {
  try {
    return await acquireStoreLock(stateDir)
  } catch (err) {
    if (err instanceof StoreLockedError) return undefined
    throw err
  }
}

/** The host cache's copy changed under a placement (placeVersion): the caller waits for the new copy. */
export class CacheCopyReplacedError extends StoreLockedError {}

export interface Placement {
  /** 'present': `out` already held this version. */
  outcome: 'placed' | 'present'
  /** Files hard-linked, and files copied (reflinked where the filesystem can) because `out` is on another filesystem. */
  linked: number
  copied: number
}

/**
 * Makes the complete fetch output `src` (a host cache version) appear at `out` in one rename, as links to
 * the same files plus a copy of its state, so `out` is a complete fetch output of its own (a later
 * `fetch --out out` finds it done). Holds `out`'s store lock meanwhile.
 * @throws InvalidInputError when `out` exists and holds something else
 * @throws StoreLockedError when another process is writing `out`
 * @throws CacheCopyReplacedError when a fetch through the cache replaced `src` while it was placed
 */
export async function placeVersion (src: string, out: string): Promise<Placement> {
  const srcState = `${src}.modelswarm`
  const outState = `${out}.modelswarm`
  const header = await readFile(join(srcState, 'header.json'))
  await makeDirs(outState)
  const lock = await acquireStoreLock(outState)
  try {
    const held = await readOptional(join(outState, 'header.json'))
    if (await exists(out)) {
      if (held === undefined || !held.equals(header)) throw new InvalidInputError(`${out} exists and holds something else — choose another --out or remove ${out} and ${outState}`)
      // The model appeared before its marker (a placement stopped between the two): it is complete.
      await writeAtomic(join(outState, 'complete'), new Uint8Array())
      return { outcome: 'present', linked: 0, copied: 0 }
    }
    // Whatever a fetch without the cache left here (partial state of this or another version) is replaced.
    await rm(join(outState, 'complete'), { force: true })
    await rm(`${out}.partial`, { recursive: true, force: true })
    const tmp = `${out}.placing-${randomBytes(4).toString('hex')}`
    const counts = { linked: 0, copied: 0 }
    try {
      await linkTree(src, tmp, counts)
      const state = await Promise.all(STATE_FILES.map(f => readFile(join(srcState, f))))
      // Read without the cache's lock: a fetch through the cache may have replaced a version re-published at the
      // origin meanwhile (its `complete` marker goes first, its header last), and a mix must never be placed.
      if (!await exists(join(srcState, 'complete')) || !(await readFile(join(srcState, 'header.json'))).equals(header)) {
        throw new CacheCopyReplacedError(`the host cache's copy at ${src} was replaced while it was placed (re-published at the origin)`)
      }
      for (const [k, f] of STATE_FILES.entries()) await writeAtomic(join(outState, f), state[k]!)
      await syncDir(tmp)
      await rename(tmp, out)
    } catch (err) {
      await rm(tmp, { recursive: true, force: true })
      throw err
    }
    await syncDir(dirname(out))
    await writeAtomic(join(outState, 'complete'), new Uint8Array())
    return { outcome: 'placed', ...counts }
  } finally {
    await lock.release()
  }
}

/**
 * Recreates the tree `src` at `dst`: files as hard links (their write bits cleared first, see the module
 * note), a reflink or copy when linking is impossible across filesystems, symlinks as symlinks, directory
 * modes applied after their contents.
 */
async function linkTree (src: string, dst: string, counts: { linked: number, copied: number }): Promise<void> {
  const st = await lstat(src)
  await makeDirs(dst)
  for (const e of await readdir(src, { withFileTypes: true })) {
    const from = join(src, e.name)
    const to = join(dst, e.name)
    if (e.isDirectory()) await linkTree(from, to, counts)
    else if (e.isSymbolicLink()) await symlink(await readlink(from), to)
    else if (e.isFile()) await linkFile(from, to, counts)
  }
  await chmod(dst, st.mode & 0o7777)
}

async function linkFile (from: string, to: string, counts: { linked: number, copied: number }): Promise<void> {
  const mode = (await lstat(from)).mode & 0o7777
  // Another user's file (a container running as another uid) cannot be changed, and its owner cleared it already.
  if ((mode & 0o222) !== 0) await chmod(from, mode & ~0o222).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'EPERM') throw err })
  try {
    await link(from, to)
    counts.linked++
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    // EXDEV: another filesystem; EPERM/ENOTSUP: one without hard links. Reflink where possible (FICLONE falls back to a copy).
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'ENOTSUP') throw err
    await copyFile(from, to, constants.COPYFILE_FICLONE)
    await chmod(to, mode & ~0o222)
    counts.copied++
  }
}
