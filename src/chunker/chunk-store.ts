/**
 * On-disk chunk store: verified chunks go straight to their offsets in the model's own files (a chunk of
 * packed small files to each of them), so a finished download needs no assembly and uploads read from the
 * same files.
 *
 * Layout for an output directory OUT:
 *   OUT.partial/      the model's files while incomplete (sparse, preallocated to full size)
 *   OUT.modelswarm/   header.json; hashes (32 bytes per chunk, zero while unknown); bitfield (one bit per
 *                     chunk, MSB first); lock (an fcntl lock held while open, see store-lock.ts; the file's
 *                     content is unused); clean (present only between a clean close and the next open; holds
 *                     the SHA-256 of the bitfield and hashes files as they were at that close);
 *                     manifest.json and complete (written last, after OUT appears)
 *   OUT/              appears in one rename once every chunk is verified and synced
 *
 * A chunk counts as held only once every one of its bytes is written (short writes are continued; a write
 * error or a write making no progress leaves it missing) and its bit is written after them, so a killed process
 * loses nothing it verified.
 *
 * Resume rules. The bitfield is trusted as it stands only after a clean stop: a `clean` marker whose digest
 * equals the bitfield and hashes read back. Otherwise (a crash, a power loss before writeback, a damaged or
 * hand-edited state file, or a run that saw any write, sync or close error in the store — close() then writes
 * no marker) the chunks the bitfield claims are re-hashed from disk and those that do not match are dropped,
 * and the recorded hashes of chunks not held are forgotten (a failed write may have left one half-written).
 * Before writing the marker, close() syncs the data files written since open and the two state files, so the
 * marker never vouches for bytes still in the page cache.
 */
import { createHash } from 'node:crypto'
import { open, rename, rm, statfs, chmod, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import pMap from 'p-map'
import { DiskFullError, IntegrityError, InvalidInputError, ManifestError, ModelswarmError } from '../errors.ts'
import { formatModelVersion } from '../model-version.ts'
import { Bitfield } from './bitfield.ts'
import { chunkLayout, createManifest, decodeHeader, encodeHeader, encodeManifest, filesOf, HASH_BYTES, isPacked, spansOf, type ChunkLayout, type Manifest, type ManifestHeader } from './manifest.ts'
import { chunkRanges, hashFileRanges } from './chunk-hasher.ts'
import { acquireStoreLock, type StoreLock } from './store-lock.ts'
import { exists, makeDirs, readFullyAt, readOptional, syncDir, writeAtomic, writeFullyAt, writevAt } from '../util/files.ts'

/** A chunk whose hash has not been published yet cannot be written: there is nothing to verify it against. */
export class UnknownHashError extends ModelswarmError {
  constructor (message: string) { super('MS_HASH_UNKNOWN', message) }
}

/** A write to the store failed for a reason other than a full disk (EIO, a write making no progress, …). */
export class StoreWriteError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_STORE_WRITE', message, options) }
}

/**
 * One positional vectored write into a store file, returning the bytes written (a short write returns fewer).
 * `path` names the file, so a caller can tell chunk data from the `hashes` and `bitfield` state files.
 */
export type StoreWrite = (fh: FileHandle, buffers: Uint8Array[], position: number, path: string) => Promise<number>

export interface ChunkStoreOptions {
  /** Where the complete model appears. */
  dir: string
  header: ManifestHeader
  /**
   * What to do with a store of the same NAME@VERSION but another header (the origin re-published the version):
   * - `unfinished`: an unfinished one is discarded and started afresh; a finished one is refused (a host's
   *   output directory, which a user may be reading).
   * - `any`: one finished or not, or one whose header cannot be read, is discarded, `dir` included: a cache that
   *   modelswarm owns (the seeder's; the host cache, whose finished copies are placed as hard links, so outputs
   *   placed earlier keep their bytes), where it is what a withdrawal or a removal that failed left behind.
   *   Another model version's store is refused all the same.
   * Unset: refused.
   */
  replaceRevision?: 'unfinished' | 'any'
  /** Bytes to leave free on the filesystem beyond what the model needs. @default 64 MiB */
  reserveBytes?: number
  /**
   * Test seam: every write of chunk bytes, hashes and bitfield goes through it, so tests can inject short
   * writes and errors (EIO) that a real filesystem gives only rarely. @default FileHandle.writev
   */
  write?: StoreWrite
}

export interface ResumeReport {
  /** Chunks trusted from a previous run. */
  resumed: number
  /** Chunks the bitfield claimed that failed re-verification after an unclean stop. */
  discarded: number
}

const ZERO_HASH = new Uint8Array(HASH_BYTES)
const MAX_OPEN_FILES = 128
/** Files created or synced at once: enough to keep libuv's threadpool and the disk's queue busy. */
const FILE_CONCURRENCY = 16

export class ChunkStore {
  readonly dir: string
  readonly header: ManifestHeader
  readonly layout: ChunkLayout
  readonly have: Bitfield
  readonly resume: ResumeReport
  readonly #stateDir: string
  readonly #partialDir: string
  readonly #hashes: Uint8Array
  #knownHashes: number
  #complete: boolean
  #closed = false
  readonly #hashFile: FileHandle
  readonly #bitFile: FileHandle
  readonly #lock: StoreLock
  readonly #write: StoreWrite
  readonly #handles = new Map<number, { fh: Promise<FileHandle>, users: number }>()
  /** Indexes of the files written since open: close() syncs them before vouching for them with `clean`. */
  readonly #dirtyFiles = new Set<number>()
  /** Packed small files written whole and synced since open (see #writeWhole): finalize() need not sync them again. */
  readonly #syncedFiles = new Set<number>()
  /** Writes in progress by chunk: a second write of the same chunk waits for the first instead of racing it. */
  readonly #writing = new Map<number, Promise<boolean>>()
  /** The finalize under way: a second caller (an HA seeder's download and its pull) waits for it rather than renaming twice. */
  #finalizing: Promise<Manifest> | undefined
  /** Re-checks of held chunks (verifyHeld) under way: finalize waits for them. */
  readonly #checks = new Set<Promise<boolean>>()
  /** finalize()'s rename of the partial directory, once begun; `#moved` once done (the store may not be complete yet). */
  #moving: Promise<void> | undefined
  #moved = false
  /** Files of a finished store reopened for writing, to repair a chunk that rotted on disk. */
  readonly #repairing = new Set<number>()
  /** The first write, sync or close error since open; while set, close() writes no `clean` marker. */
  #failure: unknown
  /** Persistence of bitfield bytes is serialised so an older byte never lands after a newer one. */
  #bitWrites: Promise<unknown> = Promise.resolve()

  private constructor (init: {
    dir: string, header: ManifestHeader, hashes: Uint8Array, have: Bitfield, complete: boolean,
    hashFile: FileHandle, bitFile: FileHandle, lock: StoreLock, write: StoreWrite
  }) {
    this.dir = init.dir
    this.header = init.header
    this.layout = chunkLayout(init.header)
    this.have = init.have
    this.resume = { resumed: init.have.count, discarded: 0 }
    this.#stateDir = `${init.dir}.modelswarm`
    this.#partialDir = `${init.dir}.partial`
    this.#hashes = init.hashes
    this.#knownHashes = 0
    for (let i = 0; i < this.layout.count; i++) if (!this.#hashAt(i).every(b => b === 0)) this.#knownHashes++
    this.#complete = init.complete
    this.#hashFile = init.hashFile
    this.#bitFile = init.bitFile
    this.#lock = init.lock
    this.#write = init.write
  }

  /**
   * Opens (creating or resuming) the store for `header` at `dir`.
   * @throws StoreLockedError when another process, or an earlier open in this one, has the store open
   * @throws InvalidInputError when `dir` holds another model version, another revision `replaceRevision` does not
   *   replace, or something not written by modelswarm
   * @throws StoreWriteError when another revision's files cannot be removed (the next open tries again)
   * @throws DiskFullError when the filesystem cannot hold the missing bytes plus `reserveBytes`
   */
  static async open (opts: ChunkStoreOptions): Promise<ChunkStore> {
    const { dir, header } = opts
    const stateDir = `${dir}.modelswarm`
    const partialDir = `${dir}.partial`
    const layout = chunkLayout(header)
    await makeDirs(stateDir).catch(err => { throw dirError(stateDir, err) })
    const lock = await acquireStoreLock(stateDir)
    const opened: FileHandle[] = []
    try {
      const headerBytes = encodeHeader(header)
      const existing = await readOptional(join(stateDir, 'header.json'))
      let fresh = existing === undefined
      if (existing !== undefined && !Buffer.from(existing).equals(headerBytes)) {
        const other = safeDecodeHeader(existing)
        const replace = opts.replaceRevision
        // A name differing only in case shares the directory on a case-insensitive filesystem: never replaced.
        const sameVersion = other === formatModelVersion(header) || (replace === 'any' && other === UNREADABLE)
        // A finalize that stopped between its rename and the `complete` marker left a finished revision too.
        const finished = async (): Promise<boolean> => await exists(join(stateDir, 'complete')) || await exists(dir)
        if (replace === undefined || !sameVersion || (replace === 'unfinished' && await finished())) {
          throw new InvalidInputError(`${dir} already holds ${other}${other === formatModelVersion(header) ? ' as published earlier (another revision)' : ''} — choose another output directory or remove ${dir}, ${partialDir} and ${stateDir}`)
        }
        // Nothing of the old revision may end up in the new one: its bytes, hashes and bitfield go. The old
        // header goes last, so a removal that fails midway is retried by the next open, never taken for a
        // directory modelswarm did not write.
        for (const f of ['complete', 'manifest.json', 'bitfield', 'clean']) await rm(join(stateDir, f), { force: true })
        try {
          if (replace === 'any') await rm(dir, { recursive: true, force: true })
          await rm(partialDir, { recursive: true, force: true })
        } catch (err) {
          throw new StoreWriteError(`cannot remove the old revision of ${other} at ${dir}: ${(err as Error).message} — check the permissions and health of ${dir}*`, { cause: err })
        }
        for (const f of ['hashes', 'header.json']) await rm(join(stateDir, f), { force: true })
        fresh = true
      }
      if (fresh) {
        if (await exists(dir)) throw new InvalidInputError(`${dir} exists and was not written by modelswarm — choose another output directory or remove it`)
        await writeAtomic(join(stateDir, 'header.json'), headerBytes)
      }
      let complete = await exists(join(stateDir, 'complete'))
      const hashFile = await openSized(join(stateDir, 'hashes'), layout.count * HASH_BYTES, opened)
      const bitFile = await openSized(join(stateDir, 'bitfield'), Math.ceil(layout.count / 8), opened)
      const hashes = new Uint8Array(layout.count * HASH_BYTES)
      await readFullyAt(hashFile, hashes, 0)
      const bits = new Uint8Array(Math.ceil(layout.count / 8))
      await readFullyAt(bitFile, bits, 0)
      const spareBitsSet = clearSpareBits(bits, layout.count)
      const have = new Bitfield(layout.count, bits)
      const marker = await readOptional(join(stateDir, 'clean'))
      const clean = !spareBitsSet && marker !== undefined && marker.equals(stateDigest(bits, hashes))
      await rm(join(stateDir, 'clean'), { force: true })
      // Finish a finalize that stopped between the rename and the `complete` marker.
      if (!complete && have.complete && await exists(dir) && !await exists(partialDir)) {
        const chunks = Array.from({ length: layout.count }, (_, i) => hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES))
        await writeAtomic(join(stateDir, 'manifest.json'), encodeManifest(createManifest(header, chunks)))
        await writeAtomic(join(stateDir, 'complete'), new Uint8Array())
        complete = true
      }
      // Every chunk was verified before the model appeared; a damaged bitfield cannot change that.
      if (complete) for (const i of [...have.missingIndexes()]) have.set(i)
      const store = new ChunkStore({ dir, header, hashes, have, complete, hashFile, bitFile, lock, write: opts.write ?? writevAt })
      if (!complete) {
        await store.#prepareFiles(opts.reserveBytes ?? 64 * 1024 * 1024)
        if (!clean) await store.#recheck()
      }
      return store
    } catch (err) {
      await Promise.all(opened.map(fh => fh.close().catch(() => {})))
      await lock.release()
      throw isNoSpace(err) ? mapWriteError(err, stateDir) : err
    }
  }

  /**
   * Deletes a store its owner has closed: DIR, DIR.partial and DIR.modelswarm. The `complete` marker and bitfield go
   * first, so a crash midway leaves a store that claims nothing rather than one claiming deleted chunks.
   */
  static async remove (dir: string): Promise<void> {
    const stateDir = `${dir}.modelswarm`
    await rm(join(stateDir, 'complete'), { force: true })
    await rm(join(stateDir, 'bitfield'), { force: true })
    await rm(dir, { recursive: true, force: true })
    await rm(`${dir}.partial`, { recursive: true, force: true })
    await rm(stateDir, { recursive: true, force: true })
  }

  get complete (): boolean { return this.#complete }
  get haveBytes (): number {
    let n = 0
    for (const i of this.have.setIndexes()) n += this.layout.length[i]!
    return n
  }

  get knownHashes (): number { return this.#knownHashes }

  /** The chunk's expected SHA-256, or undefined while it is not published yet. */
  hashOf (index: number): Uint8Array | undefined {
    const h = this.#hashAt(index)
    return h.every(b => b === 0) ? undefined : h
  }

  /**
   * Records a chunk's hash (from a verified signature, or computed from the origin).
   * @throws IntegrityError for an invalid digest or one differing from the recorded hash
   * @throws DiskFullError | StoreWriteError when the hash cannot be written; it is then not recorded
   */
  async recordHash (index: number, digest: Uint8Array): Promise<void> {
    await this.recordHashes([[index, digest]])
  }

  /**
   * Records many chunks' hashes (a signed batch, the metadata a fetch resolved) with one write of the
   * range they span: 5,000 small files meant 5,000 separate writes. All are checked first; on a failed
   * write none is recorded. Throws IntegrityError for an invalid hash or one differing from the recorded.
   */
  async recordHashes (entries: Iterable<readonly [number, Uint8Array]>): Promise<void> {
    const fresh: Array<readonly [number, Uint8Array]> = []
    for (const [index, digest] of entries) {
      this.#checkIndex(index)
      if (digest.length !== HASH_BYTES || Buffer.from(digest).equals(ZERO_HASH)) throw new IntegrityError(`chunk ${index}: invalid hash`)
      const known = this.hashOf(index)
      if (known === undefined) fresh.push([index, digest])
      else if (!Buffer.from(known).equals(digest)) throw new IntegrityError(`chunk ${index}: a different hash is already recorded`)
    }
    if (fresh.length === 0) return
    for (const [index, digest] of fresh) this.#hashes.set(digest, index * HASH_BYTES)
    this.#knownHashes += fresh.length
    const from = Math.min(...fresh.map(([i]) => i)) * HASH_BYTES
    const to = (Math.max(...fresh.map(([i]) => i)) + 1) * HASH_BYTES
    try {
      await this.#writeAt(this.#hashFile, [this.#hashes.subarray(from, to)], from, join(this.#stateDir, 'hashes'))
    } catch (err) {
      for (const [index] of fresh) this.#hashes.fill(0, index * HASH_BYTES, (index + 1) * HASH_BYTES)
      this.#knownHashes -= fresh.length
      throw err
    }
  }

  /**
   * Verifies and writes one chunk. `digest` lets a receiver that hashed the bytes as they arrived skip a
   * second pass; it is still compared against the recorded hash here. Returns false if already held.
   * @throws IntegrityError | UnknownHashError for bytes that do not verify (nothing is written)
   * @throws DiskFullError | StoreWriteError when the bytes or the bit cannot be written; the chunk is then not held
   */
  async writeChunk (index: number, data: Uint8Array | readonly Uint8Array[], digest?: Uint8Array): Promise<boolean> {
    this.#checkIndex(index)
    if (this.have.has(index)) return false
    const running = this.#writing.get(index)
    if (running !== undefined) return await running.then(() => false, () => this.writeChunk(index, data, digest))
    const write = this.#writeChunk(index, data, digest)
    this.#writing.set(index, write)
    try {
      return await write
    } finally {
      this.#writing.delete(index)
    }
  }

  async #writeChunk (index: number, data: Uint8Array | readonly Uint8Array[], digest?: Uint8Array): Promise<boolean> {
    const expected = this.hashOf(index)
    if (expected === undefined) throw new UnknownHashError(`chunk ${index}: hash not published yet`)
    const parts = data instanceof Uint8Array ? [data] : data
    const length = parts.reduce((s, p) => s + p.length, 0)
    if (length !== this.layout.length[index]) throw new IntegrityError(`chunk ${index}: got ${length} bytes, expected ${this.layout.length[index]}`)
    const actual = digest ?? sha256(parts)
    if (!Buffer.from(actual).equals(expected)) throw new IntegrityError(`chunk ${index}: SHA-256 mismatch`)
    const spans = spansOf(this.layout, index)
    // The files of a chunk of packed small files are written several at a time, as #prepareFiles creates files.
    await pMap(spans, async span => {
      const bytes = spans.length === 1 ? parts : sliceParts(parts, span.at, span.length)
      const path = this.#pathOf(span.file)
      try {
        if (isPacked(this.header.files[span.file]!, this.header.chunkSize)) return await this.#writeWhole(span.file, bytes)
        this.#dirtyFiles.add(span.file)
        await this.#withFile(span.file, fh => this.#writeAt(fh, bytes, span.offset, path))
      } catch (err) {
        throw this.#failed(err, path)
      }
    }, { concurrency: FILE_CONCURRENCY })
    this.have.set(index)
    try {
      await this.#persistBit(index)
    } catch (err) {
      // Held means bytes and bit both written; the store is now unclean, so the next open re-checks the disk.
      this.have.clear(index)
      throw err
    }
    for (const file of filesOf(this.layout, index)) {
      if (this.#repairing.has(file) && ![...this.#chunksOf(file)].some(i => !this.have.has(i))) await this.#endRepair(file)
    }
    return true
  }

  /**
   * Re-hashes a held chunk from disk. If its bytes no longer match (a rotten sector, a stray write), the
   * chunk is dropped — no longer held, so no longer served — and its file made writable again so the
   * chunk can be written anew, also in a finished store. Returns whether the chunk was intact.
   */
  async verifyHeld (index: number): Promise<boolean> {
    this.#checkIndex(index)
    // Not across a finish: a chunk dropped while finalize runs would leave the store complete without it,
    // and the refetch unable to write it (found by review; test in chunk-store.test.ts).
    await this.#finalizing?.catch(() => {})
    const check = this.#verifyHeld(index)
    this.#checks.add(check)
    try {
      return await check
    } finally {
      this.#checks.delete(check)
    }
  }

  async #verifyHeld (index: number): Promise<boolean> {
    if (!this.have.has(index)) return false
    if (await this.#verifyOnDisk(index)) return true
    this.have.clear(index)
    await this.#persistBit(index)
    for (const file of filesOf(this.layout, index)) {
      if (!this.#complete || this.#repairing.has(file)) continue
      this.#repairing.add(file)
      await this.#dropHandle(file)
      // A finished file carries its manifest mode, maybe read-only; the owner may write while it is repaired.
      await chmod(this.#pathOf(file), this.header.files[file]!.mode | 0o200)
    }
    return false
  }

  async #endRepair (file: number): Promise<void> {
    this.#repairing.delete(file)
    await this.#dropHandle(file)
    const path = join(this.dir, this.header.files[file]!.path)
    await syncFile(path)
    await chmod(path, this.header.files[file]!.mode)
  }

  * #chunksOf (file: number): Generator<number> {
    for (let i = this.layout.firstChunk[file]!; i < this.layout.endChunk[file]!; i++) yield i
  }

  async #dropHandle (file: number): Promise<void> {
    const e = this.#handles.get(file)
    this.#handles.delete(file)
    await e?.fh.then(fh => this.#try(fh.close()), () => {})
  }

  /** Reads a held chunk whole. */
  async readChunk (index: number): Promise<Buffer> {
    return this.readRange(index, 0, this.layout.length[index]!)
  }

  /** Reads `length` bytes at `offset` inside a held chunk, into `into` when given (a reused buffer). */
  async readRange (index: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.#checkIndex(index)
    if (!this.have.has(index)) throw new InvalidInputError(`chunk ${index} is not held`)
    if (offset < 0 || length < 0 || offset + length > this.layout.length[index]!) throw new RangeError(`range ${offset}+${length} outside chunk ${index}`)
    const buf = into === undefined || into.length < length ? Buffer.allocUnsafe(length) : into.subarray(0, length)
    const reads = spansOf(this.layout, index)
      .map(span => ({ span, from: Math.max(offset, span.at), to: Math.min(offset + length, span.at + span.length) }))
      .filter(r => r.from < r.to)
    await pMap(reads, ({ span, from, to }) => this.#withFile(span.file, async fh => {
      if (await readFullyAt(fh, buf.subarray(from - offset, to - offset), span.offset + from - span.at) < to - from) {
        throw new IntegrityError(`chunk ${index}: file ${this.#pathOf(span.file)} is shorter than the manifest says`)
      }
    }), { concurrency: FILE_CONCURRENCY })
    return buf
  }

  /** The full manifest, once every hash is known. */
  manifest (): Manifest {
    const hashes: Uint8Array[] = []
    for (let i = 0; i < this.layout.count; i++) {
      const h = this.hashOf(i)
      if (h === undefined) throw new UnknownHashError(`chunk ${i}: hash not known yet`)
      hashes.push(h)
    }
    return createManifest(this.header, hashes)
  }

  /**
   * Makes the model appear at `dir`: syncs every file, applies modes, renames the partial directory
   * into place, then writes the manifest and the `complete` marker. Idempotent. Any failure (a sync's EIO
   * included) rejects and leaves the store unclean, so the next open re-verifies before finishing.
   */
  async finalize (): Promise<Manifest> {
    while (this.#checks.size > 0) await Promise.allSettled([...this.#checks])
    if (!this.have.complete) throw new InvalidInputError(`cannot finalize ${this.dir}: ${this.layout.count - this.have.count} chunks missing`)
    const manifest = this.manifest()
    if (this.#complete) return manifest
    this.#finalizing ??= this.#finalize(manifest).finally(() => { this.#finalizing = undefined })
    return await this.#finalizing
  }

  async #finalize (manifest: Manifest): Promise<Manifest> {
    try {
      // Handles being read stay open (a seeder or a host serves while it finishes; an open file survives
      // the rename); the others close, so their files are reopened read-only.
      await this.#closeHandles(e => e.users === 0)
      // The partial directory, or the final one when an earlier try failed after the rename.
      const dir = this.#filesDir
      await pMap(this.header.files, async (f, i) => {
        const path = join(dir, f.path)
        if (!this.#syncedFiles.has(i)) await syncFile(path)
        await chmod(path, f.mode)
      }, { concurrency: FILE_CONCURRENCY })
      // Directory modes last and deepest first: a directory closed to writes must not stop what goes inside it.
      for (const d of [...this.header.dirs].reverse()) await chmod(join(dir, d.path), d.mode)
      await syncDir(dir)
      if (!this.#moved) {
        this.#moving = rename(this.#partialDir, this.dir).then(() => { this.#moved = true })
        await this.#moving
      }
      await syncDir(dirname(this.dir))
      await writeAtomic(join(this.#stateDir, 'manifest.json'), encodeManifest(manifest))
      await writeAtomic(join(this.#stateDir, 'complete'), new Uint8Array())
    } catch (err) {
      throw this.#failed(err, this.dir)
    }
    this.#dirtyFiles.clear()
    this.#complete = true
    return manifest
  }

  /**
   * Flushes state and releases the lock. Marks the stop as clean — so the next open trusts the bitfield without
   * re-hashing — only if no write, sync or close failed since open; returns whether it did. Never rejects for
   * an I/O error: one only costs the next open a re-verification.
   */
  async close (): Promise<boolean> {
    if (this.#closed) return false
    this.#closed = true
    try {
      await this.#closeHandles()
      await this.#bitWrites
      for (const file of this.#dirtyFiles) await this.#try(syncFile(this.#pathOf(file)))
      await this.#try(this.#bitFile.datasync())
      await this.#try(this.#hashFile.datasync())
      await this.#try(this.#bitFile.close())
      await this.#try(this.#hashFile.close())
      if (this.#failure !== undefined) return false
      return await this.#try(writeAtomic(join(this.#stateDir, 'clean'), stateDigest(this.have.bytes, this.#hashes)).then(() => true)) ?? false
    } finally {
      await this.#lock.release()
    }
  }

  #hashAt (index: number): Uint8Array {
    return this.#hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES)
  }

  /**
   * Writes a packed small file whole, created here rather than by #prepareFiles, and synced before it is closed:
   * one open instead of three (create, write, sync at finalize). Creating a file cost 0.3–1 ms on this machine's
   * ext4 (33 µs on tmpfs), so 5,000 files are bound by it; see bench:small-files.
   */
  async #writeWhole (file: number, parts: readonly Uint8Array[]): Promise<void> {
    const path = this.#pathOf(file)
    const fh = await open(path, 'w')
    try {
      await this.#writeAt(fh, parts, 0, path)
      await fh.datasync()
    } finally {
      await fh.close()
    }
    this.#syncedFiles.add(file)
  }

  /** Writes every byte or rejects with a typed error, recording the failure so close() writes no `clean`. */
  async #writeAt (fh: FileHandle, buffers: readonly Uint8Array[], position: number, path: string): Promise<void> {
    try {
      await writeFullyAt(fh, buffers, position, (h, b, p) => this.#write(h, b, p, path))
    } catch (err) {
      throw this.#failed(err, path)
    }
  }

  /** Records `err` as the store's failure and returns it as a typed error. */
  #failed (err: unknown, where: string): unknown {
    this.#failure ??= err
    return mapWriteError(err, where)
  }

  /** Awaits `p`, recording a rejection as the store's failure instead of throwing; undefined on failure. */
  async #try<T> (p: Promise<T>): Promise<T | undefined> {
    try {
      return await p
    } catch (err) {
      this.#failure ??= err
      return undefined
    }
  }

  /**
   * Runs `fn` with an open handle on file `file` of the version. Handles are cached (opening per chunk cost ~3 % of
   * an uploader's CPU), least recently used first out, never while in use.
   */
  async #withFile<T> (file: number, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.#handles.get(file)
    if (entry === undefined) {
      // In use from the start: with every other cached handle in use, the trim would close this one.
      entry = { fh: this.#open(file), users: 1 }
      entry.fh.catch(() => this.#handles.delete(file))
      this.#handles.set(file, entry)
      this.#trimHandles()
    } else {
      this.#handles.delete(file)
      this.#handles.set(file, entry)
      entry.users++
    }
    try {
      return await fn(await entry.fh)
    } finally {
      entry.users--
    }
  }

  /** Opens a file of the version where it is; an open that finalize's rename overtook is made again at the new place. */
  async #open (file: number): Promise<FileHandle> {
    // Read-only once every chunk is written and finalize may have applied the files' modes (0444 stops a
    // non-root 'r+'); a chunk being repaired is written again.
    const flags = (this.#complete || this.#finalizing !== undefined) && !this.#repairing.has(file) ? 'r' : 'r+'
    const path = this.#pathOf(file)
    try {
      return await open(path, flags)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || this.#moving === undefined) throw err
      await this.#moving.catch(() => {})
      if (this.#pathOf(file) === path) throw err
      return await open(this.#pathOf(file), flags)
    }
  }

  #trimHandles (): void {
    for (const [file, e] of this.#handles) {
      if (this.#handles.size <= MAX_OPEN_FILES) return
      if (e.users > 0) continue
      this.#handles.delete(file)
      // A close can report a failed writeback (NFS does): the file is still synced again at close().
      void e.fh.then(fh => this.#try(fh.close()), () => {})
    }
  }

  /** Closes the cached handles `which` selects (all by default). */
  async #closeHandles (which: (e: { users: number }) => boolean = () => true): Promise<void> {
    const closing: Array<Promise<FileHandle>> = []
    for (const [file, e] of this.#handles) {
      if (!which(e)) continue
      this.#handles.delete(file)
      closing.push(e.fh)
    }
    await Promise.all(closing.map(fh => fh.then(fh => this.#try(fh.close()), () => {})))
  }

  #pathOf (file: number): string {
    return join(this.#filesDir, this.header.files[file]!.path)
  }

  /** Where the model's files are: the partial directory until finalize() renames it. */
  get #filesDir (): string {
    return this.#complete || this.#moved ? this.dir : this.#partialDir
  }

  #checkIndex (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.layout.count) throw new RangeError(`chunk index ${index} out of range 0..${this.layout.count - 1}`)
  }

  #persistBit (index: number): Promise<void> {
    const byte = index >> 3
    // The byte is read when its turn comes, so it carries every bit set or cleared before then.
    const p = this.#bitWrites.then(() => this.#writeAt(this.#bitFile, [this.have.bytes.subarray(byte, byte + 1)], byte, join(this.#stateDir, 'bitfield')))
    // A failure is recorded by #writeAt and reported to this bit's writer; later bits still get their turn.
    this.#bitWrites = p.catch(() => {})
    return p
  }

  /** Creates every file but packed ones at full size (sparse) after checking the filesystem can hold what is missing. */
  async #prepareFiles (reserveBytes: number): Promise<void> {
    await makeDirs(this.#partialDir).catch(err => { throw dirError(this.#partialDir, err) })
    const missing = this.layout.totalSize - this.haveBytes
    const fs = await statfs(this.#partialDir)
    const free = fs.bavail * fs.bsize
    if (free < missing + reserveBytes) {
      throw new DiskFullError(`${this.#partialDir}: needs ${missing} more bytes (+${reserveBytes} reserve) but the filesystem has ${free} free — free space or choose another directory`)
    }
    // Every directory once (empty ones are part of the version too), then the files, several at a time:
    // one after another, 5,000 small files took 3.6 s here, most of it waiting on each syscall in turn.
    const dirs = new Set([...this.header.dirs.map(d => d.path), ...this.header.files.map(f => dirname(f.path))])
    for (const d of [...dirs].sort()) if (d !== '.') await makeDirs(join(this.#partialDir, d))
    // Packed small files are created when their chunk is written (#writeWhole).
    await pMap(this.header.files.filter(f => !isPacked(f, this.header.chunkSize)), async f => {
      const fh = await open(join(this.#partialDir, f.path), 'a')
      try {
        if ((await fh.stat()).size !== f.size) await fh.truncate(f.size)
      } finally {
        await fh.close()
      }
    }, { concurrency: FILE_CONCURRENCY })
  }

  /**
   * After an unclean stop: re-hashes every claimed chunk and drops those whose bytes do not match (or cannot be
   * read), then forgets the hashes of chunks not held — one half-written by a failed write would otherwise make
   * its chunk unwritable for good. A peer records them again from signed metadata, a seeder recomputes them while
   * pulling. Failed writes here are recorded: this run then ends unclean and the next open checks again.
   */
  async #recheck (): Promise<void> {
    let discarded = 0
    for (const i of [...this.have.setIndexes()]) {
      if (await this.#verifyOnDisk(i)) continue
      this.have.clear(i)
      await this.#persistBit(i).catch(() => {})
      discarded++
    }
    Object.assign(this.resume, { resumed: this.have.count, discarded })
    let forgot = false
    for (const i of this.have.missingIndexes()) {
      if (this.hashOf(i) === undefined) continue
      this.#hashes.fill(0, i * HASH_BYTES, (i + 1) * HASH_BYTES)
      this.#knownHashes--
      forgot = true
    }
    if (forgot) await this.#writeAt(this.#hashFile, [this.#hashes], 0, join(this.#stateDir, 'hashes')).catch(() => {})
  }

  async #verifyOnDisk (index: number): Promise<boolean> {
    const expected = this.hashOf(index)
    if (expected === undefined) return false
    // Bytes that cannot be read back are not held.
    const actual = await hashFileRanges(chunkRanges(this.#filesDir, this.header, this.layout, index)).catch(() => undefined)
    return actual?.equals(expected) === true
  }
}

/** Bytes [from, from + length) of the concatenation of `parts`, as views (no copy). */
function sliceParts (parts: readonly Uint8Array[], from: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = []
  let at = 0
  for (const p of parts) {
    const lo = Math.max(from - at, 0)
    const hi = Math.min(from + length - at, p.length)
    if (lo < hi) out.push(p.subarray(lo, hi))
    at += p.length
  }
  return out
}

function sha256 (parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** What the `clean` marker holds: the digest of the bitfield and hashes files as close() left them. */
function stateDigest (bits: Uint8Array, hashes: Uint8Array): Buffer {
  return createHash('sha256').update(bits).update(hashes).digest()
}

/** Clears bits past `length` in the last byte (only damage sets them); returns whether any was set. */
function clearSpareBits (bits: Uint8Array, length: number): boolean {
  const spare = bits.length * 8 - length
  if (spare === 0) return false
  const mask = (1 << spare) - 1
  const had = (bits[bits.length - 1]! & mask) !== 0
  bits[bits.length - 1]! &= ~mask
  return had
}

/** Opens a state file read-write at exactly `size` bytes (created, extended with zeros or cut); adds it to `opened`. */
async function openSized (path: string, size: number, opened: FileHandle[]): Promise<FileHandle> {
  const fh = await open(path, await exists(path) ? 'r+' : 'w+')
  opened.push(fh)
  if ((await fh.stat()).size !== size) await fh.truncate(size)
  return fh
}

async function syncFile (path: string): Promise<void> {
  const fh = await open(path, 'r+')
  try { await fh.datasync() } finally { await fh.close() }
}

const UNREADABLE = 'an unreadable model version'

function safeDecodeHeader (bytes: Uint8Array): string {
  try {
    const h = decodeHeader(bytes)
    return formatModelVersion(h)
  } catch (err) {
    if (err instanceof ManifestError) return UNREADABLE
    throw err
  }
}

/** A directory the store cannot create: a wrong path (usage), or a full disk. */
function dirError (dir: string, err: unknown): unknown {
  if (isNoSpace(err)) return mapWriteError(err, dir)
  const code = (err as NodeJS.ErrnoException).code
  if (code === undefined) return err
  return new InvalidInputError(`cannot create ${dir} (${code}: ${(err as Error).message}) — choose an output directory on a writable filesystem`, { cause: err })
}

function isNoSpace (err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

function mapWriteError (err: unknown, where: string): unknown {
  if (err instanceof ModelswarmError) return err
  if (isNoSpace(err)) return new DiskFullError(`${where}: no space left on device — free space and rerun; verified chunks are kept`, { cause: err })
  return new StoreWriteError(`${where}: ${(err as Error).message} — rerun to resume; verified chunks are kept`, { cause: err })
}
