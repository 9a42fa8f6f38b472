/**
 * Streaming chunk-and-hash: cut bytes into chunks and hash each as the bytes pass, so memory stays at
 * two read buffers whatever the model size, and each chunk's hash is known the moment its last byte is.
 */
import { createHash } from 'node:crypto'
import { open, readdir, lstat } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidInputError, ShortReadError } from '../errors.ts'
import { chunkLayout, createHeader, createManifest, type Manifest, type ManifestDir, type ManifestFile, type ManifestHeader } from './manifest.ts'
import { chooseChunkSize } from './chunk-size.ts'

export interface ChunkDigest {
  readonly index: number
  /** Offset of the chunk in the stream (or in its file). */
  readonly offset: number
  readonly length: number
  readonly digest: Uint8Array
}

/** 1 MiB reads: large enough that per-call overhead vanishes, small enough to stay in L2/L3 while hashed. */
export const READ_BLOCK = 1024 * 1024

/** Splits a byte stream into `chunkSize` chunks (the last may be short) and yields each chunk's SHA-256. */
export async function * hashChunks (source: AsyncIterable<Uint8Array>, chunkSize: number, firstIndex = 0): AsyncGenerator<ChunkDigest> {
  let index = firstIndex
  let offset = 0
  let filled = 0
  let hash = createHash('sha256')
  for await (const block of source) {
    let pos = 0
    while (pos < block.length) {
      const take = Math.min(chunkSize - filled, block.length - pos)
      hash.update(pos === 0 && take === block.length ? block : block.subarray(pos, pos + take))
      pos += take
      filled += take
      if (filled === chunkSize) {
        yield { index: index++, offset, length: filled, digest: hash.digest() }
        offset += filled
        filled = 0
        hash = createHash('sha256')
      }
    }
  }
  if (filled > 0) yield { index, offset, length: filled, digest: hash.digest() }
}

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

/**
 * SHA-256 of bytes [start, end) of a file, read with read-ahead; with `into`, the bytes are also copied
 * there (a chunk read whole, e.g. to store it elsewhere). Throws ShortReadError if the file is shorter.
 */
export async function hashFileRange (path: string, start: number, end: number, into?: Buffer): Promise<Buffer> {
  const hash = createHash('sha256')
  let at = 0
  for await (const block of readFileRange(path, start, end)) {
    into?.set(block, at)
    at += block.length
    hash.update(block)
  }
  return hash.digest()
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

/** Hashes every chunk of a model directory laid out as `header` says, in chunk order. */
export async function * hashDirectoryChunks (dir: string, header: ManifestHeader): AsyncGenerator<ChunkDigest> {
  const layout = chunkLayout(header)
  for (const [fi, f] of header.files.entries()) {
    if (f.size === 0) continue
    yield * hashChunks(readFileRange(join(dir, f.path), 0, f.size), header.chunkSize, layout.firstChunk[fi])
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
