import { afterEach, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { mkdtemp, mkdir, readFile, writeFile, stat, readdir, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkStore, UnknownHashError } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { chunkLayout, createHeader, encodeManifest, type Manifest } from '../../src/chunker/manifest.ts'
import { DiskFullError, IntegrityError, InvalidInputError, StoreLockedError } from '../../src/errors.ts'
import { readSourceChunk } from './source-chunk.ts'

const roots: string[] = []
afterEach(async () => { await Promise.all(roots.splice(0).map(r => rm(r, { recursive: true, force: true }))) })

async function sourceModel (): Promise<{ root: string, src: string, manifest: Manifest, files: Record<string, Buffer> }> {
  const root = await mkdtemp(join(tmpdir(), 'ms-store-'))
  roots.push(root)
  const src = join(root, 'src')
  const files: Record<string, Buffer> = {
    'a.bin': randomBytes(4096 * 4 + 100),
    'b/empty': Buffer.alloc(0),
    'b/tiny': Buffer.from('x'),
    'c.bin': randomBytes(4096 * 3)
  }
  for (const [p, b] of Object.entries(files)) {
    await mkdir(join(src, p, '..'), { recursive: true })
    await writeFile(join(src, p), b, { mode: p === 'c.bin' ? 0o755 : 0o644 })
  }
  const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 })
  return { root, src, manifest, files }
}

/** sourceModel's model in a store at ROOT/out holding every chunk, not yet finalized. */
async function filledStore (): Promise<Awaited<ReturnType<typeof sourceModel>> & { out: string, store: ChunkStore }> {
  const model = await sourceModel()
  const out = join(model.root, 'out')
  const store = await ChunkStore.open({ dir: out, header: model.manifest })
  await fill(store, model.src, model.manifest, model.manifest.chunks.keys())
  return { ...model, out, store }
}

/** A model of `n` files of one 4 KiB chunk each. */
async function manyFilesModel (n: number): Promise<{ root: string, src: string, manifest: Manifest }> {
  const root = await mkdtemp(join(tmpdir(), 'ms-store-'))
  roots.push(root)
  const src = join(root, 'src')
  await mkdir(src)
  for (let f = 0; f < n; f++) await writeFile(join(src, `f${f}.bin`), randomBytes(4096))
  return { root, src, manifest: await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 }) }
}

async function fill (store: ChunkStore, src: string, manifest: Manifest, indexes: Iterable<number>): Promise<void> {
  for (const i of indexes) {
    await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(i, await readSourceChunk(src, manifest, i))
  }
}

describe('ChunkStore', () => {
  it('writes a chunk of packed small files into each of them, reads any range across them, and repairs one rotten file', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-store-'))
    roots.push(root)
    const src = join(root, 'src')
    const files = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`s/${i}`, randomBytes(900 + i)]))
    for (const [p, b] of Object.entries(files)) {
      await mkdir(join(src, p, '..'), { recursive: true })
      await writeFile(join(src, p), b, { mode: 0o444 })
    }
    const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 })
    expect(manifest.chunks.length).toBe(3) // s/0–s/3, s/4–s/7, s/8
    const out = join(root, 'out')
    const store = await ChunkStore.open({ dir: out, header: manifest })
    await store.recordHashes(manifest.chunks.map((h, i) => [i, h] as const))
    // Two copies of one chunk arriving together (endgame): one is written, the other waits and is not written again.
    const chunk0 = await readSourceChunk(src, manifest, 0)
    expect(await Promise.all([store.writeChunk(0, chunk0), store.writeChunk(0, chunk0)])).toEqual([true, false])
    await fill(store, src, manifest, [2, 1])
    await store.finalize()
    for (const [p, b] of Object.entries(files)) expect((await readFile(join(out, p))).equals(b)).toBe(true)
    const all = Buffer.concat(Object.values(files).slice(0, 4))
    for (const [offset, length] of [[0, all.length], [899, 2], [1000, 1800], [all.length - 1, 1]] as const) {
      expect((await store.readRange(0, offset, length)).equals(all.subarray(offset, offset + length))).toBe(true)
    }
    // One rotten byte in s/5 drops chunk 1; rewritten, s/4–s/7 are whole again, and read-only as published.
    const fh = await open(join(out, 's', '5'), 'r+')
    await fh.write(Buffer.from([files['s/5']![10]! ^ 1]), 0, 1, 10)
    await fh.close()
    expect(await store.verifyHeld(0)).toBe(true)
    expect(await store.verifyHeld(1)).toBe(false)
    expect(store.have.has(1)).toBe(false)
    await fill(store, src, manifest, [1])
    expect(await store.verifyHeld(1)).toBe(true)
    for (const p of ['s/4', 's/5', 's/6', 's/7']) {
      expect((await readFile(join(out, p))).equals(files[p]!)).toBe(true)
      expect((await stat(join(out, p))).mode & 0o777).toBe(0o444)
    }
    await store.close()
  })

  it('writes verified chunks in any order and makes the model appear complete at the end', async () => {
    const { root, src, manifest, files } = await sourceModel()
    const out = join(root, 'out')
    const store = await ChunkStore.open({ dir: out, header: manifest })
    const order = [...Array(manifest.chunks.length).keys()].reverse()
    await fill(store, src, manifest, order.slice(0, -1))
    await expect(stat(out)).rejects.toThrow(/ENOENT/)
    await expect(store.finalize()).rejects.toThrow(InvalidInputError)
    await fill(store, src, manifest, order.slice(-1))
    const finished = await store.finalize()
    expect(Buffer.from(encodeManifest(finished)).equals(Buffer.from(encodeManifest(manifest)))).toBe(true)
    for (const [p, b] of Object.entries(files)) expect((await readFile(join(out, p))).equals(b)).toBe(true)
    expect((await stat(join(out, 'c.bin'))).mode & 0o777).toBe(0o755)
    expect(await readdir(root)).toEqual(['out', 'out.modelswarm', 'src'])
    // Serving after completion reads from the final files.
    expect((await store.readChunk(0)).equals(files['a.bin']!.subarray(0, 4096))).toBe(true)
    await store.finalize()
    await store.close()
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.complete).toBe(true)
    expect(again.have.complete).toBe(true)
    await again.close()
  })

  it('serves reads while it finalizes: none fails across the handles\' close and the directory\'s rename', async () => {
    // More files than the store keeps open (128), so reads keep opening files while the directory moves.
    const { root, src, manifest } = await manyFilesModel(300)
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    const all = [...Array(manifest.chunks.length).keys()]
    await fill(store, src, manifest, all)
    const expected = await Promise.all(all.map(i => readSourceChunk(src, manifest, i)))
    // A seeder serves its version while it finishes: reads keep coming, on every file, as finalize runs.
    let done = false
    const failures: string[] = []
    const reader = async (k: number): Promise<number> => {
      let reads = 0
      while (!done) {
        const i = (k + reads * 7) % all.length
        try {
          if (!(await store.readChunk(i)).equals(expected[i]!)) failures.push(`chunk ${i}: wrong bytes`)
        } catch (err) {
          failures.push(`chunk ${i}: ${(err as Error).message}`)
        }
        reads++
      }
      return reads
    }
    const readers = Array.from({ length: 16 }, (_, k) => reader(k * 19))
    await store.finalize()
    done = true
    const reads = (await Promise.all(readers)).reduce((a, b) => a + b, 0)
    expect(failures).toEqual([])
    expect(reads).toBeGreaterThan(all.length)
    await store.close()
  })

  it('reads of more files at once than it keeps open all succeed', async () => {
    const { root, src, manifest } = await manyFilesModel(200)
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    await fill(store, src, manifest, manifest.chunks.keys())
    await store.close()
    const reopened = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    // 200 files in use at once, 128 handles cached: none may be closed under its reader.
    const reads = await Promise.allSettled([...manifest.chunks.keys()].map(i => reopened.readChunk(i)))
    expect(reads.filter(r => r.status === 'rejected').map(r => String((r as PromiseRejectedResult).reason))).toEqual([])
    await reopened.close()
  })

  it('a chunk found rotten while the store finalizes is dropped and can be written again once it is complete', async () => {
    const { src, manifest, files, out, store } = await filledStore()
    // One byte of chunk 1 (a.bin, 4 KiB on) rots; a host's report of it lands as the store finishes.
    const fh = await open(join(`${out}.partial`, 'a.bin'), 'r+')
    await fh.write(Buffer.from([files['a.bin']![4096 + 7]! ^ 0xff]), 0, 1, 4096 + 7)
    await fh.close()
    const finishing = store.finalize()
    const intact = store.verifyHeld(1)
    await finishing
    expect(await intact).toBe(false)
    expect(store.have.has(1)).toBe(false)
    expect(await store.writeChunk(1, await readSourceChunk(src, manifest, 1))).toBe(true)
    expect(store.have.complete).toBe(true)
    expect((await readFile(join(out, 'a.bin'))).equals(files['a.bin']!)).toBe(true)
    expect((await stat(join(out, 'a.bin'))).mode & 0o777).toBe(0o644)
    await store.close()
  })

  it('a finalize that failed after the rename succeeds when tried again', async () => {
    const { files, out, store } = await filledStore()
    // The manifest cannot be written (a directory where it goes): the model has moved into place by then.
    const blocker = join(`${out}.modelswarm`, 'manifest.json')
    await mkdir(join(blocker, 'x'), { recursive: true })
    await expect(store.finalize()).rejects.toThrow()
    expect((await stat(out)).isDirectory()).toBe(true)
    await rm(blocker, { recursive: true })
    await store.finalize()
    expect(store.complete).toBe(true)
    for (const [p, b] of Object.entries(files)) expect((await readFile(join(out, p))).equals(b)).toBe(true)
    expect((await store.readChunk(0)).equals(files['a.bin']!.subarray(0, 4096))).toBe(true)
    await store.close()
  })

  it('a finalize that stopped after the rename is finished by the next open, manifest included', async () => {
    const { manifest, out, store } = await filledStore()
    const blocker = join(`${out}.modelswarm`, 'manifest.json')
    await mkdir(join(blocker, 'x'), { recursive: true })
    await expect(store.finalize()).rejects.toThrow()
    await store.close()
    await rm(blocker, { recursive: true })
    const reopened = await ChunkStore.open({ dir: out, header: manifest })
    expect(reopened.complete).toBe(true)
    // Before, `complete` was written with no manifest beside it (or with an old revision's).
    expect(Buffer.from(await readFile(blocker)).equals(Buffer.from(encodeManifest(manifest)))).toBe(true)
    await reopened.close()
  })

  it('refuses wrong bytes, wrong lengths and chunks whose hash is unknown, writing nothing', async () => {
    const { root, src, manifest } = await sourceModel()
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    const good = await readSourceChunk(src, manifest, 0)
    await expect(store.writeChunk(0, good)).rejects.toThrow(UnknownHashError)
    await store.recordHash(0, manifest.chunks[0]!)
    const bad = Buffer.from(good)
    bad[100]! ^= 1
    await expect(store.writeChunk(0, bad)).rejects.toThrow(IntegrityError)
    await expect(store.writeChunk(0, good.subarray(1))).rejects.toThrow(IntegrityError)
    await expect(store.writeChunk(0, good, createHash('sha256').update(bad).digest())).rejects.toThrow(IntegrityError)
    await expect(store.recordHash(0, manifest.chunks[1]!)).rejects.toThrow(IntegrityError)
    expect(store.have.count).toBe(0)
    const onDisk = Buffer.alloc(4096)
    const fh = await open(join(root, 'out.partial', 'a.bin'), 'r')
    await fh.read(onDisk, 0, 4096, 0)
    await fh.close()
    expect(onDisk.equals(Buffer.alloc(4096))).toBe(true)
    expect(await store.writeChunk(0, [good.subarray(0, 10), good.subarray(10)])).toBe(true)
    expect(await store.writeChunk(0, good)).toBe(false)
    await store.close()
  })

  it('resumes after SIGKILL without losing or re-fetching verified chunks', async () => {
    const { root, src, manifest } = await sourceModel()
    const out = join(root, 'out')
    const manifestPath = join(root, 'manifest.json')
    await writeFile(manifestPath, encodeManifest(manifest))
    const child = spawnSync(process.execPath, [join(import.meta.dirname, 'crash-writer.ts'), manifestPath, src, out, '5'])
    expect(child.signal).toBe('SIGKILL')
    const store = await ChunkStore.open({ dir: out, header: manifest })
    expect(store.resume).toEqual({ resumed: 5, discarded: 0 })
    expect([...store.have.setIndexes()]).toEqual([0, 1, 2, 3, 4])
    await fill(store, src, manifest, [...store.have.missingIndexes()])
    await store.finalize()
    await store.close()
  })

  it('after an unclean stop, re-verifies claimed chunks and drops corrupted ones', async () => {
    const { root, src, manifest } = await sourceModel()
    const out = join(root, 'out')
    const manifestPath = join(root, 'manifest.json')
    await writeFile(manifestPath, encodeManifest(manifest))
    spawnSync(process.execPath, [join(import.meta.dirname, 'crash-writer.ts'), manifestPath, src, out, '3'])
    const fh = await open(join(out + '.partial', 'a.bin'), 'r+')
    await fh.write(Buffer.from('garbage'), 0, 7, 4096 + 10)
    await fh.close()
    const store = await ChunkStore.open({ dir: out, header: manifest })
    expect(store.resume).toEqual({ resumed: 2, discarded: 1 })
    expect(store.have.has(1)).toBe(false)
    await store.close()
  })

  it('trusts the bitfield after a clean close', async () => {
    const { root, src, manifest } = await sourceModel()
    const out = join(root, 'out')
    const store = await ChunkStore.open({ dir: out, header: manifest })
    await fill(store, src, manifest, [0, 1])
    await store.close()
    const fh = await open(join(out + '.partial', 'a.bin'), 'r+')
    await fh.write(Buffer.from('garbage'), 0, 7, 10)
    await fh.close()
    const again = await ChunkStore.open({ dir: out, header: manifest })
    expect(again.resume).toEqual({ resumed: 2, discarded: 0 })
    await again.close()
  })

  it('stores chunks past 4 GiB in sparse files', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-sparse-'))
    roots.push(root)
    const chunkSize = 64 * 1024 * 1024
    const size = 5 * 2 ** 30 + 4096
    const header = createHeader({ name: 'big', version: '1', chunkSize, files: [{ path: 'w.bin', size, mode: 0o644 }] })
    const last = chunkLayout(header).count - 1
    const data = randomBytes(4096)
    const store = await ChunkStore.open({ dir: join(root, 'out'), header, reserveBytes: 0 })
    await store.recordHash(last, createHash('sha256').update(data).digest())
    await store.writeChunk(last, data)
    expect((await store.readChunk(last)).equals(data)).toBe(true)
    const st = await stat(join(root, 'out.partial', 'w.bin'))
    expect(st.size).toBe(size)
    expect(st.blocks * 512).toBeLessThan(1024 * 1024)
    await store.close()
  })

  it('checks free space before preallocating', async () => {
    const { root, manifest } = await sourceModel()
    await expect(ChunkStore.open({ dir: join(root, 'out'), header: manifest, reserveBytes: 2 ** 52 })).rejects.toThrow(DiskFullError)
    // The failed open released its lock.
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    await store.close()
  })

  it('locks against a second opener and refuses a directory holding something else', async () => {
    const { root, manifest, src } = await sourceModel()
    const out = join(root, 'out')
    const store = await ChunkStore.open({ dir: out, header: manifest })
    await expect(ChunkStore.open({ dir: out, header: manifest })).rejects.toThrow(StoreLockedError)
    await store.close()
    const other = createHeader({ ...manifest, version: 'v2' })
    await expect(ChunkStore.open({ dir: out, header: other })).rejects.toThrow(/already holds m@v1/)
    await expect(ChunkStore.open({ dir: src, header: manifest })).rejects.toThrow(/not written by modelswarm/)
  })

  it("replaces another revision of the same version as told: a host's output only while unfinished, a seeder's cache whatever it holds", async () => {
    const { root, src, manifest, out, store } = await filledStore()
    await store.finalize()
    await store.close()
    const next = createHeader({ ...manifest, revision: 'b2' })
    await expect(ChunkStore.open({ dir: out, header: next })).rejects.toThrow(/already holds m@v1 as published earlier/)
    await expect(ChunkStore.open({ dir: out, header: next, replaceRevision: 'unfinished' })).rejects.toThrow(/already holds m@v1 as published earlier/)
    // Finished but for its marker (a finalize stopped after the rename): refused the same, and nothing of it
    // removed. Before, its state went and the next open took `out` for a directory modelswarm did not write.
    await rm(join(`${out}.modelswarm`, 'complete'))
    await expect(ChunkStore.open({ dir: out, header: next, replaceRevision: 'unfinished' })).rejects.toThrow(/already holds m@v1 as published earlier/)
    const kept = await ChunkStore.open({ dir: out, header: manifest })
    expect(kept.complete).toBe(true)
    await kept.close()
    // What a seeder's withdrawal leaves when deleting the finished files fails: no `complete`, no bitfield, the
    // old header and hashes, and every file of the old content. Before, the next open took it for a directory
    // modelswarm did not write, at every poll.
    await rm(join(`${out}.modelswarm`, 'complete'))
    await rm(join(`${out}.modelswarm`, 'bitfield'))
    const replaced = await ChunkStore.open({ dir: out, header: next, replaceRevision: 'any' })
    expect(replaced.have.count).toBe(0)
    expect(replaced.knownHashes).toBe(0)
    expect(await readdir(root)).toEqual(['out.modelswarm', 'out.partial', 'src'])
    // The old revision's manifest went too: a finished new one must not be described by it.
    expect(await readdir(`${out}.modelswarm`)).not.toContain('manifest.json')
    await fill(replaced, src, manifest, [0])
    await replaced.close()
    // A header no modelswarm of today can read (an older manifest format) in a seeder's cache goes too.
    await writeFile(join(`${out}.modelswarm`, 'header.json'), '{"format":"modelswarm-manifest/2"}')
    await expect(ChunkStore.open({ dir: out, header: next, replaceRevision: 'unfinished' })).rejects.toThrow(/already holds an unreadable model version/)
    const again = await ChunkStore.open({ dir: out, header: next, replaceRevision: 'any' })
    expect(again.have.count).toBe(0)
    await again.close()
    // Another model version's store is never replaced (a name differing in case shares the directory on a
    // case-insensitive filesystem).
    await expect(ChunkStore.open({ dir: out, header: createHeader({ ...manifest, version: 'v2' }), replaceRevision: 'any' })).rejects.toThrow(/already holds m@v1/)
  })
})
