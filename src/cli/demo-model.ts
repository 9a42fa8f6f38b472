/**
 * Writes a synthetic model directory (several shards, a config, an empty file) for benchmarks and the
 * demo. Content is pseudo-random per 1 MiB block so it neither compresses nor dedups.
 */
import { createHash } from 'node:crypto'
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const BLOCK = 1024 * 1024

export interface GeneratedModel { dir: string, totalSize: number, files: number }

/** Creates `dir` with about `totalSize` bytes; reuses it if a previous run left a complete one. */
export async function generateModel (dir: string, totalSize: number, shards = 4): Promise<GeneratedModel> {
  const marker = `${dir}.generated`
  const shardSize = Math.floor(totalSize / shards)
  // The marker records the size asked for, so a different size regenerates rather than reusing.
  const done = await readFile(marker, 'utf8').then(t => t === String(totalSize), () => false)
  if (!done) {
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'config.json'), JSON.stringify({ model_type: 'demo', hidden_size: 4096 }))
    await writeFile(join(dir, 'empty.txt'), '')
    const seed = createHash('sha256').update(dir).digest()
    const block = Buffer.alloc(BLOCK)
    for (let i = 0; i < BLOCK; i += 32) createHash('sha256').update(seed).update(String(i)).digest().copy(block, i)
    for (let s = 0; s < shards; s++) {
      const fh = await open(join(dir, `model-${String(s).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`), 'w')
      try {
        for (let off = 0; off < shardSize; off += BLOCK) {
          // Vary each block so no two chunks hash alike.
          block.writeUInt32LE(s, 0)
          block.writeDoubleLE(off, 4)
          await fh.write(block, 0, Math.min(BLOCK, shardSize - off), off)
        }
      } finally {
        await fh.close()
      }
    }
    await writeFile(marker, String(totalSize))
  }
  return { dir, totalSize: shardSize * shards + JSON.stringify({ model_type: 'demo', hidden_size: 4096 }).length, files: shards + 2 }
}
