// checksums.json beside a cached version: read back as written; a damaged file reads as "none recorded"
// instead of keeping the version from opening.
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { createHeader } from '../../src/chunker/manifest.ts'
import { readChecksums, writeChecksums } from '../../src/seeder/file-dedup.ts'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

describe('origin checksums file', () => {
  it('reads back what was written, and undefined for a damaged file', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-checksums-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const header = createHeader({ name: 'm', version: 'v1', chunkSize: 1024, files: [{ path: 'a', size: 10, mode: 0o644 }] })
    const store = await ChunkStore.open({ dir: join(root, 'out'), header, reserveBytes: 0 })
    cleanups.push(() => store.close())
    expect(await readChecksums(store)).toBeUndefined()
    await writeChecksums(store, { a: 'MD5-of-0MD5-of-512CRC32C:abc' })
    expect(await readChecksums(store)).toEqual({ a: 'MD5-of-0MD5-of-512CRC32C:abc' })
    for (const damaged of ['{"a": "MD5', '', 'null', '[1]', '{"a": 3}']) {
      await writeFile(join(root, 'out.modelswarm', 'checksums.json'), damaged)
      expect(await readChecksums(store), damaged).toBeUndefined()
    }
  })
})
