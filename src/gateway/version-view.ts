/**
 * One model version as the read gateway serves it: its header, where each file's bytes are, and which
 * chunks are verified. A version complete in the host cache is read from its files as they are; a version
 * still arriving is read from the fetch's partial files, chunk by chunk, only once each chunk is verified.
 */
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { chunkLayout, headerId, type ChunkLayout, type ManifestHeader } from '../chunker/manifest.ts'
import type { VersionSwarm } from '../peer/version-swarm.ts'

/** The priority the gateway gives chunks a reader waits for (PiecePicker.setPriority). */
export const READ_PRIORITY = 1

export class VersionView {
  readonly header: ManifestHeader
  readonly headerId: string
  readonly layout: ChunkLayout
  /** When this host started holding the version (its state directory's header file), for Last-Modified. */
  readonly lastModified: Date
  /** The version's directory in the host cache (`<cache-dir>/<name>/<version>`). */
  readonly dir: string
  readonly #files: Map<string, number>
  readonly #etags: string[] = []
  #swarm: VersionSwarm | undefined
  #complete: boolean
  #failure: Error | undefined
  readonly #waiters = new Map<number, Set<{ resolve: () => void, reject: (err: Error) => void }>>()
  /** Per chunk, readers that asked for it ahead of the rarest-first order. */
  readonly #wanted = new Map<number, number>()

  constructor (init: { header: ManifestHeader, dir: string, lastModified: Date, complete: boolean }) {
    this.header = init.header
    this.headerId = headerId(init.header)
    this.layout = chunkLayout(init.header)
    this.dir = init.dir
    this.lastModified = init.lastModified
    this.#complete = init.complete
    this.#files = new Map(init.header.files.map((f, i) => [f.path, i]))
  }

  get complete (): boolean { return this.#complete }

  /** Index of the file at relative path `path`, if the version has it. */
  fileIndex (path: string): number | undefined { return this.#files.get(path) }

  /**
   * The file's ETag: derived from the version's header id (which covers the origin revision, sizes and
   * paths, so content re-published under the same version is another header) and the path, in S3's
   * multipart form `"<hex>-<chunks>"` so clients never take it for an MD5 of the bytes. Known before any
   * chunk hash, the same on every host and before and after the fetch completes.
   */
  etag (file: number): string {
    const cached = this.#etags[file]
    if (cached !== undefined) return cached
    const f = this.header.files[file]!
    const hex = createHash('sha256').update(`${this.headerId}\0${f.path}`).digest('hex').slice(0, 32)
    const chunks = Math.max(1, Math.ceil(f.size / this.header.chunkSize))
    return (this.#etags[file] = `"${hex}-${chunks}"`)
  }

  /** Paths to try for the file's bytes, in order: the finished file, or while fetching the partial one first. */
  filePaths (file: number): string[] {
    const rel = this.header.files[file]!.path
    const done = join(this.dir, rel)
    return this.#complete ? [done] : [join(`${this.dir}.partial`, rel), done]
  }

  /** Whether every byte of chunk `index` is verified and on disk. */
  has (index: number): boolean {
    return this.#complete || (this.#swarm?.store.have.has(index) ?? false)
  }

  /** The fetch of this version is running in this process: chunks arrive through `swarm`. */
  attach (swarm: VersionSwarm): void {
    this.#swarm = swarm
    swarm.on('chunk', index => this.#wake(index))
    for (const [index, n] of this.#wanted) if (n > 0) swarm.setPriority(index, READ_PRIORITY)
  }

  /** Every chunk is verified and the files are in their final place. */
  markComplete (): void {
    this.#complete = true
    for (const index of [...this.#waiters.keys()]) this.#wake(index)
  }

  /** The fetch failed: readers waiting for chunks get `err`. */
  fail (err: Error): void {
    this.#failure = err
    for (const set of this.#waiters.values()) for (const w of set) w.reject(err)
    this.#waiters.clear()
  }

  /**
   * Puts `chunks` ahead of the rarest-first order until the returned function is called (once). Readers
   * count: a chunk goes back to normal order when no reader wants it any more.
   */
  prioritize (chunks: readonly number[]): () => void {
    const taken = chunks.filter(i => !this.has(i))
    for (const i of taken) {
      const n = (this.#wanted.get(i) ?? 0) + 1
      this.#wanted.set(i, n)
      if (n === 1) this.#swarm?.setPriority(i, READ_PRIORITY)
    }
    let released = false
    return () => {
      if (released) return
      released = true
      for (const i of taken) {
        const n = this.#wanted.get(i)! - 1
        if (n > 0) { this.#wanted.set(i, n); continue }
        this.#wanted.delete(i)
        this.#swarm?.setPriority(i, 0)
      }
    }
  }

  /**
   * Resolves once chunk `index` is verified and written. Rejects with the fetch's error if it fails, or
   * with `signal`'s reason.
   */
  waitFor (index: number, signal: AbortSignal): Promise<void> {
    if (this.has(index)) return Promise.resolve()
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    if (signal.aborted) return Promise.reject(signal.reason as Error)
    return new Promise((resolve, reject) => {
      let set = this.#waiters.get(index)
      if (set === undefined) this.#waiters.set(index, set = new Set())
      const onAbort = (): void => { set.delete(w); reject(signal.reason as Error) }
      const w = {
        resolve: () => { signal.removeEventListener('abort', onAbort); resolve() },
        reject: (err: Error) => { signal.removeEventListener('abort', onAbort); reject(err) }
      }
      set.add(w)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Wakes the readers waiting for chunk `index` once it is held. */
  #wake (index: number): void {
    const set = this.#waiters.get(index)
    if (set === undefined || !this.has(index)) return
    this.#waiters.delete(index)
    for (const w of set) w.resolve()
  }
}
