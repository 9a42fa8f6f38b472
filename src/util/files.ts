/** Small filesystem helpers shared by the chunk store and the seeder's per-version state. */
import { randomBytes } from 'node:crypto'
import { link, mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * Creates `path` and any missing parents, one directory at a time. Node's `mkdir({ recursive: true })`
 * loops forever where mkdir answers ENOENT for a parent that exists (e.g. under /proc: 70 % CPU for
 * 20 minutes seen with `fetch --out /proc/nope`); here that is the error it is.
 */
export async function makeDirs (path: string): Promise<void> {
  try {
    await mkdir(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST' && (await stat(path)).isDirectory()) return
    if (code !== 'ENOENT' || dirname(path) === path || await exists(dirname(path))) throw err
    await makeDirs(dirname(path))
    await mkdir(path).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e })
  }
}

/** The file's bytes, or undefined when it does not exist. */
export async function readOptional (path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/**
 * Write-then-rename, so a reader sees the old or the new file, never half of one. Any failure (ENOSPC while
 * writing, EIO from the sync or the close) rejects and leaves `path` as it was, with no temporary file behind.
 * The temporary name is random, not the PID: processes in different PID namespaces (containers sharing a cache
 * directory) can have the same PID.
 */
export async function writeAtomic (path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  try {
    const fh = await open(tmp, 'wx')
    try {
      // FileHandle.writeFile continues short writes until every byte is written.
      await fh.writeFile(data)
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {})
    throw err
  }
}

/**
 * Creates `path` with `data` only if it does not exist, all or nothing: the bytes go to a temporary file that
 * is synced and then hard-linked into place (link fails rather than replace). Returns false when `path` already
 * existed. Any failure rejects and leaves `path` absent or as another writer made it — never a cut-short file.
 */
export async function createExclusive (path: string, data: Uint8Array, mode: number): Promise<boolean> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  try {
    const fh = await open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.datasync()
    } finally {
      await fh.close()
    }
    await link(tmp, path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw err
  } finally {
    await rm(tmp, { force: true }).catch(() => {})
  }
}

export async function syncDir (path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

/** Positional vectored write returning the bytes written, which may be fewer than asked (a short write). */
export type WriteAt = (fh: FileHandle, buffers: Uint8Array[], position: number) => Promise<number>

export const writevAt: WriteAt = async (fh, buffers, position) => (await fh.writev(buffers, position)).bytesWritten

/** Thrown when a write returns 0 bytes for a non-empty request: retrying would spin forever. */
export class NoProgressError extends Error {
  readonly code = 'EIO'
}

/**
 * Writes every byte of `buffers` at `position`, continuing after short writes. Rejects with the write's own
 * error (ENOSPC, EIO, …) or NoProgressError, having written some unknown prefix: the caller must not count
 * the range as written.
 */
export async function writeFullyAt (fh: FileHandle, buffers: readonly Uint8Array[], position: number, write: WriteAt = writevAt): Promise<void> {
  let rest = buffers.filter(b => b.length > 0)
  while (rest.length > 0) {
    const n = await write(fh, rest, position)
    if (!Number.isInteger(n) || n <= 0) throw new NoProgressError(`write at byte ${position} made no progress`)
    position += n
    rest = skipBytes(rest, n)
  }
}

/** `buffers` without their first `n` bytes (views, no copies). */
function skipBytes (buffers: Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  while (i < buffers.length && n >= buffers[i]!.length) n -= buffers[i++]!.length
  const out = buffers.slice(i)
  if (n > 0 && out.length > 0) out[0] = out[0]!.subarray(n)
  return out
}

/** Reads up to `buf.length` bytes at `position`, continuing short reads; returns the bytes read (less at end of file). */
export async function readFullyAt (fh: FileHandle, buf: Uint8Array, position: number): Promise<number> {
  let done = 0
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done
}
