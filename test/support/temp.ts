/**
 * Temporary directories for a test file, removed when the file's tests end (a file-level afterAll
 * registered when this module loads), so a green run leaves nothing behind in the temp folder.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll } from 'vitest'

const made: string[] = []
afterAll(async () => { await Promise.all(made.splice(0).map(d => rm(d, { recursive: true, force: true }))) })

/** A new directory under the temp folder named `prefix` + random characters, removed after the file's tests. */
export async function tempDir (prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  made.push(dir)
  return dir
}
