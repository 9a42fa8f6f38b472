/** The gateway's catalog of the host cache, on real stores in a real directory (no fetch is started). */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import type { Manifest } from '../../src/chunker/manifest.ts'
import { VersionCatalog } from '../../src/gateway/version-catalog.ts'
import { silentLogger } from '../../src/log.ts'
import { versionCacheDir } from '../../src/peer/host-cache.ts'
import { readSourceChunk } from '../chunker/source-chunk.ts'
import { tempDir } from '../support/temp.ts'

/** Writes `bytes` as m@v1 into a plain directory and returns its manifest. */
async function source (dir: string, bytes: Buffer): Promise<Manifest> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'a.bin'), bytes)
  return await manifestFromDirectory(dir, { name: 'm', version: 'v1', chunkSize: 4096 })
}

/** Puts the model of `src` whole into the host cache, replacing another revision as a fetch through the cache does. */
async function cache (dir: string, src: string, manifest: Manifest): Promise<void> {
  const store = await ChunkStore.open({ dir, header: manifest, replaceRevision: 'any' })
  for (let i = 0; i < manifest.chunks.length; i++) {
    await store.recordHash(i, manifest.chunks[i]!)
    await store.writeChunk(i, await readSourceChunk(src, manifest, i))
  }
  await store.finalize()
  await store.close()
}

describe('VersionCatalog', () => {
  it('describes a complete version re-published at the origin and replaced in the host cache by its new header, not the one it saw first', async () => {
    const root = await tempDir('ms-catalog-')
    const cacheDir = join(root, 'cache')
    const dir = versionCacheDir(cacheDir, { name: 'm', version: 'v1' })
    const first = await source(join(root, 'a'), randomBytes(3 * 4096))
    await cache(dir, join(root, 'a'), first)
    const catalog = new VersionCatalog({ cacheDir, fetch: { bootstrap: [], trust: [] }, resolveLatest: async () => 'v1', log: silentLogger, signal: new AbortController().signal })
    const before = await catalog.peek({ name: 'm', version: 'v1' })
    expect(before?.header.files[0]!.size).toBe(3 * 4096)
    // Seen again, unchanged: the same view.
    expect(await catalog.peek({ name: 'm', version: 'v1' })).toBe(before)
    const second = await source(join(root, 'b'), randomBytes(5 * 4096))
    await cache(dir, join(root, 'b'), second)
    // Before, the first view was served over the new files (its sizes, ETags and chunk layout).
    const after = await catalog.peek({ name: 'm', version: 'v1' })
    expect(after?.complete).toBe(true)
    expect(after?.header.files[0]!.size).toBe(5 * 4096)
  })
})
