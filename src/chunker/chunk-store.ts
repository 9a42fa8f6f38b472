/**
 * On-disk chunk store: verified chunks go straight to their offsets in the model's own files, so a
 * finished download needs no assembly and uploads read from the same files.
 *
 * Layout for an output directory OUT:
 *   OUT.partial/      the model's files while incomplete (sparse, preallocated to full size)
 *   OUT.modelswarm/   header.json, hashes (32 bytes per chunk, zero while unknown), bitfield, lock,
 *                     clean (present only between a clean close and the next open),
 *                     manifest.json and complete (written last, after OUT appears)
 *   OUT/              appears in one rename once every chunk is verified and synced
 *
 * A chunk's bit is persisted right after its bytes are written, so a killed process loses nothing
 * it verified. After an unclean stop (no `clean` marker) the chunks the bitfield claims are
 * re-hashed from disk before being trusted, which also covers a power loss before writeback.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, rename, rm, statfs, writeFile, chmod, type FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { DiskFullError, IntegrityError, InvalidInputError, ManifestError, ModelswarmError, StoreLockedError } from '../errors.ts'
import { formatModelVersion } from '../model-version.ts'
import { Bitfield } from './bitfield.ts'
import { chunkLayout, createManifest, decodeHeader, encodeHeader, encodeManifest, HASH_BYTES, type ChunkLayout, type Manifest, type ManifestHeader } from './manifest.ts'
import { readFileRange } from './chunk-hasher.ts'
import { exists, readOptional, syncDir, writeAtomic } from '../util/files.ts'

/** A chunk whose hash has not been published yet cannot be written: there is nothing to verify it against. */
export class UnknownHashError extends ModelswarmError {
  constructor (message: string) { super('MS_HASH_UNKNOWN', message) }
}

export interface ChunkStoreOptions {
  /** Where the complete model appears. */
  dir: string
  header: ManifestHeader
  /** Re-hash the chunks the bitfield claims after an unclean stop. @default true */
  verifyAfterCrash?: boolean
  /** Bytes to leave free on the filesystem beyond what the model needs. @default 64 MiB */
  reserveBytes?: number
}

export interface ResumeReport {
  /** Chunks trusted from a previous run. */
  resumed: number
  /** Chunks the bitfield claimed that failed re-verification after an unclean stop. */
  discarded: number
}

const ZERO_HASH = new Uint8Array(HASH_BYTES)
const MAX_OPEN_FILES = 128

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
  #hashFile: FileHandle
  #bitFile: FileHandle
  readonly #handles = new Map<number, { fh: Promise<FileHandle>, users: number }>()
  /** Persistence of bitfield bytes is serialised so an older byte never lands after a newer one. */
  #bitWrites: Promise<unknown> = Promise.resolve()

  private constructor (init: { dir: string, header: ManifestHeader, hashes: Uint8Array, have: Bitfield, complete: boolean, hashFile: FileHandle, bitFile: FileHandle, resume: ResumeReport }) {
    this.dir = init.dir
    this.header = init.header
    this.layout = chunkLayout(init.header)
    this.have = init.have
    this.resume = init.resume
    this.#stateDir = `${init.dir}.modelswarm`
    this.#partialDir = `${init.dir}.partial`
    this.#hashes = init.hashes
    this.#knownHashes = 0
    for (let i = 0; i < this.layout.count; i++) if (!this.#hashAt(i).every(b => b === 0)) this.#knownHashes++
    this.#complete = init.complete
    this.#hashFile = init.hashFile
    this.#bitFile = init.bitFile
  }

  /** Opens (creating or resuming) the store for `header` at `dir`. */
  static async open (opts: ChunkStoreOptions): Promise<ChunkStore> {
    const { dir, header } = opts
    const stateDir = `${dir}.modelswarm`
    const partialDir = `${dir}.partial`
    const layout = chunkLayout(header)
    await mkdir(stateDir, { recursive: true })
    await acquireLock(join(stateDir, 'lock'))
    try {
      const headerBytes = encodeHeader(header)
      const existing = await readOptional(join(stateDir, 'header.json'))
      if (existing !== undefined && !Buffer.from(existing).equals(headerBytes)) {
        const other = safeDecodeHeader(existing)
        throw new InvalidInputError(`${dir} already holds ${other} — choose another output directory or remove ${dir}, ${partialDir} and ${stateDir}`)
      }
      if (existing === undefined) {
        if (await exists(dir)) throw new InvalidInputError(`${dir} exists and was not written by modelswarm — choose another output directory or remove it`)
        await writeAtomic(join(stateDir, 'header.json'), headerBytes)
      }
      let complete = await exists(join(stateDir, 'complete'))
      const hashFile = await openSized(join(stateDir, 'hashes'), layout.count * HASH_BYTES)
      const bitFile = await openSized(join(stateDir, 'bitfield'), Math.ceil(layout.count / 8))
      const hashes = new Uint8Array(layout.count * HASH_BYTES)
      await hashFile.read(hashes, 0, hashes.length, 0)
      const bits = new Uint8Array(Math.ceil(layout.count / 8))
      await bitFile.read(bits, 0, bits.length, 0)
      const have = new Bitfield(layout.count, bits)
      const clean = await exists(join(stateDir, 'clean'))
      await rm(join(stateDir, 'clean'), { force: true })
      // Finish a finalize that stopped between the rename and the `complete` marker.
      if (!complete && have.complete && await exists(dir) && !await exists(partialDir)) {
        await writeAtomic(join(stateDir, 'complete'), new Uint8Array())
        complete = true
      }
      const store = new ChunkStore({ dir, header, hashes, have, complete, hashFile, bitFile, resume: { resumed: have.count, discarded: 0 } })
      if (!complete) {
        await store.#prepareFiles(opts.reserveBytes ?? 64 * 1024 * 1024)
        if (!clean && have.count > 0 && (opts.verifyAfterCrash ?? true)) await store.#reverify()
      }
      return store
    } catch (err) {
      await rm(join(stateDir, 'lock'), { force: true })
      throw err
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

  /** Records a chunk's hash (from a verified signature, or computed from the origin). */
  async recordHash (index: number, digest: Uint8Array): Promise<void> {
    this.#checkIndex(index)
    if (digest.length !== HASH_BYTES || Buffer.from(digest).equals(ZERO_HASH)) throw new IntegrityError(`chunk ${index}: invalid hash`)
    const known = this.hashOf(index)
    if (known !== undefined) {
      if (!Buffer.from(known).equals(digest)) throw new IntegrityError(`chunk ${index}: a different hash is already recorded`)
      return
    }
    this.#hashes.set(digest, index * HASH_BYTES)
    this.#knownHashes++
    await this.#hashFile.write(this.#hashes, index * HASH_BYTES, HASH_BYTES, index * HASH_BYTES)
  }

  /**
   * Verifies and writes one chunk. `digest` lets a receiver that hashed the bytes as they arrived skip a
   * second pass; it is still compared against the recorded hash here. Returns false if already held.
   */
  async writeChunk (index: number, data: Uint8Array | readonly Uint8Array[], digest?: Uint8Array): Promise<boolean> {
    this.#checkIndex(index)
    if (this.have.has(index)) return false
    const expected = this.hashOf(index)
    if (expected === undefined) throw new UnknownHashError(`chunk ${index}: hash not published yet`)
    const parts = data instanceof Uint8Array ? [data] : data
    const length = parts.reduce((s, p) => s + p.length, 0)
    if (length !== this.layout.length[index]) throw new IntegrityError(`chunk ${index}: got ${length} bytes, expected ${this.layout.length[index]}`)
    const actual = digest ?? sha256(parts)
    if (!Buffer.from(actual).equals(expected)) throw new IntegrityError(`chunk ${index}: SHA-256 mismatch`)
    try {
      await this.#withFile(index, fh => fh.writev(parts as Uint8Array[], this.layout.offset[index]))
    } catch (err) {
      throw mapWriteError(err, this.#partialDir)
    }
    // A concurrent write of the same chunk may have finished first.
    if (!this.have.set(index)) return false
    await this.#persistBit(index)
    return true
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
    await this.#withFile(index, async fh => {
      for (let done = 0; done < length;) {
        const { bytesRead } = await fh.read(buf, done, length - done, this.layout.offset[index]! + offset + done)
        if (bytesRead === 0) throw new IntegrityError(`chunk ${index}: file ${this.#filePath(index)} is shorter than the manifest says`)
        done += bytesRead
      }
    })
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
   * into place, then writes the manifest and the `complete` marker. Idempotent.
   */
  async finalize (): Promise<Manifest> {
    if (!this.have.complete) throw new InvalidInputError(`cannot finalize ${this.dir}: ${this.layout.count - this.have.count} chunks missing`)
    const manifest = this.manifest()
    if (this.#complete) return manifest
    await this.#closeHandles()
    for (const f of this.header.files) {
      const path = join(this.#partialDir, f.path)
      const fh = await open(path, 'r+')
      try { await fh.datasync() } finally { await fh.close() }
      await chmod(path, f.mode)
    }
    await syncDir(this.#partialDir)
    await rename(this.#partialDir, this.dir)
    await syncDir(dirname(this.dir))
    await writeAtomic(join(this.#stateDir, 'manifest.json'), encodeManifest(manifest))
    await writeAtomic(join(this.#stateDir, 'complete'), new Uint8Array())
    this.#complete = true
    return manifest
  }

  /** Flushes state, marks the stop as clean and releases the lock. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#closeHandles()
    await this.#bitWrites
    await this.#bitFile.datasync()
    await this.#hashFile.datasync()
    await this.#bitFile.close()
    await this.#hashFile.close()
    await writeAtomic(join(this.#stateDir, 'clean'), new Uint8Array())
    await rm(join(this.#stateDir, 'lock'), { force: true })
  }

  #hashAt (index: number): Uint8Array {
    return this.#hashes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES)
  }

  /**
   * Runs `fn` with an open handle on the chunk's file. Handles are cached (opening per chunk cost ~3 % of
   * an uploader's CPU), least recently used first out, never while in use.
   */
  async #withFile<T> (index: number, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    const file = this.layout.file[index]!
    let entry = this.#handles.get(file)
    if (entry === undefined) {
      entry = { fh: open(this.#filePath(index), this.#complete ? 'r' : 'r+'), users: 0 }
      entry.fh.catch(() => this.#handles.delete(file))
      this.#handles.set(file, entry)
      this.#trimHandles()
    } else {
      this.#handles.delete(file)
      this.#handles.set(file, entry)
    }
    entry.users++
    try {
      return await fn(await entry.fh)
    } finally {
      entry.users--
    }
  }

  #trimHandles (): void {
    for (const [file, e] of this.#handles) {
      if (this.#handles.size <= MAX_OPEN_FILES) return
      if (e.users > 0) continue
      this.#handles.delete(file)
      void e.fh.then(fh => fh.close(), () => {})
    }
  }

  async #closeHandles (): Promise<void> {
    const all = [...this.#handles.values()]
    this.#handles.clear()
    await Promise.all(all.map(e => e.fh.then(fh => fh.close(), () => {})))
  }

  #filePath (index: number): string {
    return join(this.#complete ? this.dir : this.#partialDir, this.header.files[this.layout.file[index]!]!.path)
  }

  #checkIndex (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.layout.count) throw new RangeError(`chunk index ${index} out of range 0..${this.layout.count - 1}`)
  }

  #persistBit (index: number): Promise<void> {
    const byte = index >> 3
    const p = this.#bitWrites.then(() => this.#bitFile.write(this.have.bytes, byte, 1, byte))
    this.#bitWrites = p.catch(() => {})
    return p.then(() => {})
  }

  /** Creates every file at full size (sparse) after checking the filesystem can hold what is missing. */
  async #prepareFiles (reserveBytes: number): Promise<void> {
    await mkdir(this.#partialDir, { recursive: true })
    const missing = this.layout.totalSize - this.haveBytes
    const fs = await statfs(this.#partialDir)
    const free = fs.bavail * fs.bsize
    if (free < missing + reserveBytes) {
      throw new DiskFullError(`${this.#partialDir}: needs ${missing} more bytes (+${reserveBytes} reserve) but the filesystem has ${free} free — free space or choose another directory`)
    }
    for (const f of this.header.files) {
      const path = join(this.#partialDir, f.path)
      await mkdir(dirname(path), { recursive: true })
      const fh = await open(path, 'a')
      try {
        if ((await fh.stat()).size !== f.size) await fh.truncate(f.size)
      } finally {
        await fh.close()
      }
    }
  }

  async #reverify (): Promise<void> {
    let discarded = 0
    for (const i of [...this.have.setIndexes()]) {
      const expected = this.hashOf(i)
      const start = this.layout.offset[i]!
      let ok = false
      if (expected !== undefined) {
        const h = createHash('sha256')
        for await (const block of readFileRange(this.#filePath(i), start, start + this.layout.length[i]!)) h.update(block)
        ok = h.digest().equals(expected)
      }
      if (!ok) {
        this.have.clear(i)
        await this.#persistBit(i)
        discarded++
      }
    }
    Object.assign(this.resume, { resumed: this.have.count, discarded })
  }
}

function sha256 (parts: readonly Uint8Array[]): Uint8Array {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

async function acquireLock (path: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, String(process.pid), { flag: 'wx' })
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const pid = Number((await readOptional(path))?.toString())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new StoreLockedError(`${dirname(path)} is in use by process ${pid}`)
    }
    if (pid === process.pid) throw new StoreLockedError(`${dirname(path)} is already open in this process`)
    await rm(path, { force: true })
  }
  throw new StoreLockedError(`could not take ${path}`)
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function openSized (path: string, size: number): Promise<FileHandle> {
  const fh = await open(path, await exists(path) ? 'r+' : 'w+')
  if ((await fh.stat()).size !== size) await fh.truncate(size)
  return fh
}

function safeDecodeHeader (bytes: Uint8Array): string {
  try {
    const h = decodeHeader(bytes)
    return formatModelVersion(h)
  } catch (err) {
    if (err instanceof ManifestError) return 'an unreadable model version'
    throw err
  }
}

function mapWriteError (err: unknown, where: string): unknown {
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return new DiskFullError(`${where}: no space left on device — free space and rerun; verified chunks are kept`, { cause: err })
  return err
}
