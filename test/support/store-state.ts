/** What a chunk store (a fetch output, a host-cache entry or a seeder's cached version) has persisted, read from outside. */
import { readFile } from 'node:fs/promises'
import { Bitfield } from '../../src/chunker/bitfield.ts'

/** The persisted bitfield of the store at `dir` (its `.modelswarm/bitfield`); empty before it has one. */
export async function heldOnDisk (dir: string, chunks: number): Promise<Bitfield> {
  const bytes = await readFile(`${dir}.modelswarm/bitfield`).catch(() => undefined)
  return bytes === undefined ? new Bitfield(chunks) : new Bitfield(chunks, bytes)
}
