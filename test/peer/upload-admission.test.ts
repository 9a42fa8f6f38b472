/** Upload admission under an upload cap (`fetch --upload-rate`), on a real store and a fake clock. */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { UploadAdmission } from '../../src/peer/upload-admission.ts'
import { TokenBucket } from '../../src/util/token-bucket.ts'
import { readSourceChunk } from '../chunker/source-chunk.ts'
import { tempDir } from '../support/temp.ts'

describe('UploadAdmission with an upload budget', () => {
  it('serves while the budget has credit, spends it on what it reads, and answers busy once the debt passes 2 s', async () => {
    const root = await tempDir('ms-upload-')
    const src = join(root, 'src')
    await mkdir(src)
    await writeFile(join(src, 'a.bin'), randomBytes(4096 * 4))
    const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 })
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    try {
      for (let i = 0; i < 4; i++) {
        await store.recordHash(i, manifest.chunks[i]!)
        await store.writeChunk(i, await readSourceChunk(src, manifest, i))
      }
      let now = 0
      // 1 KiB/s, one chunk of credit: the first chunk goes at once, the next two put the bucket 8 s in debt.
      const budget = new TokenBucket({ rate: 1024, burst: 4096, now: () => now })
      const admission = new UploadAdmission({ store, maxUploads: 8, isBanned: () => false, now: () => now, stats: { bytesUp: 0, chunksUp: 0 }, budget })
      const first = admission.serve('p', 0)
      expect(first.status).toBe('ok')
      if (first.status !== 'ok') return
      const bytes = await first.read(0, 4096, Buffer.alloc(4096))
      expect(Buffer.from(bytes)).toEqual(await readSourceChunk(src, manifest, 0))
      expect(budget.reserve(0, now)).toBe(0)
      budget.reserve(4096, now)
      budget.reserve(4096, now)
      expect(admission.serve('p', 1).status).toBe('busy')
      // Seven seconds later the debt is under 2 s: served again.
      now += 7000
      expect(admission.serve('p', 1).status).toBe('ok')
    } finally {
      await store.close()
    }
  })
})
