/** Host cache primitives on real files: waiting for a store's lock, and placing a cached version at --out. */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import type { Manifest } from '../../src/chunker/manifest.ts'
import { InvalidInputError } from '../../src/errors.ts'
import { isComplete, placeVersion, versionCacheDir, waitForCacheTurn } from '../../src/peer/host-cache.ts'
import { readSourceChunk } from '../chunker/source-chunk.ts'
import { treeDigests } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'
import { canMount, mountTmpfs } from '../support/tmpfs.ts'

/** A model with a nested directory, and its manifest at a small chunk size. */
async function source (root: string): Promise<{ src: string, manifest: Manifest }> {
  const src = join(root, 'src')
  await mkdir(join(src, 'sub'), { recursive: true })
  await writeFile(join(src, 'a.bin'), randomBytes(4096 * 3 + 100))
  await writeFile(join(src, 'sub', 'b.json'), '{"b":1}')
  return { src, manifest: await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 }) }
}

async function fill (store: ChunkStore, src: string, manifest: Manifest, indexes = manifest.chunks.map((_c, i) => i)): Promise<void> {
  for (const i of indexes) {
    await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(i, await readSourceChunk(src, manifest, i))
  }
}

async function cachedVersion (root: string): Promise<{ src: string, dir: string }> {
  const { src, manifest } = await source(root)
  const dir = versionCacheDir(join(root, 'cache'), manifest)
  const store = await ChunkStore.open({ dir, header: manifest })
  await fill(store, src, manifest)
  await store.finalize()
  await store.close()
  return { src, dir }
}

describe('placeVersion', () => {
  it('places a cached version at --out as read-only hard links in one rename, with state that makes --out complete', async () => {
    const root = await tempDir('ms-place-')
    const { src, dir } = await cachedVersion(root)
    const out = join(root, 'out')
    const placed = await placeVersion(dir, out)
    expect(placed).toEqual({ outcome: 'placed', linked: 2, copied: 0 })
    expect(await treeDigests(out)).toEqual(await treeDigests(src))
    const [a, b] = await Promise.all([stat(join(dir, 'sub', 'b.json')), stat(join(out, 'sub', 'b.json'))])
    expect(b.ino).toBe(a.ino)
    expect(b.mode & 0o222).toBe(0)
    expect(await isComplete(out)).toBe(true)
    const header = JSON.parse(await readFile(join(`${out}.modelswarm`, 'header.json'), 'utf8'))
    const reopened = await ChunkStore.open({ dir: out, header })
    expect(reopened.complete).toBe(true)
    await reopened.close()
    expect((await placeVersion(dir, out)).outcome).toBe('present')
  })

  it('refuses an --out that holds something else', async () => {
    const root = await tempDir('ms-place-')
    const { dir } = await cachedVersion(root)
    const out = join(root, 'out')
    await mkdir(out)
    await writeFile(join(out, 'mine.txt'), 'x')
    await expect(placeVersion(dir, out)).rejects.toBeInstanceOf(InvalidInputError)
  })

  it.skipIf(!canMount)('copies (or reflinks) when --out is on another filesystem', async () => {
    const root = await tempDir('ms-place-')
    const { src, dir } = await cachedVersion(root)
    const fs = await mountTmpfs(16 * 1024 * 1024)
    try {
      const out = join(fs.dir, 'out')
      expect(await placeVersion(dir, out)).toEqual({ outcome: 'placed', linked: 0, copied: 2 })
      expect(await treeDigests(out)).toEqual(await treeDigests(src))
      expect((await stat(join(out, 'a.bin'))).mode & 0o222).toBe(0)
    } finally {
      await fs.destroy()
    }
  })
})

describe('waitForCacheTurn', () => {
  it('creates nothing for a version the cache has never held: a fetch of one no seeder knows leaves no trace', async () => {
    const root = await tempDir('ms-turn-')
    const dir = versionCacheDir(join(root, 'cache'), { name: 'm', version: 'v1' })
    expect(await waitForCacheTurn(dir, { pollMs: 10 })).toBe('free')
    expect(await readdir(root)).toEqual([])
  })

  it('waits while another holds a partial version, says free once it is released, and complete when held complete', async () => {
    const root = await tempDir('ms-turn-')
    const { src, manifest } = await source(root)
    const dir = versionCacheDir(join(root, 'cache'), manifest)
    expect(await waitForCacheTurn(dir, { pollMs: 10 })).toBe('free')

    // This process's open store stands in for another process's: the lock is refused either way.
    const store = await ChunkStore.open({ dir, header: manifest })
    await fill(store, src, manifest, [0])
    let waited = false
    let settled = false
    const turn = waitForCacheTurn(dir, { pollMs: 10, onWait: () => { waited = true } }).finally(() => { settled = true })
    while (!waited) await new Promise(resolve => setTimeout(resolve, 10))
    expect(settled).toBe(false)
    await store.close()
    expect(await turn).toBe('free')

    const again = await ChunkStore.open({ dir, header: manifest })
    await fill(again, src, manifest)
    await again.finalize()
    expect(await waitForCacheTurn(dir, { pollMs: 10 })).toBe('complete')
    await again.close()
    const abort = new AbortController()
    abort.abort(new Error('stopped'))
    await expect(waitForCacheTurn(dir, { pollMs: 10, signal: abort.signal })).rejects.toThrow('stopped')
  })
})
