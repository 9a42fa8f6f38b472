// Child process for the resume test: writes the first N chunks of a model, then kills itself with
// SIGKILL, so nothing gets a chance to close or flush.
import { readFile } from 'node:fs/promises'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { decodeManifest } from '../../src/chunker/manifest.ts'
import { readSourceChunk } from './source-chunk.ts'

const [manifestPath, srcDir, outDir, count] = process.argv.slice(2) as [string, string, string, string]
const manifest = decodeManifest(await readFile(manifestPath))
const store = await ChunkStore.open({ dir: outDir, header: manifest })
for (let i = 0; i < Number(count); i++) {
  await store.recordHash(i, manifest.chunks[i]!)
  await store.writeChunk(i, await readSourceChunk(srcDir, manifest, i))
}
process.kill(process.pid, 'SIGKILL')
