// The disk fills in the middle of a chunk, on a real (tmpfs) filesystem: the chunk being written is left
// missing, the stop is unclean, and after space is freed every chunk the store claims is byte-correct.
import { afterEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { DiskFullError } from '../../src/errors.ts'
import { errorOf } from '../support/errors.ts'
import { canMount, mountTmpfs, type Tmpfs } from '../support/tmpfs.ts'
import { readSourceChunk } from './source-chunk.ts'

const CHUNK = 64 * 1024
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

describe.skipIf(!canMount)('ChunkStore on a filesystem that fills up (tmpfs, root only)', () => {
  it('a chunk cut short by ENOSPC is not held; after freeing space every claimed chunk is byte-correct', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-diskfull-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const src = join(root, 'src')
    await mkdir(src)
    const data = randomBytes(CHUNK * 8 + 1000)
    await writeFile(join(src, 'w.bin'), data)
    const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: CHUNK })
    const fs: Tmpfs = await mountTmpfs(2 * 1024 * 1024)
    cleanups.push(fs.destroy)
    const out = join(fs.dir, 'out')

    const store = await ChunkStore.open({ dir: out, header: manifest, reserveBytes: 0 })
    for (let i = 0; i < manifest.chunks.length; i++) await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(0, await readSourceChunk(src, manifest, 0))
    // Half a chunk of room: the next write is short, the one after it fails with ENOSPC.
    await fs.fill(CHUNK / 2)
    expect(await fs.free()).toBe(CHUNK / 2)
    expect(await errorOf(store.writeChunk(1, await readSourceChunk(src, manifest, 1)))).toBeInstanceOf(DiskFullError)
    expect(store.have.has(1)).toBe(false)
    expect(await errorOf(store.writeChunk(2, await readSourceChunk(src, manifest, 2)))).toBeInstanceOf(DiskFullError)
    expect([...store.have.setIndexes()]).toEqual([0])
    expect(await store.close()).toBe(false)
    await expect(stat(join(`${out}.modelswarm`, 'clean'))).rejects.toThrow(/ENOENT/)

    await fs.drain()
    const again = await ChunkStore.open({ dir: out, header: manifest, reserveBytes: 0 })
    expect(again.have.count).toBeGreaterThan(0)
    for (const i of again.have.setIndexes()) {
      expect((await again.readChunk(i)).equals(await readSourceChunk(src, manifest, i)), `chunk ${i}`).toBe(true)
    }
    for (const i of [...again.have.missingIndexes()]) {
      await again.recordHash(i, manifest.chunks[i]!)
      await again.writeChunk(i, await readSourceChunk(src, manifest, i))
    }
    await again.finalize()
    expect(await again.close()).toBe(true)
    expect((await readFile(join(out, 'w.bin'))).equals(data)).toBe(true)
  })
})
