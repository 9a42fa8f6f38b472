/**
 * The read gateway's HTTP endpoint: the read side of the S3 REST API, path-style
 * (`http://HOST:PORT/BUCKET/KEY`), bucket = model name, key = `VERSION/relative/path` or
 * `latest/relative/path`. ListBuckets, HeadBucket, GetBucketLocation, ListObjects (v1 and v2), HeadObject
 * and GetObject with one `Range`; every write answers 405 MethodNotAllowed: the gateway is read-only.
 * Requests are SigV4-checked against the configured keys; unsigned ones pass only with anonymous access on.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { NotFoundError, StoreLockedError, TimeoutError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { isValidName, isValidVersion, LATEST } from '../model-version.ts'
import { parseHostPort } from '../util/host-port.ts'
import { parseRange, type ByteRange } from './byte-range.ts'
import { decodeToken, encodeToken, listObjects, MAX_KEYS, type ObjectEntry } from './list-objects.ts'
import { streamRange, waitForStart } from './object-reader.ts'
import { errorXml, listBucketsXml, listResultXml, locationXml, S3Error } from './s3-xml.ts'
import { verifyRequest, type AccessKeys } from './sigv4-verify.ts'
import type { VersionCatalog } from './version-catalog.ts'
import type { VersionView } from './version-view.ts'

export interface GatewayOptions {
  catalog: VersionCatalog
  keys: AccessKeys
  /** Unsigned requests are served too. @default false */
  anonymous?: boolean
  log: Logger
}

export interface GatewayServer { url: string, close: () => Promise<void> }

const RESPONSE_BUFFER_BYTES = 4 * 1024 * 1024

const READ_ONLY = 'This S3 endpoint is a read-only modelswarm gateway: models are published at the origin and reach hosts through the swarm.'

export async function startGateway (hostPort: string, opts: GatewayOptions): Promise<GatewayServer> {
  const { host, port } = parseHostPort(hostPort, '--gateway-listen')
  // Large response buffers let the next disk read overlap the socket write (16 KiB, the default, serialises them).
  const server: Server = createServer({ highWaterMark: RESPONSE_BUFFER_BYTES }, (req, res) => { void handle(req, res, opts) })
  // Readers may wait for chunks still arriving: no server-side idle cut-off on a response being written.
  server.timeout = 0
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () => new Promise(resolve => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}

async function handle (req: IncomingMessage, res: ServerResponse, opts: GatewayOptions): Promise<void> {
  const requestId = randomBytes(8).toString('hex').toUpperCase()
  const raw = req.url ?? '/'
  const q = raw.indexOf('?')
  const rawPath = q < 0 ? raw : raw.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1))
  const ctl = new AbortController()
  res.once('close', () => { if (!res.writableFinished) ctl.abort(new Error('client went away')) })
  res.setHeader('x-amz-request-id', requestId)
  res.setHeader('server', 'modelswarm')
  try {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new S3Error(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed. ${READ_ONLY}`, { allow: 'GET, HEAD' })
    const caller = await verifyRequest({ method: req.method, path: rawPath, query, headers: req.headers }, opts.keys, new Date())
    if (caller === undefined && opts.anonymous !== true) throw new S3Error(403, 'AccessDenied', 'Anonymous access is not enabled on this gateway: sign requests with an access key from its --keys-file.')
    const { bucket, key } = splitPath(rawPath)
    if (bucket === '') await listBuckets(res, opts)
    else if (key === '') await bucketRequest(req, res, opts, bucket, query)
    else await objectRequest(req, res, opts, bucket, key, ctl.signal)
    opts.log.debug({ method: req.method, url: raw, status: res.statusCode, requestId }, 'gateway request')
  } catch (err) {
    const s3 = toS3Error(err)
    // A version another process is writing is a wait, not a failure.
    if (s3.status >= 500 && !(err instanceof StoreLockedError)) opts.log.warn({ method: req.method, url: raw, err: (err as Error).message, requestId }, 'gateway request failed')
    else opts.log.debug({ method: req.method, url: raw, code: s3.s3Code, requestId }, 'gateway request refused')
    if (res.headersSent) {
      // The status line is gone: only a cut connection tells the client the body is incomplete.
      res.destroy(err as Error)
      return
    }
    const body = req.method === 'HEAD' ? '' : errorXml(s3, rawPath, requestId)
    res.writeHead(s3.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...s3.headers })
    res.end(body)
  }
}

function splitPath (rawPath: string): { bucket: string, key: string } {
  const path = rawPath.replace(/^\/+/, '')
  const cut = path.indexOf('/')
  try {
    return cut < 0
      ? { bucket: decodeURIComponent(path), key: '' }
      : { bucket: decodeURIComponent(path.slice(0, cut)), key: decodeURIComponent(path.slice(cut + 1)) }
  } catch {
    throw new S3Error(400, 'InvalidURI', 'Couldn\'t parse the specified URI.')
  }
}

async function listBuckets (res: ServerResponse, opts: GatewayOptions): Promise<void> {
  sendXml(res, listBucketsXml(await opts.catalog.models()))
}

/** Throws NoSuchBucket unless the host holds a version of the model or the seeders know it. */
async function requireBucket (opts: GatewayOptions, bucket: string): Promise<string[]> {
  if (!isValidName(bucket)) throw noSuchBucket(bucket)
  const held = await opts.catalog.heldVersions(bucket)
  if (held.length > 0) return held
  try {
    await opts.catalog.latest(bucket)
  } catch (err) {
    if (err instanceof NotFoundError) throw noSuchBucket(bucket)
    throw err
  }
  return held
}

async function bucketRequest (req: IncomingMessage, res: ServerResponse, opts: GatewayOptions, bucket: string, query: URLSearchParams): Promise<void> {
  const held = await requireBucket(opts, bucket)
  if (req.method === 'HEAD') {
    res.writeHead(200, { 'content-length': 0 })
    res.end()
    return
  }
  if (query.has('location')) return sendXml(res, locationXml())
  const v2 = query.get('list-type') === '2'
  const prefix = query.get('prefix') ?? ''
  const delimiter = query.get('delimiter') ?? ''
  const maxKeys = parseMaxKeys(query.get('max-keys'))
  const token = query.get('continuation-token') ?? undefined
  const startAfter = query.get('start-after') ?? undefined
  const marker = query.get('marker') ?? undefined
  let after = (v2 ? startAfter : marker) ?? ''
  if (v2 && token !== undefined) {
    const last = decodeToken(token)
    if (last === undefined) throw new S3Error(400, 'InvalidArgument', 'The continuation token provided is incorrect')
    after = last
  }
  const entries = await listEntries(opts, bucket, held, prefix)
  const page = listObjects(entries, { prefix, delimiter, after, maxKeys })
  const next = page.truncated && page.last !== undefined ? page.last : undefined
  sendXml(res, listResultXml({
    bucket,
    version: v2 ? 2 : 1,
    prefix,
    delimiter,
    maxKeys,
    encodeUrl: query.get('encoding-type') === 'url',
    truncated: page.truncated,
    contents: page.contents,
    commonPrefixes: page.commonPrefixes,
    continuationToken: token,
    nextContinuationToken: v2 && next !== undefined ? encodeToken(next) : undefined,
    startAfter,
    marker,
    // v1 gives NextMarker only with a delimiter; without one the client continues from the last key.
    nextMarker: !v2 && delimiter !== '' ? next : undefined
  }))
}

function parseMaxKeys (v: string | null): number {
  if (v === null) return MAX_KEYS
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || v.trim() === '') throw new S3Error(400, 'InvalidArgument', 'max-keys must be a non-negative integer')
  return Math.min(n, MAX_KEYS)
}

/**
 * The objects a listing may show, sorted by key: every file of every version the host holds, of the version
 * a prefix names (fetching its header if need be) and of `latest` when the prefix can reach it.
 */
async function listEntries (opts: GatewayOptions, bucket: string, held: readonly string[], prefix: string): Promise<ObjectEntry[]> {
  const views = new Map<string, VersionView>()
  for (const version of held) {
    const view = await opts.catalog.peek({ name: bucket, version })
    if (view !== undefined) views.set(version, view)
  }
  const named = prefix.includes('/') ? prefix.slice(0, prefix.indexOf('/')) : undefined
  if (named !== undefined && named !== LATEST && isValidVersion(named) && !views.has(named)) {
    try {
      views.set(named, await opts.catalog.open(bucket, named))
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
  }
  if (LATEST.startsWith(prefix) || prefix.startsWith(`${LATEST}/`)) {
    try {
      views.set(LATEST, await opts.catalog.open(bucket, LATEST))
    } catch (err) {
      // Listing what the host holds is still useful while the seeders cannot be asked.
      if (views.size === 0 || prefix.startsWith(`${LATEST}/`)) throw err
      opts.log.warn({ model: bucket, err: (err as Error).message }, 'gateway: listing without latest')
    }
  }
  const entries: ObjectEntry[] = []
  for (const [segment, view] of views) {
    view.header.files.forEach((f, i) => entries.push({ key: `${segment}/${f.path}`, size: f.size, etag: view.etag(i), lastModified: view.lastModified }))
  }
  return entries.sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
}

async function objectRequest (
  req: IncomingMessage, res: ServerResponse, opts: GatewayOptions, bucket: string, key: string, signal: AbortSignal
): Promise<void> {
  const cut = key.indexOf('/')
  const version = key.slice(0, cut)
  const path = key.slice(cut + 1)
  if (cut <= 0 || (version !== LATEST && !isValidVersion(version))) {
    await requireBucket(opts, bucket)
    throw noSuchKey(key)
  }
  if (!isValidName(bucket)) throw noSuchBucket(bucket)
  // The bucket check runs beside the open, not before it: a version the host lacks starts its fetch at once
  // instead of after the seeders answered for the model's latest version (first byte of a 4 MiB object the
  // host lacks, idle box: 0.24–0.25 s against 0.26–0.30, medians of 10, two sets). The check still ends the
  // request when it fails first — NoSuchBucket, or 503 once `latest` gives up (30 s) while the fetch would
  // keep asking the seeders until --timeout. `latest/` needs no check: its open asks for latest itself.
  const bucketChecked = version === LATEST ? undefined : requireBucket(opts, bucket)
  bucketChecked?.catch(() => {})
  let view: VersionView
  try {
    const opening = opts.catalog.open(bucket, version)
    view = bucketChecked === undefined
      ? await opening
      : await Promise.race([opening, bucketChecked.then(async () => await opening)])
  } catch (err) {
    if (err instanceof NotFoundError) {
      await bucketChecked
      throw version === LATEST ? noSuchBucket(bucket) : noSuchKey(key)
    }
    // A version another process is writing: HEAD needs only its header, which that process has stored.
    const header = err instanceof StoreLockedError && req.method === 'HEAD' ? await opts.catalog.peek({ name: bucket, version }) : undefined
    if (header === undefined) throw err
    view = header
  }
  const file = view.fileIndex(path)
  if (file === undefined) throw noSuchKey(key)
  const size = view.header.files[file]!.size
  const etag = view.etag(file)
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    etag,
    'last-modified': view.lastModified.toUTCString(),
    'accept-ranges': 'bytes'
  }
  const ifMatch = req.headers['if-match']
  if (ifMatch !== undefined && !etagListHas(ifMatch, etag)) {
    throw new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold')
  }
  const ifNoneMatch = req.headers['if-none-match']
  if (ifNoneMatch !== undefined && etagListHas(ifNoneMatch, etag)) {
    res.writeHead(304, { etag, 'last-modified': headers['last-modified'] as string })
    res.end()
    return
  }
  const asked = parseRange(req.headers.range, size)
  if (asked === 'unsatisfiable') throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', { 'content-range': `bytes */${size}` })
  const range: ByteRange = asked ?? { start: 0, end: size - 1 }
  const length = range.end - range.start + 1
  if (asked !== undefined) headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`
  headers['content-length'] = length
  if (req.method === 'HEAD') {
    res.writeHead(asked === undefined ? 200 : 206, headers)
    res.end()
    return
  }
  // The status line waits for the first verified bytes, so a fetch that fails early still gets an S3 error.
  await waitForStart(view, file, range, signal)
  res.writeHead(asked === undefined ? 200 : 206, headers)
  await streamRange(view, file, range, res, signal)
}

function etagListHas (header: string, etag: string): boolean {
  return header.split(',').some(t => { const v = t.trim(); return v === '*' || v === etag || `"${v}"` === etag || v.replace(/^W\//, '') === etag })
}

function sendXml (res: ServerResponse, body: string): void {
  res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function noSuchBucket (bucket: string): S3Error {
  return new S3Error(404, 'NoSuchBucket', `The specified bucket does not exist: no model ${JSON.stringify(bucket)} in the host cache or on the seeders`)
}

function noSuchKey (key: string): S3Error {
  return new S3Error(404, 'NoSuchKey', `The specified key does not exist: ${JSON.stringify(key)} (keys are VERSION/path or latest/path)`)
}

/**
 * Seconds a client is asked to wait before retrying a 503. The AWS SDK for JavaScript v3 honours it (capped
 * at its own backoff + 5 s: @smithy/core's StandardRetryStrategy), so its default 3 attempts span ≈ 10 s.
 */
export const RETRY_AFTER_S = 5

/** S3 answers for modelswarm failures: a version another process is writing, a swarm that cannot be reached. */
function toS3Error (err: unknown): S3Error {
  if (err instanceof S3Error) return err
  if (err instanceof StoreLockedError) return new S3Error(503, 'SlowDown', `${err.message}; retry shortly`, { 'retry-after': String(RETRY_AFTER_S) })
  if (err instanceof TimeoutError) return new S3Error(503, 'ServiceUnavailable', err.message, { 'retry-after': String(RETRY_AFTER_S) })
  return new S3Error(500, 'InternalError', (err as Error).message)
}
