/**
 * An S3 bucket (AWS or any S3-compatible server) as an origin: `s3://BUCKET/PREFIX` holds
 * `<name>/<version>/…objects`, and a version is ready once its completion marker object
 * (`<name>/<version>/_SUCCESS` by default) exists.
 *
 * Watching: each poll lists PREFIX/ and each model's prefix with a `/` delimiter (one page per 1,000
 * names), and probes the marker (a one-key listing) only of versions not yet seen ready; versions seen ready are
 * remembered, as the HDFS origin does. A version's content identity is each object's size, ETag and
 * modification time (`stampOf`): an object uploaded again under the same key changes its time, so a
 * re-published version gets another revision and is never spliced with the earlier bytes.
 */
import type { Readable } from 'node:stream'
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type ListObjectsV2CommandOutput, type S3Client } from '@aws-sdk/client-s3'
import { InvalidInputError, NotFoundError, OriginChangedError, ShortReadError } from '../../errors.ts'
import type { ModelVersion } from '../../model-version.ts'
import { DEFAULT_MARKER, type Origin, type OriginListing, type ReadSink } from '../origin.ts'
import { S3Error, s3ErrorFrom } from './s3-errors.ts'
import { childNames, listingOf, stampOf, unquote, type S3ObjectInfo } from './s3-listing.ts'
import { keyPrefix, type S3Location } from './s3-url.ts'

export interface S3OriginOptions {
  client: S3Client
  location: S3Location
  /** Where the server is, for `description` (logs, /v1/models); never holds credentials. @default AWS */
  endpoint?: string
  /** @default `_SUCCESS` */
  marker?: string
  /** Keys per ListObjectsV2 page (S3 caps it at 1,000; tests lower it to walk several pages). @default 1000 */
  pageSize?: number
}

export class S3Origin implements Origin {
  readonly description: string
  bytesRead = 0
  readonly #client: S3Client
  readonly #location: S3Location
  readonly #marker: string
  readonly #pageSize: number
  /** Version key prefixes whose marker was found: versions are immutable once ready. */
  readonly #ready = new Set<string>()

  constructor (opts: S3OriginOptions) {
    if (opts.marker !== undefined && (opts.marker === '' || opts.marker.includes('/'))) throw new InvalidInputError(`the completion marker must be a file name, got ${JSON.stringify(opts.marker)}`)
    this.#client = opts.client
    this.#location = opts.location
    this.#marker = opts.marker ?? DEFAULT_MARKER
    this.#pageSize = opts.pageSize ?? 1000
    const url = `s3://${opts.location.bucket}/${opts.location.prefix}`
    this.description = opts.endpoint === undefined ? url : `${url} at ${opts.endpoint}`
  }

  async listReady (signal?: AbortSignal): Promise<ModelVersion[]> {
    const out: ModelVersion[] = []
    for (const name of await this.#children(keyPrefix(this.#location), signal)) {
      for (const version of await this.#children(keyPrefix(this.#location, name), signal)) {
        const ref = { name, version }
        if (await this.isReady(ref, signal)) out.push(ref)
      }
    }
    return out
  }

  async isReady (ref: ModelVersion, signal?: AbortSignal): Promise<boolean> {
    const dir = this.#versionPrefix(ref)
    if (this.#ready.has(dir)) return true
    // A one-key listing rather than HeadObject: a HEAD's 404 has no body, so it cannot tell a missing
    // marker from a missing bucket. The marker is the first key of its own prefix when it exists.
    const key = dir + this.#marker
    let found = false
    await this.#list(key, undefined, signal, page => { found ||= page.Contents?.[0]?.Key === key }, 1)
    if (found) this.#ready.add(dir)
    return found
  }

  async listVersion (ref: ModelVersion, signal?: AbortSignal): Promise<OriginListing> {
    const dir = this.#versionPrefix(ref)
    const objects: S3ObjectInfo[] = []
    await this.#list(dir, undefined, signal, page => {
      for (const o of page.Contents ?? []) {
        if (o.Key !== undefined) objects.push({ key: o.Key, size: o.Size ?? 0, etag: o.ETag ?? '', lastModified: o.LastModified })
      }
    })
    if (objects.length === 0) throw new NotFoundError(`${this.#url(dir)} holds no objects — check the prefix in --origin s3://BUCKET/PREFIX`)
    return listingOf(dir, objects, this.#marker)
  }

  async stampOf (ref: ModelVersion, path: string, signal?: AbortSignal): Promise<string> {
    return stampOf(await this.#head(this.#versionPrefix(ref) + path, signal))
  }

  /** The ETag with the size beside it: equal for equal bytes uploaded the same way (an MD5 for single-part uploads). */
  async checksum (ref: ModelVersion, path: string, signal?: AbortSignal): Promise<string> {
    return `s3-etag:${unquote((await this.#head(this.#versionPrefix(ref) + path, signal)).etag)}`
  }

  async read (ref: ModelVersion, path: string, offset: number, length: number, sink: ReadSink, signal?: AbortSignal): Promise<void> {
    if (length === 0) return
    const key = this.#versionPrefix(ref) + path
    const where = this.#url(key)
    let done = 0
    // The sink's own failures (a chunk that changed, a full disk) pass through as they are, not as S3 errors.
    let sinkError: { err: unknown } | undefined
    const fill = async (n: number): Promise<void> => {
      try {
        await sink.filled(n)
      } catch (err) {
        sinkError = { err }
        throw err
      }
    }
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#location.bucket, Key: key, Range: `bytes=${offset}-${offset + length - 1}` }), { abortSignal: signal })
      // A server that ignores Range answers 200 with the whole object: its first bytes are not ours unless offset is 0.
      if (res.ContentRange === undefined ? offset !== 0 : !res.ContentRange.startsWith(`bytes ${offset}-`)) {
        throw new S3Error('MS_S3_REMOTE', `${where}: asked for bytes ${offset}–${offset + length - 1}, got ${res.ContentRange ?? 'the whole object'}`, undefined, res.$metadata.httpStatusCode)
      }
      for await (const chunk of res.Body as Readable as AsyncIterable<Buffer>) {
        this.bytesRead += chunk.length
        for (let pos = 0; pos < chunk.length && done < length;) {
          const region = sink.region()
          const n = Math.min(region.length, chunk.length - pos, length - done)
          region.set(chunk.subarray(pos, pos + n))
          pos += n
          done += n
          await fill(n)
        }
        if (done === length) break
      }
    } catch (err) {
      if (sinkError !== undefined) throw sinkError.err
      const mapped = s3ErrorFrom(err, where)
      if (mapped instanceof S3Error && mapped.s3Code === 'InvalidRange') await this.#checkSize(key, offset + length, signal)
      throw mapped
    }
    if (done < length) {
      await this.#checkSize(key, offset + length, signal)
      throw new ShortReadError(`${where} at ${offset}`, length, done, 'the answer ended early')
    }
  }

  /**
   * A read that came up short of an object that no longer reaches the range's end: S3 objects never
   * shrink in place, so the object was uploaded again — the version was re-published.
   */
  async #checkSize (key: string, end: number, signal: AbortSignal | undefined): Promise<void> {
    const now = await this.#head(key, signal).then(o => o.size, () => undefined)
    if (now !== undefined && now < end) {
      throw new OriginChangedError(`${this.#url(key)} is now ${now} bytes, shorter than its listed size (a read up to byte ${end} failed): it was uploaded again after its version was listed — versions must not change once their marker is written; the version is pulled again as a new revision`, { republished: true })
    }
  }

  #versionPrefix (ref: ModelVersion): string {
    return keyPrefix(this.#location, ref.name, ref.version)
  }

  #url (key: string): string {
    return `s3://${this.#location.bucket}/${key}`
  }

  async #head (key: string, signal: AbortSignal | undefined): Promise<S3ObjectInfo> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#location.bucket, Key: key }), { abortSignal: signal })
      return { key, size: h.ContentLength ?? 0, etag: h.ETag ?? '', lastModified: h.LastModified }
    } catch (err) {
      throw s3ErrorFrom(err, this.#url(key))
    }
  }

  /** Names one level below `prefix` (delimited listing, every page). */
  async #children (prefix: string, signal: AbortSignal | undefined): Promise<string[]> {
    const common: string[] = []
    await this.#list(prefix, '/', signal, page => {
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix !== undefined) common.push(p.Prefix)
    })
    return childNames(prefix, common)
  }

  /** ListObjectsV2 over every page of `prefix`, or only the first `limit` keys. */
  async #list (prefix: string, delimiter: string | undefined, signal: AbortSignal | undefined,
    onPage: (p: ListObjectsV2CommandOutput) => void, limit?: number): Promise<void> {
    let token: string | undefined
    do {
      try {
        const input = { Bucket: this.#location.bucket, Prefix: prefix, Delimiter: delimiter, MaxKeys: limit ?? this.#pageSize, ContinuationToken: token }
        const page = await this.#client.send(new ListObjectsV2Command(input), { abortSignal: signal })
        onPage(page)
        token = page.IsTruncated === true && limit === undefined ? page.NextContinuationToken : undefined
      } catch (err) {
        throw s3ErrorFrom(err, this.#url(prefix))
      }
    } while (token !== undefined)
  }
}
