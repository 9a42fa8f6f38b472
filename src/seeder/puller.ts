/**
 * Pulls one version from the origin into the cache: parallel ranged reads of whole consecutive chunks
 * (see pull-plan.ts), all under one token bucket for the line, each chunk hashed as it streams and handed on
 * the moment it is written (small chunks a batch at a time, see BATCH_BYTES) so the swarm can serve it while
 * the pull goes on. Chunks already held (a resumed pull) are skipped, so each byte crosses the line once; a
 * retried range is the only repeat, and counted.
 */
import { createHash } from 'node:crypto'
import pMap from 'p-map'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { filesOf, spansOf, type ChunkLayout } from '../chunker/manifest.ts'
import { IntegrityError, isRetriable, OriginChangedError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { take, type TokenBucket } from '../util/token-bucket.ts'
import { formatModelVersion, type ModelVersion } from '../model-version.ts'
import type { Origin } from '../origins/origin.ts'
import { backoffDelay } from '../util/backoff.ts'
import { sleep } from '../util/sleep.ts'
import { planReads, type ReadRange } from './pull-plan.ts'

export interface PullOptions {
  /** Concurrent ranged reads. @default 4 */
  parallel?: number
  /** Most bytes of consecutive chunks one reader takes at a time (one read per file they cover). @default 256 MiB */
  rangeBytes?: number
  /** Shared budget for the line; undefined means unshaped. */
  line?: TokenBucket
  /** Attempts per chunk before the pull fails. @default 5 */
  attempts?: number
  /** First retry delay; doubles each attempt, with jitter. @default 500 ms */
  retryBaseMs?: number
  signal?: AbortSignal
  /** Counters to add to, so callers see progress live; a fresh set when omitted. */
  stats?: PullStats
  log: Logger
  /** Called after each chunk is verified into the store, in completion order. */
  onChunk: (index: number, digest: Uint8Array) => void
  /**
   * Each file's stamp when the version's pull started (origin listing). Each chunk is stored only if its
   * file's stamp is still that after the chunk was read: a file rewritten or replaced during the pull
   * ends it with OriginChangedError rather than mixing two contents in one version.
   */
  stamps?: Readonly<Record<string, string>>
  /** The chunks to pull, ascending (an HA seeder pulls only what no neighbour holds). @default every chunk the store lacks */
  only?: readonly number[]
}

export interface PullStats {
  /** Bytes read from the origin, retries included. */
  bytesRead: number
  /** Of those, bytes of attempts that failed and were read again: bytesRead − bytesRetried is one copy. */
  bytesRetried: number
  chunksPulled: number
  retries: number
}

export function emptyPullStats (): PullStats {
  return { bytesRead: 0, bytesRetried: 0, chunksPulled: 0, retries: 0 }
}

interface Pull {
  origin: Origin
  ref: ModelVersion
  store: ChunkStore
  stats: PullStats
  opts: PullOptions
}

/**
 * Pulls the chunks `store` lacks. The first reader to fail stops the others, and the promise settles only
 * once every reader has: a failed pull reads (and spends the line on) nothing more, and a pull started
 * again after it never races a reader of this one. Rejects with that first failure.
 */
export async function pullVersion (origin: Origin, ref: ModelVersion, store: ChunkStore, opts: PullOptions): Promise<PullStats> {
  const stop = new AbortController()
  const signal = opts.signal === undefined ? stop.signal : AbortSignal.any([opts.signal, stop.signal])
  const pull: Pull = { origin, ref, store, stats: opts.stats ?? emptyPullStats(), opts: { ...opts, signal } }
  const parallel = opts.parallel ?? 4
  const missing = opts.only?.filter(i => !store.have.has(i)) ?? [...store.have.missingIndexes()]
  const ranges = planReads(store.layout, missing, { parallel, rangeBytes: opts.rangeBytes ?? DEFAULT_RANGE_BYTES })
  let next = 0
  let failure: { err: unknown } | undefined
  const worker = async (): Promise<void> => {
    // One buffer per worker, reused: a fresh 32 MiB allocation per chunk cost more CPU in page
    // faults and GC than hashing (measured on a 1 GiB HDFS pull: 5–6 CPU-s with fresh buffers, 3.4 reused).
    let buf: Buffer | undefined
    try {
      while (next < ranges.length) {
        signal.throwIfAborted()
        const range = unheld(ranges[next++]!, store)
        if (range === undefined) continue
        buf ??= Buffer.allocUnsafeSlow(readerBufferBytes(store.header.chunkSize))
        await pullRange(pull, range, buf)
      }
    } catch (err) {
      failure ??= { err }
      stop.abort(err)
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, Math.max(1, ranges.length)) }, worker))
  if (failure !== undefined) throw failure.err
  return pull.stats
}

const DEFAULT_RANGE_BYTES = 256 * 1024 * 1024

/**
 * The range without the chunks at either end the store came to hold since the plan (an HA seeder's swarm
 * download, or another seeder's pull, brought them), undefined if none is left: they are not read again.
 */
function unheld (range: ReadRange, store: ChunkStore): ReadRange | undefined {
  let { first, count } = range
  while (count > 0 && store.have.has(first)) { first++; count-- }
  while (count > 0 && store.have.has(first + count - 1)) count--
  return count === 0 ? undefined : { first, count }
}

/** Where a range's read stands: the chunk being filled and its bytes so far. */
interface Cursor { index: number, got: number }

/** Reads a range, resuming after a failure at the chunk that failed; each chunk has its own attempts. */
async function pullRange (pull: Pull, range: ReadRange, buf: Buffer): Promise<void> {
  const { opts, stats } = pull
  const end = range.first + range.count
  const cursor: Cursor = { index: range.first, got: 0 }
  let failures = 0
  while (true) {
    const from = cursor.index
    try {
      await readChunks(pull, from, end, buf, cursor)
      return
    } catch (err) {
      if (cursor.index > from) failures = 0
      failures++
      // The chunk being read is never stored part-way: whoever pulls it next (this retry, or the next pull
      // after this one failed or was stopped by another reader's failure) reads those bytes again.
      stats.bytesRetried += cursor.got
      cursor.got = 0
      if (opts.signal?.aborted === true || !isRetriable(err) || failures >= (opts.attempts ?? 5)) throw err
      stats.retries++
      const delay = backoffDelay(failures, { baseMs: opts.retryBaseMs ?? 500 })
      opts.log.warn({ chunk: cursor.index, path: pathOf(pull.store, cursor.index), attempt: failures, delayMs: Math.round(delay), err: (err as Error).message }, 'origin read failed, retrying')
      await sleep(delay, opts.signal)
    }
  }
}

/** Largest piece the origin fills at once: the grain of hashing and of the line's token bucket. */
const REGION_BYTES = 1024 * 1024

/** One origin read: `length` bytes at `offset` of file `file`, consecutive spans of it merged. */
interface OriginRead { file: number, offset: number, length: number }

/** The origin reads that bring chunks [from, end), in byte order: one per file, or per large file's run of chunks. */
function readsFor (layout: ChunkLayout, from: number, end: number): OriginRead[] {
  const reads: OriginRead[] = []
  for (let i = from; i < end; i++) {
    for (const span of spansOf(layout, i)) {
      const last = reads.at(-1)
      if (last?.file === span.file && last.offset + last.length === span.offset) last.length += span.length
      else reads.push({ file: span.file, offset: span.offset, length: span.length })
    }
  }
  return reads
}

/**
 * Whole chunks a reader holds before they are stored: each is stored only after its file's stamp is checked
 * at the origin (a NameNode call for HDFS), and one check per file now serves every chunk of the batch.
 * Checked per 128 KiB chunk, the reader waited on 512 calls per 64 MiB: lab follow scenario, v2 pulled in
 * 31.0–32.4 s (23.5 s in a test build without the checks); checked per batch, 14.1–15.3 s (README,
 * "Network lab"). A batch is at most BATCH_BYTES (a larger chunk is a batch alone, as before), and is stored
 * when, at the pace chunks are being read, its first would wait more than BATCH_MS for the next: a slow line
 * holds none back from the swarm (judged as each chunk is whole; a read that stalls mid-chunk holds the
 * batch until it goes on).
 */
const BATCH_BYTES = 4 * 1024 * 1024
const BATCH_MS = 500

/** The size of a reader's buffer for `chunkSize`: one batch, so also the most it has read and not yet stored. */
export function readerBufferBytes (chunkSize: number): number {
  return Math.max(chunkSize, BATCH_BYTES)
}

/**
 * The origin reads of chunks [from, end) into the worker's buffer, which the origin fills directly (no
 * copy); each chunk is hashed as it fills, and a batch of whole chunks is stored the moment it is full (or
 * its first would wait too long for the next, or the range ends), the read paused meanwhile. On failure the
 * cursor points at the first chunk not stored and counts the bytes read past it, which the retry reads again.
 */
async function readChunks (pull: Pull, from: number, end: number, buf: Buffer, cursor: Cursor): Promise<void> {
  const { origin, ref, store, stats, opts } = pull
  const { layout } = store
  let hash = createHash('sha256')
  // Whole chunks read and not yet being stored: [cursor.index - digests.length, cursor.index), their bytes at buf[0, held).
  let digests: Buffer[] = []
  let held = 0
  // When the batch's first chunk was whole, and when the chunk before this one was.
  let since = 0
  let lastWhole = performance.now()
  // A read can fail while a batch is being stored; the retry must not touch the buffer or the cursor before that settles.
  let storing: Promise<unknown> = Promise.resolve()
  const flush = (): Promise<void> => {
    const first = cursor.index - digests.length
    const batch = digests
    const bytes = held
    const partial = cursor.got
    digests = []
    held = 0
    const done = { stored: 0 }
    return storeChunks(pull, first, batch, buf.subarray(0, bytes), done).then(() => {
      // The pace is the read's: the wait for the stamps is not counted in the next chunk's time.
      lastWhole = performance.now()
    }, (err: unknown) => {
      cursor.index = first + done.stored
      cursor.got = partial
      for (let i = cursor.index; i < first + batch.length; i++) cursor.got += layout.length[i]!
      throw err
    })
  }
  try {
    for (const read of readsFor(layout, from, end)) {
      const path = store.header.files[read.file]!.path
      let left = read.length
      await origin.read(ref, path, read.offset, read.length, {
        region: () => {
          if (left === 0) throw new IntegrityError(`${path}: origin sent more than the ${read.length} bytes asked for at ${read.offset}`)
          return buf.subarray(held + cursor.got, held + Math.min(layout.length[cursor.index]!, cursor.got + REGION_BYTES, cursor.got + left))
        },
        filled: n => {
          hash.update(buf.subarray(held + cursor.got, held + cursor.got + n))
          cursor.got += n
          left -= n
          stats.bytesRead += n
          const paid = opts.line === undefined ? undefined : take(opts.line, n, opts.signal)
          const index = cursor.index
          const chunkLength = layout.length[index]!
          if (cursor.got < chunkLength) return paid
          const digest = hash.digest()
          hash = createHash('sha256')
          digests.push(digest)
          const now = performance.now()
          if (digests.length === 1) since = now
          // Read at this pace, would the next chunk still be whole within BATCH_MS of the first?
          const soon = now + (now - lastWhole) - since < BATCH_MS
          lastWhole = now
          held += chunkLength
          cursor.index++
          cursor.got = 0
          // A chunk unlike the hash recorded for it ends the pull now (storeChunks says why, stamps first).
          const next = cursor.index < end ? layout.length[cursor.index]! : Infinity
          if (!unlikeRecorded(store, index, digest) && soon && held + next <= buf.length) return paid
          // The cursor has moved on (the origin asks for the next region while the batch is stored, and
          // fills it only after); it moves back if storing fails, so the retry reads the rest again.
          const stored = flush()
          storing = stored.catch(() => {})
          return paid === undefined ? stored : Promise.all([paid, stored]).then(() => {})
        }
      }, opts.signal)
      if (left > 0) throw new IntegrityError(`${path}: short read, ${left} of ${read.length} bytes from ${read.offset} missing`)
    }
  } catch (err) {
    // The whole chunks in hand are stored all the same: only the chunk the read failed in is read again.
    // If they cannot be, for a reason a retry would meet again (the file changed, the disk is full), that is the error.
    await storing
    if (digests.length > 0 && opts.signal?.aborted !== true) {
      await flush().catch((storeErr: unknown) => { if (!isRetriable(storeErr)) throw storeErr })
    }
    throw err
  } finally {
    await storing
  }
}

/**
 * Stores chunks first, first + 1, … (their `digests`, their bytes back to back in `data`) once their files'
 * stamps are checked, counting in `done.stored` those it wrote (a failure leaves the rest unstored).
 */
async function storeChunks (pull: Pull, first: number, digests: readonly Uint8Array[], data: Buffer, done: { stored: number }): Promise<void> {
  const { ref, store, stats, opts } = pull
  // Each file once, named with its first chunk here; the stamps of packed small files are asked several at a time.
  const files = new Map<number, number>()
  for (let k = 0; k < digests.length; k++) for (const file of filesOf(store.layout, first + k)) if (!files.has(file)) files.set(file, first + k)
  await pMap(files, ([file, index]) => checkStamp(pull, index, file), { concurrency: 16 })
  let offset = 0
  for (const [k, digest] of digests.entries()) {
    const index = first + k
    const length = store.layout.length[index]!
    if (unlikeRecorded(store, index, digest)) {
      throw new OriginChangedError(`${formatModelVersion(ref)} ${pathOf(store, index)}: chunk ${index} changed at the origin since it was first hashed — versions must be immutable`)
    }
    if (store.hashOf(index) === undefined) await store.recordHash(index, digest)
    await store.writeChunk(index, data.subarray(offset, offset + length), digest)
    done.stored++
    offset += length
    stats.chunksPulled++
    opts.onChunk(index, digest)
  }
}

/** Whether chunk `index` read as `digest` differs from a hash recorded for it before (a resumed pull's). */
function unlikeRecorded (store: ChunkStore, index: number, digest: Uint8Array): boolean {
  const known = store.hashOf(index)
  return known !== undefined && !Buffer.from(known).equals(digest)
}

/** Throws OriginChangedError unless file `file`'s stamp at the origin is still the one listed when the pull started. */
async function checkStamp (pull: Pull, index: number, file: number): Promise<void> {
  const { ref, store, opts } = pull
  const { path, size: listed } = store.header.files[file]!
  const stamp = opts.stamps?.[path]
  const now = stamp === undefined ? undefined : await pull.origin.stampOf(ref, path, opts.signal)
  if (now === stamp) return
  // Stamps start with the file's size: one shorter than listed is a file cut short, not new content.
  const size = Number(now!.split(':')[0])
  if (size < listed) throw new OriginChangedError(`${formatModelVersion(ref)} ${path} shrank to ${size} bytes during the pull (listed with ${listed}) — versions must not change once their marker is written`)
  throw new OriginChangedError(`${formatModelVersion(ref)} ${path} changed at the origin during the pull (chunk ${index}) — versions must not change once their marker is written; the version is pulled again as a new revision`, { republished: true })
}

/** The path of the (first) file chunk `index` holds bytes of, for messages. */
function pathOf (store: ChunkStore, index: number): string {
  return store.header.files[filesOf(store.layout, index)[0]!]!.path
}
