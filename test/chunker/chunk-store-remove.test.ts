import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { readSourceChunk } from './source-chunk.ts'
import { tempDir } from '../support/temp.ts'

describe('ChunkStore.remove', () => {
  it('deletes a complete store and a partial one, leaving nothing behind, and a removed store reopens empty', async () => {
    const root = await tempDir('ms-store-rm-')
    const src = join(root, 'src')
    await mkdir(src)
    await writeFile(join(src, 'a.bin'), randomBytes(4096 * 3))
    const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 })
    const fill = async (store: ChunkStore, indexes: number[]): Promise<void> => {
      for (const i of indexes) {
        await store.recordHash(i, manifest.chunks[i]!)
        await store.writeChunk(i, await readSourceChunk(src, manifest, i))
      }
    }

    const complete = await ChunkStore.open({ dir: join(root, 'done'), header: manifest })
    await fill(complete, [0, 1, 2])
    await complete.finalize()
    await complete.close()
    const partial = await ChunkStore.open({ dir: join(root, 'half'), header: manifest })
    await fill(partial, [1])
    await partial.close()
    expect((await readdir(root)).sort()).toEqual(['done', 'done.modelswarm', 'half.modelswarm', 'half.partial', 'src'])

    await ChunkStore.remove(join(root, 'done'))
    await ChunkStore.remove(join(root, 'half'))
    await ChunkStore.remove(join(root, 'never-existed'))
    expect(await readdir(root)).toEqual(['src'])
    const reopened = await ChunkStore.open({ dir: join(root, 'done'), header: manifest })
    expect(reopened.complete).toBe(false)
    expect(reopened.have.count).toBe(0)
    await reopened.close()
  })
})
