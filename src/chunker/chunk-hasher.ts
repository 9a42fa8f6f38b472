/**
 * Streaming hashes of chunks read from files: memory stays at two read buffers whatever the model size.
 */
import { createHash } from 'node:crypto'
import { open, readdir, lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidInputError, ShortReadError } from '../errors.ts'
import { chunkLayout, createHeader, createManifest, spansOf, type ChunkLayout, type Manifest, type ManifestDir, type ManifestFile, type ManifestHeader } from './manifest.ts'
import { chooseChunkSize } from './chunk-size.ts'

export interface ChunkDigest {
  readonly index: number
  readonly length: number
  readonly digest: Uint8Array
}

/** 1 MiB reads: large enough that per-call overhead vanishes, small enough to stay in L2/L3 while hashed. */
export const READ_BLOCK = 1024 * 1024

/**
 * Reads [start, end) of a file in blocks, the next read already running while the caller hashes the
 * current block. A yielded block is only valid until the next iteration (two buffers alternate).
 */
export async function * readFileRange (path: string, start: number, end: number, blockSize = READ_BLOCK): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r')
  try {
    const bufs = [Buffer.allocUnsafe(blockSize), Buffer.allocUnsafe(blockSize)]
    let which = 0
    let pos = start
    const readNext = (): Promise<{ bytesRead: number }> | undefined =>
      pos < end ? fh.read(bufs[which]!, 0, Math.min(blockSize, end - pos), pos) : undefined
    let pending = readNext()
    while (pending !== undefined) {
      const { bytesRead } = await pending
      if (bytesRead === 0) throw new ShortReadError(path, end - start, pos - start, 'file shrank while being read')
      const cur = bufs[which]!.subarray(0, bytesRead)
      pos += bytesRead
      which ^= 1
      pending = readNext()
      yield cur
    }
  } finally {
    await fh.close()
  }
}

/** Bytes [start, end) of the file at `path`. */
export interface FileRange {
  readonly path: string
  readonly start: number
  readonly end: number
}

/**
 * SHA-256 of the bytes of `ranges` one after another (a chunk's spans), read with read-ahead; with `into`, the
 * bytes are also copied there (a chunk read whole, e.g. to store it elsewhere). Throws ShortReadError if a file
 * is shorter than its range.
 */
export async function hashFileRanges (ranges: readonly FileRange[], into?: Buffer): Promise<Buffer> {
  const hash = createHash('sha256')
  let at = 0
  for (const { path, start, end } of ranges) {
    // A packed small file gets buffers of its own size, not two blocks of READ_BLOCK each.
    for await (const block of readFileRange(path, start, end, Math.max(1, Math.min(READ_BLOCK, end - start)))) {
      into?.set(block, at)
      at += block.length
      hash.update(block)
    }
  }
  return hash.digest()
}

/** SHA-256 of bytes [start, end) of a file; see hashFileRanges. */
export async function hashFileRange (path: string, start: number, end: number, into?: Buffer): Promise<Buffer> {
  return hashFileRanges([{ path, start, end }], into)
}

/** Regular files and directories under `dir`, recursively, with their modes. Symlinks and special files are refused. */
export async function listModelTree (dir: string): Promise<{ files: ManifestFile[], dirs: ManifestDir[] }> {
  const files: ManifestFile[] = []
  const dirs: ManifestDir[] = []
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true })
    for (const e of entries) {
      const relPath = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) {
        dirs.push({ path: relPath, mode: (await lstat(join(dir, relPath))).mode & 0o777 })
        await walk(relPath)
      } else if (e.isFile()) {
        const st = await lstat(join(dir, relPath))
        files.push({ path: relPath, size: st.size, mode: st.mode & 0o777 })
      } else throw new InvalidInputError(`${join(dir, relPath)}: only regular files and directories can be part of a model (found a symlink or special file)`)
    }
  }
  await walk('')
  return { files, dirs }
}

/** Regular files under `dir`, recursively, as manifest entries. Symlinks and special files are refused. */
export async function listModelFiles (dir: string): Promise<ManifestFile[]> {
  return (await listModelTree(dir)).files
}

/** The file ranges chunk `index` of a version laid out as `layout` says is made of, under `dir`. */
export function chunkRanges (dir: string, header: ManifestHeader, layout: ChunkLayout, index: number): FileRange[] {
  return spansOf(layout, index).map(s => ({ path: join(dir, header.files[s.file]!.path), start: s.offset, end: s.offset + s.length }))
}

/** Hashes every chunk of a model directory laid out as `header` says, in chunk order. */
export async function * hashDirectoryChunks (dir: string, header: ManifestHeader): AsyncGenerator<ChunkDigest> {
  const layout = chunkLayout(header)
  for (let index = 0; index < layout.count; index++) {
    yield { index, length: layout.length[index]!, digest: await hashFileRanges(chunkRanges(dir, header, layout, index)) }
  }
}

export interface DirectoryManifestOptions {
  name: string
  version: string
  /** Defaults to the chunk-size policy for the directory's total size. */
  chunkSize?: number
  onChunk?: (c: ChunkDigest) => void
}

/** Lists, chunks and hashes a model directory into a manifest. */
export async function manifestFromDirectory (dir: string, opts: DirectoryManifestOptions): Promise<Manifest> {
  const { files, dirs } = await listModelTree(dir)
  const total = files.reduce((s, f) => s + f.size, 0)
  const header = createHeader({ name: opts.name, version: opts.version, chunkSize: opts.chunkSize ?? chooseChunkSize(total), files, dirs })
  const hashes: Uint8Array[] = []
  for await (const c of hashDirectoryChunks(dir, header)) {
    hashes.push(c.digest)
    opts.onChunk?.(c)
  }
  return createManifest(header, hashes)
}
