/** Compares a host's output directory with the origin's files, by SHA-256. */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import type { ModelFile } from './origin.ts'

async function sha256File (path: string): Promise<string | undefined> {
  const h = createHash('sha256')
  try {
    for await (const b of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(b as Buffer)
  } catch {
    return undefined
  }
  return h.digest('hex')
}

/** True when every expected file exists under `dir` with the expected digest. */
export async function verifyOutput (dir: string, files: ModelFile[]): Promise<boolean> {
  for (const f of files) if (await sha256File(join(dir, f.path)) !== f.sha256) return false
  return true
}
