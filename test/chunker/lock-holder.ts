// Child process for the lock tests: opens a store, reports {"opened":true,"pid":N} on stdout and holds it
// until killed; or reports {"error":NAME} and exits with the CLI's status for that error (7 when locked).
import { readFile } from 'node:fs/promises'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { decodeManifest } from '../../src/chunker/manifest.ts'
import { exitCodeFor } from '../../src/errors.ts'

const [manifestPath, outDir] = process.argv.slice(2) as [string, string]
try {
  await ChunkStore.open({ dir: outDir, header: decodeManifest(await readFile(manifestPath)) })
  console.log(JSON.stringify({ opened: true, pid: process.pid }))
  setInterval(() => {}, 60_000)
} catch (err) {
  console.log(JSON.stringify({ error: (err as Error).name, message: (err as Error).message }))
  process.exit(exitCodeFor(err))
}
