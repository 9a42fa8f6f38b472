/**
 * Temporary directories for a test file, removed when the file's tests end (a file-level afterAll
 * registered when this module loads), so a green run leaves nothing behind in the temp folder. Benchmarks
 * share these helpers outside vitest, where they are removed when the process exits.
 */
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

const made: string[] = []
if (process.env.VITEST === undefined) process.on('exit', () => { for (const d of made) rmSync(d, { recursive: true, force: true }) })
else afterAll(async () => { await Promise.all(made.splice(0).map(d => rm(d, { recursive: true, force: true }))) })

/** A new directory under the temp folder named `prefix` + random characters, removed after the file's tests. */
export async function tempDir (prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}
