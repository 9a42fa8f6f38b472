/** What a chunk store (a fetch output, a host-cache entry or a seeder's cached version) has persisted, read from outside. */
import { readFile } from 'node:fs/promises'
import { Bitfield } from '../../src/chunker/bitfield.ts'

/**
 * The persisted bitfield of the store at `dir` (its `.modelswarm/bitfield`); empty before it has one. The store
 * creates that file and then sizes it, so a read between the two sees 0 bytes: that too counts as empty.
 */
export async function heldOnDisk (dir: string, chunks: number): Promise<Bitfield> {
  const bytes = await readFile(`${dir}.modelswarm/bitfield`).catch(() => undefined)
  return bytes === undefined || bytes.length === 0 ? new Bitfield(chunks) : new Bitfield(chunks, bytes)
}
