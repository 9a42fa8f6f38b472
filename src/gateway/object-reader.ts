/**
 * Streams a byte range of one file of a version into a writable (the HTTP response). A complete version is
 * read straight from its file; a version still arriving is read chunk by chunk, each part only once its
 * chunk is verified, with the next few chunks the reader needs asked for ahead of the rarest-first order.
 */
import { open, type FileHandle } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { BufferPool } from '../util/buffer-pool.ts'
import { readFullyAt } from '../util/files.ts'
import { rangeParts, type ByteRange } from './byte-range.ts'
import type { VersionView } from './version-view.ts'

/**
 * Chunks ahead of the reader's position that are given priority: at least 8, and at least 8 MiB of them. Counted
 * in chunks alone, 128 KiB chunks left a reader 1 MiB of read-ahead and the first of 10 shards took 0.59
 * (median) of the whole model's time instead of 0.24 with 1 MiB chunks (lab, shard scenario, N = 16). How
 * many of them are in flight at once is the planner's budget (receiveBudgetBytes: 16 chunks); the rest are
 * asked for first as those arrive.
 */
function readAhead (view: VersionView): number {
  return Math.max(8, Math.ceil(8 * 1024 * 1024 / view.header.chunkSize))
}
/** Bytes read from disk at once: large reads keep the syscall count low. */
const READ_BYTES = 1024 * 1024
/** Reads written to the socket and not yet taken by it, per response: reading overlaps writing. */
const WRITES_IN_FLIGHT = 4
const pool = new BufferPool(READ_BYTES, 64)

/**
 * Resolves once the first bytes of the range are readable: verified (an immediate resolve for a complete
 * version). Rejects with the fetch's error or `signal`'s reason. Lets the caller answer an error before
 * committing to a status line.
 */
export async function waitForStart (view: VersionView, file: number, range: ByteRange, signal: AbortSignal): Promise<void> {
  const first = rangeParts(view.layout, file, range.start, range.end)[0]
  if (first === undefined || view.has(first.chunk)) return
  const release = view.prioritize(rangeParts(view.layout, file, range.start, range.end).slice(0, readAhead(view)).map(p => p.chunk))
  try {
    await view.waitFor(first.chunk, signal)
  } finally {
    release()
  }
}

/** Writes bytes [range.start, range.end] of the file to `out`; never a byte of a chunk not yet verified. */
export async function streamRange (view: VersionView, file: number, range: ByteRange, out: Writable, signal: AbortSignal): Promise<void> {
  let fh: FileHandle | undefined
  let release = (): void => {}
  try {
    if (view.complete) {
      if (range.end >= range.start) await copyRange(fh = await openFirst(view.filePaths(file)), range.start, range.end - range.start + 1, out, signal)
    } else {
      const parts = rangeParts(view.layout, file, range.start, range.end)
      for (let k = 0; k < parts.length; k++) {
        const part = parts[k]!
        if (!view.has(part.chunk)) {
          release()
          release = view.prioritize(parts.slice(k, k + readAhead(view)).map(p => p.chunk))
          await view.waitFor(part.chunk, signal)
        }
        fh ??= await openFirst(view.filePaths(file))
        await copyRange(fh, part.fileOffset, part.length, out, signal)
      }
    }
    out.end()
  } finally {
    release()
    await fh?.close()
  }
}

/**
 * Opens the first path that exists. A fetch renames the partial directory into place when it completes;
 * a handle opened before stays valid, and one opened after finds the file at its final path.
 */
async function openFirst (paths: readonly string[]): Promise<FileHandle> {
  let last: unknown
  for (const p of paths) {
    try {
      return await open(p, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      last = err
    }
  }
  throw last
}

/**
 * Copies `length` bytes at `position` of the file to `out`: the next read overlaps the writes of the
 * previous ones (at most WRITES_IN_FLIGHT), and buffers go back to a pool once the socket has taken them —
 * a fresh 1 MiB buffer per read (fs read streams) spent a tenth of the gateway's CPU in GC. Verified chunks
 * are not hashed again here: a complete version is read straight from its files.
 *
 * Measured (`bench:gateway`, 2026-11-30, 2 GiB held, medians of 3, 2 cores): with a reader that reads the
 * socket into one reused buffer, 2.60 GiB/s = 1.20 × reading the same files from disk (2.16; 0.90 × on a
 * loaded box), the gateway at 0.38 CPU-s per GiB, most of it the kernel's copies. Through the AWS SDK or
 * node:http the same path gives 0.56–0.77 GiB/s (0.26–0.36 ×): those readers spend 1.4–1.7 CPU-s per GiB
 * themselves (a fresh 64 KiB buffer per socket read: 5× the minor page faults of a reused buffer) on the
 * two cores the gateway shares, so no change here would raise them. 256 KiB or 4 MiB reads, 2–16 writes in flight: no better (a
 * harness running this loop against a 1 GiB file).
 */
export async function copyRange (fh: FileHandle, position: number, length: number, out: Writable, signal: AbortSignal): Promise<void> {
  const inFlight: Array<Promise<void>> = []
  for (let done = 0; done < length;) {
    signal.throwIfAborted()
    if (inFlight.length >= WRITES_IN_FLIGHT) await inFlight.shift()
    const n = Math.min(READ_BYTES, length - done)
    const buf = pool.take(n)
    if (await readFullyAt(fh, buf, position + done) < n) {
      pool.give(buf)
      throw new Error(`short read at ${position + done}: the file is shorter than its manifest says`)
    }
    const w = written(out, buf, signal)
    // An abort (the client went away) rejects every queued write, maybe while a read is awaited: observed
    // at once, so it surfaces from the awaits, not as an unhandled rejection ending the gateway.
    w.catch(() => {})
    inFlight.push(w)
    done += n
  }
  await Promise.all(inFlight)
}

/**
 * Resolves once `out` has taken `buf` (its write callback), then returns the buffer to the pool. On abort it
 * rejects at once and leaves the buffer to the garbage collector: a dead socket may still hold it.
 */
function written (out: Writable, buf: Buffer, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    out.write(buf, err => {
      signal.removeEventListener('abort', onAbort)
      if (err !== undefined && err !== null) return reject(err)
      pool.give(buf)
      resolve()
    })
  })
}
