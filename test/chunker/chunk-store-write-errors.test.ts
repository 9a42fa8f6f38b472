// Write faults injected through ChunkStoreOptions.write: short writes, errors and writes that make no
// progress, on chunk data and on the `hashes` and `bitfield` state files. The real-filesystem counterpart
// (a full tmpfs) is chunk-store-disk-full.test.ts.
import { afterEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { ChunkStore, StoreWriteError, UnknownHashError, type StoreWrite } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout, spansOf, type Manifest } from '../../src/chunker/manifest.ts'
import { DiskFullError } from '../../src/errors.ts'
import { errorOf } from '../support/errors.ts'
import { readSourceChunk } from './source-chunk.ts'

const CHUNK = 4096
const roots: string[] = []
afterEach(async () => { await Promise.all(roots.splice(0).map(r => rm(r, { recursive: true, force: true }))) })

async function sourceModel (): Promise<{ root: string, src: string, out: string, manifest: Manifest }> {
  const root = await mkdtemp(join(tmpdir(), 'ms-store-faults-'))
  roots.push(root)
  const src = join(root, 'src')
  await mkdir(src)
  await writeFile(join(src, 'w.bin'), randomBytes(CHUNK * 6 + 123))
  const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: CHUNK })
  return { root, src, out: join(root, 'out'), manifest }
}

/** The first `n` bytes of `buffers`, as views. */
function firstBytes (buffers: Uint8Array[], n: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const b of buffers) {
    if (n <= 0) break
    out.push(b.subarray(0, Math.min(n, b.length)))
    n -= b.length
  }
  return out
}

const writev = async (fh: FileHandle, buffers: Uint8Array[], position: number): Promise<number> => (await fh.writev(buffers, position)).bytesWritten

function errno (code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code })
}

/**
 * Writes to files named `target` go wrong once `armed()` is true: the first call writes only half the request,
 * the next throws `code` (or, with code 'none', returns 0 bytes written).
 */
function faultyWrite (target: string, code: string, armed: () => boolean): StoreWrite {
  let calls = 0
  return async (fh, buffers, position, path) => {
    if (basename(path) !== target || !armed()) return await writev(fh, buffers, position)
    if (calls++ === 0) {
      const total = buffers.reduce((s, b) => s + b.length, 0)
      return await writev(fh, firstBytes(buffers, Math.max(1, total >> 1)), position)
    }
    if (code === 'none') return 0
    throw errno(code)
  }
}

async function chunkOnDisk (out: string, manifest: Manifest, i: number): Promise<Buffer> {
  const l = chunkLayout(manifest)
  const buf = Buffer.alloc(l.length[i]!)
  const fh = await open(join(`${out}.partial`, 'w.bin'), 'r')
  try { await fh.read(buf, 0, buf.length, spansOf(l, i)[0]!.offset) } finally { await fh.close() }
  return buf
}

async function corruptOnDisk (out: string, manifest: Manifest, i: number): Promise<void> {
  const fh = await open(join(`${out}.partial`, 'w.bin'), 'r+')
  try { await fh.write(Buffer.from('garbage'), 0, 7, spansOf(chunkLayout(manifest), i)[0]!.offset + 100) } finally { await fh.close() }
}

describe('ChunkStore under write faults', () => {
  it('continues short writes until every byte of the chunk is on disk', async () => {
    const { src, out, manifest } = await sourceModel()
    let calls = 0
    // At most 1000 bytes per call, split across the caller's buffers.
    const write: StoreWrite = async (fh, buffers, position) => { calls++; return await writev(fh, firstBytes(buffers, 1000), position) }
    const store = await ChunkStore.open({ dir: out, header: manifest, write })
    for (const i of [0, 1, 6]) {
      await store.recordHash(i, manifest.chunks[i]!)
      const data = await readSourceChunk(src, manifest, i)
      expect(await store.writeChunk(i, [data.subarray(0, 10), data.subarray(10, 1500), data.subarray(1500)])).toBe(true)
    }
    expect(calls).toBeGreaterThan(3 * 4)
    expect(await store.close()).toBe(true)
    for (const i of [0, 1, 6]) expect((await chunkOnDisk(out, manifest, i)).equals(await readSourceChunk(src, manifest, i))).toBe(true)
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.resume).toEqual({ resumed: 3, discarded: 0 })
    await again.close()
  })

  it('a chunk write that fails after a short write leaves the chunk missing and the stop unclean, so the next open re-verifies', async () => {
    const { src, out, manifest } = await sourceModel()
    let armed = false
    const store = await ChunkStore.open({ dir: out, header: manifest, write: faultyWrite('w.bin', 'EIO', () => armed) })
    for (let i = 0; i < manifest.chunks.length; i++) await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(0, await readSourceChunk(src, manifest, 0))
    await store.writeChunk(2, await readSourceChunk(src, manifest, 2))
    armed = true
    const err = await errorOf(store.writeChunk(1, await readSourceChunk(src, manifest, 1)))
    expect(err).toBeInstanceOf(StoreWriteError)
    expect((err as StoreWriteError).code).toBe('MS_STORE_WRITE')
    expect(store.have.has(1)).toBe(false)
    expect(await errorOf(store.readChunk(1))).toMatchObject({ code: 'MS_INVALID_INPUT' })
    // Half of chunk 1 reached the disk, the rest is zeros: exactly what must never be counted as held.
    expect((await chunkOnDisk(out, manifest, 1)).equals(await readSourceChunk(src, manifest, 1))).toBe(false)
    expect(await store.close()).toBe(false)
    await expect(stat(join(`${out}.modelswarm`, 'clean'))).rejects.toThrow(/ENOENT/)

    // A claimed chunk whose bytes went bad is caught, because the next open re-verifies.
    await corruptOnDisk(out, manifest, 2)
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.resume).toEqual({ resumed: 1, discarded: 1 })
    expect([...again.have.setIndexes()]).toEqual([0])
    // After an unclean stop only the hashes of held chunks are kept; the missing chunk can be written again.
    expect(again.knownHashes).toBe(1)
    await again.recordHash(1, manifest.chunks[1]!)
    await again.writeChunk(1, await readSourceChunk(src, manifest, 1))
    expect((await again.readChunk(1)).equals(await readSourceChunk(src, manifest, 1))).toBe(true)
    expect(await again.close()).toBe(true)
    expect((await readFile(join(`${out}.modelswarm`, 'clean'))).length).toBe(32)
  })

  it('maps ENOSPC to DiskFullError and a write making no progress to StoreWriteError; neither chunk is held', async () => {
    const { src, out, manifest } = await sourceModel()
    const full = await ChunkStore.open({ dir: out, header: manifest, write: faultyWrite('w.bin', 'ENOSPC', () => true) })
    await full.recordHash(3, manifest.chunks[3]!)
    expect(await errorOf(full.writeChunk(3, await readSourceChunk(src, manifest, 3)))).toBeInstanceOf(DiskFullError)
    expect(full.have.count).toBe(0)
    expect(await full.close()).toBe(false)

    const stuck = await ChunkStore.open({ dir: out, header: manifest, write: faultyWrite('w.bin', 'none', () => true) })
    await stuck.recordHash(3, manifest.chunks[3]!)
    expect(await errorOf(stuck.writeChunk(3, await readSourceChunk(src, manifest, 3)))).toBeInstanceOf(StoreWriteError)
    expect(stuck.have.count).toBe(0)
    expect(await stuck.close()).toBe(false)
    await expect(stat(join(`${out}.modelswarm`, 'clean'))).rejects.toThrow(/ENOENT/)
  })

  it('a failed hash write leaves the hash unrecorded, the chunk unwritable and the stop unclean', async () => {
    const { src, out, manifest } = await sourceModel()
    let armed = false
    const store = await ChunkStore.open({ dir: out, header: manifest, write: faultyWrite('hashes', 'EIO', () => armed) })
    await store.recordHash(0, manifest.chunks[0]!)
    await store.writeChunk(0, await readSourceChunk(src, manifest, 0))
    armed = true
    // The first faulty call writes half of the 32-byte hash, the second fails: the hash must not count.
    expect(await errorOf(store.recordHash(4, manifest.chunks[4]!))).toBeInstanceOf(StoreWriteError)
    expect(store.hashOf(4)).toBeUndefined()
    expect(store.knownHashes).toBe(1)
    expect(await errorOf(store.writeChunk(4, await readSourceChunk(src, manifest, 4)))).toBeInstanceOf(UnknownHashError)
    expect(store.have.has(4)).toBe(false)
    expect(await store.close()).toBe(false)
    await expect(stat(join(`${out}.modelswarm`, 'clean'))).rejects.toThrow(/ENOENT/)

    await corruptOnDisk(out, manifest, 0)
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.resume).toEqual({ resumed: 0, discarded: 1 })
    // Half of chunk 4's hash reached the disk; it was forgotten with the rest, so the chunk can still be stored.
    expect(again.knownHashes).toBe(0)
    await again.recordHash(4, manifest.chunks[4]!)
    expect(await again.writeChunk(4, await readSourceChunk(src, manifest, 4))).toBe(true)
    expect(await again.close()).toBe(true)
  })

  it('a failed bitfield write leaves the chunk missing and the stop unclean', async () => {
    const { src, out, manifest } = await sourceModel()
    const store = await ChunkStore.open({ dir: out, header: manifest, write: faultyWrite('bitfield', 'EIO', () => true) })
    await store.recordHash(5, manifest.chunks[5]!)
    // A one-byte write cannot be short: the first faulty call writes it, the second (chunk 6's) fails.
    expect(await store.writeChunk(5, await readSourceChunk(src, manifest, 5))).toBe(true)
    await store.recordHash(6, manifest.chunks[6]!)
    expect(await errorOf(store.writeChunk(6, await readSourceChunk(src, manifest, 6)))).toBeInstanceOf(StoreWriteError)
    expect(store.have.has(6)).toBe(false)
    expect(store.have.has(5)).toBe(true)
    expect(await store.close()).toBe(false)
    await expect(stat(join(`${out}.modelswarm`, 'clean'))).rejects.toThrow(/ENOENT/)
  })

  it('does not trust a bitfield changed after a clean close: the clean marker vouches for one exact state', async () => {
    const { src, out, manifest } = await sourceModel()
    const store = await ChunkStore.open({ dir: out, header: manifest })
    for (let i = 0; i < manifest.chunks.length; i++) await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(0, await readSourceChunk(src, manifest, 0))
    expect(await store.close()).toBe(true)
    // Claim chunks 1 and 2, never written (zeros on disk), behind the marker's back.
    await writeFile(join(`${out}.modelswarm`, 'bitfield'), Buffer.from([0xe0]))
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.resume).toEqual({ resumed: 1, discarded: 2 })
    expect([...again.have.setIndexes()]).toEqual([0])
    await again.close()
  })
})
