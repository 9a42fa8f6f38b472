/** An origin on the local filesystem: ROOT/<name>/<version>/ with a `_SUCCESS` marker when ready. */
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { listModelTree } from '../chunker/chunk-hasher.ts'
import { NotFoundError, ShortReadError } from '../errors.ts'
import type { ModelVersion } from '../model-version.ts'
import { DEFAULT_MARKER, type Origin, type OriginListing, type ReadSink } from './origin.ts'

export class LocalDirOrigin implements Origin {
  readonly description: string
  bytesRead = 0
  readonly #root: string
  readonly #marker: string

  constructor (root: string, opts: { marker?: string } = {}) {
    this.#root = root
    this.#marker = opts.marker ?? DEFAULT_MARKER
    this.description = `dir:${root}`
  }

  async listReady (): Promise<ModelVersion[]> {
    const out: ModelVersion[] = []
    for (const name of await dirs(this.#root)) {
      for (const version of await dirs(join(this.#root, name))) {
        if (await isFile(join(this.#root, name, version, this.#marker))) out.push({ name, version })
      }
    }
    return out
  }

  async isReady (ref: ModelVersion): Promise<boolean> {
    return isFile(join(this.#root, ref.name, ref.version, this.#marker))
  }

  async listVersion (ref: ModelVersion): Promise<OriginListing> {
    const dir = join(this.#root, ref.name, ref.version)
    try {
      const tree = await listModelTree(dir)
      const files = tree.files.filter(f => f.path !== this.#marker)
      const stamps: Record<string, string> = {}
      for (const f of files) stamps[f.path] = await this.stampOf(ref, f.path)
      return { files, dirs: tree.dirs, stamps }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${dir} does not exist`, { cause: err })
      throw err
    }
  }

  /** Size, nanosecond mtime and ctime, and inode: a write in place moves the times, a replacement the inode. */
  async stampOf (ref: ModelVersion, path: string): Promise<string> {
    const st = await stat(join(this.#root, ref.name, ref.version, path), { bigint: true })
    return `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`
  }

  async read (ref: ModelVersion, path: string, offset: number, length: number, sink: ReadSink): Promise<void> {
    const file = join(this.#root, ref.name, ref.version, path)
    const fh = await open(file, 'r')
    try {
      for (let done = 0; done < length;) {
        const region = sink.region()
        const { bytesRead } = await fh.read(region, 0, Math.min(region.length, length - done), offset + done)
        if (bytesRead === 0) throw new ShortReadError(`${file} at ${offset}`, length, done, 'file shrank while being read')
        done += bytesRead
        this.bytesRead += bytesRead
        await sink.filled(bytesRead)
      }
    } finally {
      await fh.close()
    }
  }
}

async function dirs (path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter(e => e.isDirectory()).map(e => e.name).sort()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
}

async function isFile (path: string): Promise<boolean> {
  return stat(path).then(s => s.isFile(), () => false)
}
