/**
 * Files shared between versions (tokenizer, config, unchanged shards) cross the line once: a file whose
 * size and origin checksum equal a file held in a complete cached version is copied from local disk.
 *
 * Each version's origin checksums live beside its store, in `<dir>.modelswarm/checksums.json`, written by
 * the seeder once per version so later versions can be matched against it without asking the origin.
 */
import { join } from 'node:path'
import { hashFileRanges } from '../chunker/chunk-hasher.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { spansOf } from '../chunker/manifest.ts'
import { readOptional, writeAtomic } from '../util/files.ts'

/** Relative path → origin checksum, for the files that have one. */
export type FileChecksums = Record<string, string>

const FILE = 'checksums.json'

/**
 * The version's recorded origin checksums; undefined when none were recorded or the file is damaged (they only
 * save copies, and the seeder asks the origin again), so a damaged file never keeps a cached version from opening.
 */
export async function readChecksums (store: ChunkStore): Promise<FileChecksums | undefined> {
  const bytes = await readOptional(join(`${store.dir}.modelswarm`, FILE))
  if (bytes === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  const valid = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.values(parsed).every(v => typeof v === 'string')
  return valid ? parsed as FileChecksums : undefined
}

export async function writeChecksums (store: ChunkStore, sums: FileChecksums): Promise<void> {
  await writeAtomic(join(`${store.dir}.modelswarm`, FILE), JSON.stringify(sums))
}

export interface HeldVersion { store: ChunkStore, checksums: FileChecksums }

/**
 * For each file of `target` with a twin in a complete held version (same size, same checksum), the
 * path of that twin on local disk, by file index.
 */
export function findTwins (target: ChunkStore, sums: FileChecksums, held: readonly HeldVersion[]): Map<number, string> {
  const index = new Map<string, string>()
  for (const { store, checksums } of held) {
    if (!store.complete) continue
    for (const f of store.header.files) {
      const sum = checksums[f.path]
      if (sum !== undefined) index.set(`${f.size}:${sum}`, join(store.dir, f.path))
    }
  }
  const twins = new Map<number, string>()
  target.header.files.forEach((f, i) => {
    const sum = sums[f.path]
    const twin = sum === undefined || f.size === 0 ? undefined : index.get(`${f.size}:${sum}`)
    if (twin !== undefined) twins.set(i, twin)
  })
  return twins
}

/**
 * Fills the missing chunks of `store` whose every file has a twin (see findTwins) from those twins, hashing
 * each as it is read (the hashes become part of the version's signed metadata, exactly as if pulled). A chunk
 * of packed small files is copied only when all of them have one. Returns the bytes copied.
 */
export async function copyTwinChunks (
  store: ChunkStore, twins: ReadonlyMap<number, string>, onChunk: (index: number, digest: Uint8Array) => void, signal?: AbortSignal
): Promise<number> {
  const { layout } = store
  let copied = 0
  for (const index of [...store.have.missingIndexes()]) {
    signal?.throwIfAborted()
    const spans = spansOf(layout, index)
    if (!spans.every(s => twins.has(s.file))) continue
    const buf = Buffer.allocUnsafe(layout.length[index]!)
    const digest = await hashFileRanges(spans.map(s => ({ path: twins.get(s.file)!, start: s.offset, end: s.offset + s.length })), buf)
    await store.recordHash(index, digest)
    await store.writeChunk(index, buf, digest)
    copied += buf.length
    onChunk(index, digest)
  }
  return copied
}
