/**
 * The store's lock: an exclusive POSIX record lock (fcntl F_SETLK, through the N-API addon `os-lock`) on
 * `<state dir>/lock`, held through an open descriptor for as long as the store is open.
 *
 * The kernel drops the lock when the process dies however it dies (SIGKILL, OOM kill, container restart), so
 * no stale lock survives a crash: a PID written into a file did, and after a container restart the new process
 * had the dead one's PID (both PID 1) and refused its own store forever. A filesystem lock also holds across
 * processes in different PID and network namespaces that share the directory (several containers on one host
 * with one hostPath cache), which a PID check or an abstract unix socket would not.
 *
 * POSIX record locks belong to the process, not the descriptor: a second lock in the same process succeeds
 * silently, and closing *any* descriptor of the file drops the lock. So second opens in this process are refused
 * from an in-process registry before the file is ever opened again. The file is never deleted while in use
 * (unlinking a lock file lets two processes lock two different inodes of the same name).
 */
import { open, realpath, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { lock, unlock } from 'os-lock'
import { StoreLockedError } from '../errors.ts'

/** Real paths of the state directories this process holds, keyed before any await so two opens cannot race. */
const held = new Set<string>()

export interface StoreLock {
  /** Releases the lock. Safe to call twice. */
  release (): Promise<void>
}

/**
 * Takes the lock of the store whose state directory is `stateDir` (which must exist).
 * @throws StoreLockedError when another process, or this one, holds it.
 */
export async function acquireStoreLock (stateDir: string): Promise<StoreLock> {
  const key = await realpath(stateDir)
  if (held.has(key)) throw new StoreLockedError(`${stateDir} is already open in this process`)
  held.add(key)
  let fh: FileHandle | undefined
  try {
    // 'a' creates the file if missing and never truncates it: the content is not used.
    fh = await open(join(key, 'lock'), 'a')
    await lock(fh.fd, { exclusive: true, immediate: true })
  } catch (err) {
    await fh?.close().catch(() => {})
    held.delete(key)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EAGAIN' || code === 'EACCES') throw new StoreLockedError(`${stateDir} is in use by another process`, { cause: err })
    throw err
  }
  const handle = fh
  let released = false
  return {
    async release () {
      if (released) return
      released = true
      try {
        // Closing the descriptor releases the lock too; unlocking first makes that explicit.
        await unlock(handle.fd).catch(() => {})
        await handle.close()
      } finally {
        held.delete(key)
      }
    }
  }
}
