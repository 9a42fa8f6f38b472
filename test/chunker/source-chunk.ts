import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { chunkLayout, spansOf, type ManifestHeader } from '../../src/chunker/manifest.ts'

/** Reads chunk `i` straight from a plain model directory (the test's ground truth): its spans, one after another. */
export async function readSourceChunk (dir: string, header: ManifestHeader, i: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const span of spansOf(chunkLayout(header), i)) {
    const fh = await open(join(dir, header.files[span.file]!.path), 'r')
    try {
      const buf = Buffer.alloc(span.length)
      await fh.read(buf, 0, buf.length, span.offset)
      parts.push(buf)
    } finally {
      await fh.close()
    }
  }
  return Buffer.concat(parts)
}
