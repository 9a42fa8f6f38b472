/**
 * Streams a byte range of one file of a version into a writable (the HTTP response). A complete version is
 * read straight from its file; a version still arriving is read chunk by chunk, each part only once its
 * chunk is verified, with the next few chunks the reader needs asked for ahead of the rarest-first order.
 */
import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import type { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { readFullyAt } from '../util/files.ts'
import { rangeParts, type ByteRange, type RangePart } from './byte-range.ts'
import type { VersionView } from './version-view.ts'

/** Chunks ahead of the reader's position that are asked for first: enough to keep a few requests in flight. */
export const READ_AHEAD_CHUNKS = 8
/** Bytes read from disk at once (also the read stream's buffer): large reads keep the syscall count low. */
const READ_BYTES = 1024 * 1024

/**
 * Resolves once the first bytes of the range are readable: verified (an immediate resolve for a complete
 * version). Rejects with the fetch's error or `signal`'s reason. Lets the caller answer an error before
 * committing to a status line.
 */
export async function waitForStart (view: VersionView, file: number, range: ByteRange, signal: AbortSignal): Promise<void> {
  const first = rangeParts(view.layout, file, range.start, range.end)[0]
  if (first === undefined || view.has(first.chunk)) return
  const release = view.prioritize(rangeParts(view.layout, file, range.start, range.end).slice(0, READ_AHEAD_CHUNKS).map(p => p.chunk))
  try {
    await view.waitFor(first.chunk, signal)
  } finally {
    release()
  }
}

/** Writes bytes [range.start, range.end] of the file to `out`; never a byte of a chunk not yet verified. */
export async function streamRange (view: VersionView, file: number, range: ByteRange, out: Writable, signal: AbortSignal): Promise<void> {
  if (range.end < range.start) {
    // An empty file: no chunk to wait for, no byte to read.
    out.end()
    return
  }
  if (view.complete) {
    await pipeline(createReadStream(view.filePaths(file)[0]!, { start: range.start, end: range.end, highWaterMark: READ_BYTES }), out, { signal })
    return
  }
  const parts = rangeParts(view.layout, file, range.start, range.end)
  let fh: FileHandle | undefined
  let release = (): void => {}
  try {
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k]!
      if (!view.has(part.chunk)) {
        release()
        release = view.prioritize(parts.slice(k, k + READ_AHEAD_CHUNKS).map(p => p.chunk))
        await view.waitFor(part.chunk, signal)
      }
      fh ??= await openFirst(view.filePaths(file))
      await copyPart(fh, part, out, signal)
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

async function copyPart (fh: FileHandle, part: RangePart, out: Writable, signal: AbortSignal): Promise<void> {
  for (let done = 0; done < part.length;) {
    signal.throwIfAborted()
    const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, part.length - done))
    const n = await readFullyAt(fh, buf, part.fileOffset + done)
    if (n < buf.length) throw new Error(`short read at ${part.fileOffset + done}: the file is shorter than its manifest says`)
    done += n
    if (!out.write(buf)) await drained(out, signal)
  }
}

function drained (out: Writable, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      out.off('drain', onDrain)
      out.off('close', onClose)
      signal.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('connection closed'))
    const onAbort = (): void => done(signal.reason as Error)
    out.once('drain', onDrain)
    out.once('close', onClose)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
