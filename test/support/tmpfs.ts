/**
 * A real small filesystem for disk-full tests: a tmpfs mounted on a fresh directory (root only), and a
 * filler file that takes its free space down to a chosen number of bytes.
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, open, rm, stat, statfs, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** True when this process may mount filesystems (tests needing a tmpfs are skipped otherwise). */
export const canMount = process.getuid?.() === 0

export interface Tmpfs {
  dir: string
  /** Bytes the filesystem can still give out. */
  free: () => Promise<number>
  /** Writes a filler file until the filesystem is full, then gives back `leave` bytes of it. */
  fill: (leave: number) => Promise<void>
  /** Deletes the filler file. */
  drain: () => Promise<void>
  /** Unmounts (lazily) and removes the directory. */
  destroy: () => Promise<void>
}

export async function mountTmpfs (bytes: number): Promise<Tmpfs> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-tmpfs-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir])
  const filler = join(dir, 'filler')
  return {
    dir,
    free: async () => { const s = await statfs(dir); return s.bavail * s.bsize },
    fill: async (leave) => {
      const fh = await open(filler, 'a')
      const block = Buffer.alloc(64 * 1024, 0xee)
      try {
        for (;;) await fh.write(block)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
      } finally {
        await fh.close()
      }
      const { size } = await stat(filler)
      await truncate(filler, Math.max(0, size - leave))
    },
    drain: async () => { await rm(filler, { force: true }) },
    destroy: async () => {
      // Lazy: a failed test may still hold files open in it; the mount goes away once they close.
      execFileSync('umount', ['--lazy', dir])
      await rm(dir, { recursive: true, force: true })
    }
  }
}
