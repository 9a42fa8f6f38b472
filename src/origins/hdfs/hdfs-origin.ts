/**
 * HDFS as an origin, through WebHDFS: each configured root holds `<name>/<version>/`, and a version is
 * ready once its completion marker exists.
 *
 * Watching stays cheap on a busy NameNode. HDFS updates a directory's mtime when an entry is created in
 * or removed from it, so each poll lists every root once, and a model directory only when its mtime moved
 * or it has versions not ready yet (whose markers are written one level further down); a marker is
 * probed only in version directories whose mtime moved since the last probe. Versions seen ready are
 * remembered and never probed again: versions are immutable. Every FULL_LIST_EVERY-th poll lists every
 * model directory anyway, should two changes ever share a millisecond.
 */
import type { ManifestDir, ManifestFile } from '../../chunker/manifest.ts'
import { InvalidInputError, NotFoundError, OriginChangedError, ShortReadError } from '../../errors.ts'
import type { ModelVersion } from '../../model-version.ts'
import { DEFAULT_MARKER, type Origin, type OriginListing, type ReadSink } from '../origin.ts'
import type { HdfsFileStatus, WebHdfsClient } from './webhdfs-client.ts'
import { HdfsFileNotFoundError, HdfsRemoteError } from './webhdfs-errors.ts'

/** Polls between listings of every model directory, whatever their mtimes say. */
const FULL_LIST_EVERY = 12

export interface HdfsOriginOptions {
  client: WebHdfsClient
  /** Absolute HDFS directories holding `<name>/<version>/`; a model name found under two roots is taken from the first. */
  roots: string[]
  /** @default `_SUCCESS` */
  marker?: string
}

export class HdfsOrigin implements Origin {
  readonly description: string
  readonly #client: WebHdfsClient
  readonly #roots: string[]
  readonly #marker: string
  /** Model name → the root it was found under. */
  readonly #modelRoot = new Map<string, string>()
  readonly #ready = new Set<string>()
  /** Version directory → its mtime when the marker was last found missing. */
  readonly #probedAt = new Map<string, number>()
  /** Model directory → its mtime at its last listing, the ready versions found, and whether others were pending. */
  readonly #listed = new Map<string, { mtime: number, ready: ModelVersion[], pending: boolean }>()
  #polls = 0

  constructor (opts: HdfsOriginOptions) {
    if (opts.roots.length === 0) throw new InvalidInputError('an HDFS origin needs at least one root directory')
    for (const root of opts.roots) if (!root.startsWith('/')) throw new InvalidInputError(`HDFS root must be an absolute path: ${root}`)
    this.#client = opts.client
    this.#roots = opts.roots.map(r => r.length > 1 ? r.replace(/\/+$/, '') : r)
    this.#marker = opts.marker ?? DEFAULT_MARKER
    this.description = `webhdfs:${opts.roots.join(',')}`
  }

  get bytesRead (): number { return this.#client.bytesRead }

  async listReady (signal?: AbortSignal): Promise<ModelVersion[]> {
    const out: ModelVersion[] = []
    const names = new Set<string>()
    const full = this.#polls++ % FULL_LIST_EVERY === 0
    for (const root of this.#roots) {
      for (const model of await this.#list(root, signal)) {
        if (model.type !== 'DIRECTORY' || names.has(model.pathSuffix)) continue
        names.add(model.pathSuffix)
        this.#modelRoot.set(model.pathSuffix, root)
        const dir = `${root}/${model.pathSuffix}`
        let seen = this.#listed.get(dir)
        if (full || seen === undefined || seen.pending || seen.mtime !== model.modificationTime) {
          seen = { mtime: model.modificationTime, ...await this.#readyVersions(model.pathSuffix, dir, signal) }
          this.#listed.set(dir, seen)
        }
        out.push(...seen.ready)
      }
    }
    return out
  }

  /** Lists one model directory: its ready versions, and whether any version is not ready yet. */
  async #readyVersions (name: string, modelDir: string, signal: AbortSignal | undefined): Promise<{ ready: ModelVersion[], pending: boolean }> {
    const ready: ModelVersion[] = []
    let pending = false
    for (const v of await this.#list(modelDir, signal)) {
      if (v.type !== 'DIRECTORY') continue
      const ref = { name, version: v.pathSuffix }
      const dir = this.#dir(ref)
      if (!this.#ready.has(dir)) {
        if (this.#probedAt.get(dir) === v.modificationTime || !await this.#markerExists(dir, signal)) {
          this.#probedAt.set(dir, v.modificationTime)
          pending = true
          continue
        }
        this.#ready.add(dir)
        this.#probedAt.delete(dir)
      }
      ready.push(ref)
    }
    return { ready, pending }
  }

  async isReady (ref: ModelVersion, signal?: AbortSignal): Promise<boolean> {
    for (const root of this.#modelRoot.has(ref.name) ? [this.#modelRoot.get(ref.name)!] : this.#roots) {
      if (await this.#markerExists(`${root}/${ref.name}/${ref.version}`, signal)) {
        this.#modelRoot.set(ref.name, root)
        return true
      }
    }
    return false
  }

  async listVersion (ref: ModelVersion, signal?: AbortSignal): Promise<OriginListing> {
    const files: ManifestFile[] = []
    const dirs: ManifestDir[] = []
    const stamps: Record<string, string> = {}
    const walk = async (rel: string): Promise<void> => {
      for (const s of await this.#list(rel === '' ? this.#dir(ref) : `${this.#dir(ref)}/${rel}`, signal)) {
        const path = rel === '' ? s.pathSuffix : `${rel}/${s.pathSuffix}`
        const mode = Number.parseInt(s.permission, 8) & 0o777
        if (s.type === 'DIRECTORY') {
          dirs.push({ path, mode })
          await walk(path)
        } else if (s.type === 'FILE') {
          if (path === this.#marker) continue
          files.push({ path, size: s.length, mode })
          stamps[path] = stampOf(s)
        } else throw new InvalidInputError(`${this.#dir(ref)}/${path}: only files and directories can be part of a model (found a ${s.type})`)
      }
    }
    await walk('')
    return { files: files.sort(byPath), dirs: dirs.sort(byPath), stamps }
  }

  async stampOf (ref: ModelVersion, path: string, signal?: AbortSignal): Promise<string> {
    return stampOf(await this.#client.getFileStatus(`${this.#dir(ref)}/${path}`, { signal }))
  }

  async read (ref: ModelVersion, path: string, offset: number, length: number, sink: ReadSink, signal?: AbortSignal): Promise<void> {
    const full = `${this.#dir(ref)}/${path}`
    try {
      await this.#client.read(full, { offset, length, signal }, sink)
    } catch (err) {
      // HDFS answered but the range is not there: find out whether the file shrank (final) or not (retry).
      if (err instanceof ShortReadError || err instanceof HdfsRemoteError) await this.#checkSize(full, offset + length, err, signal)
      throw err
    }
  }

  /** The DataNode's composite CRC checksum: computed from stored block CRCs, no data crosses the line. */
  async checksum (ref: ModelVersion, path: string, signal?: AbortSignal): Promise<string> {
    const sum = await this.#client.getFileChecksum(`${this.#dir(ref)}/${path}`, { signal })
    return `${sum.algorithm}:${sum.bytes}`
  }

  #dir (ref: ModelVersion): string {
    const root = this.#modelRoot.get(ref.name) ?? this.#roots[0]!
    return `${root === '/' ? '' : root}/${ref.name}/${ref.version}`
  }

  async #list (path: string, signal: AbortSignal | undefined): Promise<HdfsFileStatus[]> {
    try {
      return await this.#client.listStatus(path, { signal })
    } catch (err) {
      if (err instanceof HdfsFileNotFoundError) throw new NotFoundError(`HDFS path ${path} does not exist — check --hdfs-root`, { cause: err })
      throw err
    }
  }

  async #markerExists (dir: string, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      return (await this.#client.getFileStatus(`${dir}/${this.#marker}`, { signal })).type === 'FILE'
    } catch (err) {
      if (err instanceof HdfsFileNotFoundError) return false
      throw err
    }
  }

  /** A failed read from a file that no longer reaches the range's end is final: retrying cannot bring the bytes back. */
  async #checkSize (full: string, end: number, cause: Error, signal: AbortSignal | undefined): Promise<void> {
    const now = await this.#client.getFileStatus(full, { signal }).then(s => s.length, () => undefined)
    if (now !== undefined && now < end) {
      throw new OriginChangedError(`${full} shrank to ${now} bytes after its version was listed (a read up to byte ${end} failed) — versions must not change once their marker is written (${cause.message})`)
    }
  }
}

/** HDFS files are written once: a file id names one file's bytes; length and modification time guard appends. */
function stampOf (s: HdfsFileStatus): string {
  return `${s.length}:${s.modificationTime}:${s.fileId}`
}

function byPath (a: { path: string }, b: { path: string }): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0
}
