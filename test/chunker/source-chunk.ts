import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { chunkLayout, type ManifestHeader } from '../../src/chunker/manifest.ts'

/** Reads chunk `i` straight from a plain model directory (the test's ground truth). */
export async function readSourceChunk (dir: string, header: ManifestHeader, i: number): Promise<Buffer> {
  const l = chunkLayout(header)
  const fh = await open(join(dir, header.files[l.file[i]!]!.path), 'r')
  try {
    const buf = Buffer.alloc(l.length[i]!)
    await fh.read(buf, 0, buf.length, l.offset[i]!)
    return buf
  } finally {
    await fh.close()
  }
}
