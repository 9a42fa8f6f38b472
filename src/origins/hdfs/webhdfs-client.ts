/**
 * A thin WebHDFS client for the seeder. Metadata goes over node:http rather than fetch: redirects are
 * never followed implicitly (OPEN and GETFILECHECKSUM must be sent to the DataNode the NameNode names),
 * and transport errors keep Node's codes (ECONNREFUSED) for failover decisions. File bytes come from the
 * DataNode through datanode-reader.ts, straight into the caller's buffers.
 * The npm `webhdfs` package was measured unfit for this path: see bench/webhdfs-npm-check.ts.
 *
 * Secured clusters: https:// NameNodes (and the DataNodes they redirect to) are verified against `ca` when
 * given; a NameNode answering 401 `WWW-Authenticate: Negotiate` gets a SPNEGO token (spnego.ts) and hands
 * back a `hadoop.auth` cookie, reused until it expires so each request does not cost a Kerberos exchange.
 * The DataNode URLs of its 307s carry a `delegation=` token of their own: DataNodes need no SPNEGO.
 * Tokens, cookies and redirect URLs are never logged: errors name endpoints by origin and path only.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { InvalidInputError, TimeoutError } from '../../errors.ts'
import { backoffDelay } from '../../util/backoff.ts'
import { sleep } from '../../util/sleep.ts'
import type { ReadSink } from '../origin.ts'
import { readBody } from './datanode-reader.ts'
import { KERBEROS_FLAGS, type SpnegoProvider } from './spnego.ts'
import {
  HdfsAuthError, HdfsConnectionError, HdfsHttpError, HdfsRetriableError, HdfsSafeModeError, HdfsStandbyError,
  NameNodesUnavailableError, connectionError, errorFromResponse, type NameNodeFailure
} from './webhdfs-errors.ts'

export interface WebHdfsLogger {
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export interface WebHdfsClientOptions {
  /** NameNode base URLs (`http://host:port` or `https://host:port`), e.g. both members of an HA pair. */
  namenodes: string[]
  /** PEM bundle of the CAs trusted for https:// NameNodes and DataNodes; replaces Node's bundled roots. */
  ca?: string | Buffer
  /** Answers NameNodes that ask for Kerberos (HTTP 401 `WWW-Authenticate: Negotiate`); without it they get HdfsAuthError. */
  spnego?: SpnegoProvider
  /** Sent as `user.name` (simple authentication) when no delegation token is given. */
  user?: string
  /** Sent as `delegation=`; replaces `user.name`, which a secure NameNode would check against the token. */
  delegationToken?: string
  /** Deadline for each metadata exchange, and for the DataNode's response headers. @default 30_000 */
  requestTimeoutMs?: number
  /** Longest wait for the next bytes of an OPEN body; time the consumer holds a chunk does not count. @default 60_000 */
  idleTimeoutMs?: number
  /** Passes over the NameNode list before giving up (a failover takes seconds). @default 3 */
  maxRounds?: number
  /** Pause before the second pass, doubled for each later one. @default 500 */
  retryDelayMs?: number
  /** Called with each chunk's size as it arrives from a DataNode: bytes read from HDFS at the HTTP layer. */
  onBytes?: (n: number) => void
  log?: WebHdfsLogger
}

export interface HdfsFileStatus {
  pathSuffix: string
  type: 'FILE' | 'DIRECTORY' | 'SYMLINK'
  length: number
  owner: string
  group: string
  /** Octal string, e.g. "644". */
  permission: string
  modificationTime: number
  /** The inode id: a file deleted and written again under the same path gets a new one. */
  fileId: number
  accessTime: number
  blockSize: number
  replication: number
}

export interface HdfsFileChecksum {
  /** e.g. `MD5-of-0MD5-of-512CRC32C`: equal only between files written with the same block and chunk sizes. */
  algorithm: string
  bytes: string
  length: number
}

export interface OpenOptions {
  offset?: number
  /** Bytes to read; the stream throws ShortReadError if fewer arrive. Omitted: up to end of file. */
  length?: number
  signal?: AbortSignal
}

const MAX_JSON_BYTES = 64 << 20
/** Block size and read-ahead of `open`. */
const OPEN_BLOCK = 256 * 1024
const OPEN_AHEAD = 4

export class WebHdfsClient {
  /** Bytes received from DataNodes by OPEN bodies. */
  bytesRead = 0
  readonly #namenodes: string[]
  readonly #options: WebHdfsClientOptions
  readonly #httpAgent = new HttpAgent({ keepAlive: true })
  readonly #httpsAgent: HttpsAgent
  /** NameNode origin → its `hadoop.auth` cookie (`name=value`), set after a SPNEGO exchange. */
  readonly #authCookies = new Map<string, string>()
  /** NameNodes that asked for Kerberos: the user is the ticket's, and a user.name that differs is refused. */
  readonly #kerberized = new Set<string>()
  readonly #requestTimeoutMs: number
  readonly #idleTimeoutMs: number
  #active = 0

  constructor (options: WebHdfsClientOptions) {
    if (options.namenodes.length === 0) throw new InvalidInputError('WebHdfsClient needs at least one NameNode')
    this.#namenodes = options.namenodes.map(nn => {
      const url = new URL(nn)
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError(`unsupported NameNode URL ${nn}: use http:// or https://`)
      return url.origin
    })
    this.#options = options
    this.#httpsAgent = new HttpsAgent({ keepAlive: true, ca: options.ca })
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000
  }

  /** The NameNode that answered last: the one tried first next time. */
  get activeNameNode (): string { return this.#namenodes[this.#active]! }

  async getFileStatus (path: string, options: { signal?: AbortSignal } = {}): Promise<HdfsFileStatus> {
    const body = await this.#metadata('GETFILESTATUS', path, options.signal)
    return fileStatus(field(body, 'FileStatus'), `GETFILESTATUS ${path}`)
  }

  async listStatus (path: string, options: { signal?: AbortSignal } = {}): Promise<HdfsFileStatus[]> {
    const body = await this.#metadata('LISTSTATUS', path, options.signal)
    const list = field(field(body, 'FileStatuses'), 'FileStatus')
    if (!Array.isArray(list)) throw new HdfsHttpError(200, `LISTSTATUS ${path}: FileStatus is not a list`)
    return list.map(s => fileStatus(s, `LISTSTATUS ${path}`))
  }

  /** The NameNode redirects to a DataNode, which computes the checksum from the blocks' stored CRCs. */
  async getFileChecksum (path: string, options: { signal?: AbortSignal } = {}): Promise<HdfsFileChecksum> {
    const where = `GETFILECHECKSUM ${path}`
    const dataNode = await this.#redirect('GETFILECHECKSUM', path, {}, options.signal)
    const body = await this.#withDeadline(options.signal, async signal => readJson(await this.#get(dataNode, signal), where))
    const sum = field(body, 'FileChecksum') as Partial<HdfsFileChecksum>
    if (typeof sum.algorithm !== 'string' || typeof sum.bytes !== 'string' || typeof sum.length !== 'number') {
      throw new HdfsHttpError(200, `${where}: malformed FileChecksum`)
    }
    return { algorithm: sum.algorithm, bytes: sum.bytes, length: sum.length }
  }

  /**
   * Reads [offset, offset + length) of a file from the DataNode the NameNode redirects to, straight into
   * `sink`'s buffers (see datanode-reader.ts). Throws ShortReadError if fewer bytes arrive.
   */
  async read (path: string, options: OpenOptions, sink: ReadSink): Promise<void> {
    const { offset = 0, length, signal } = options
    if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidInputError(`invalid offset ${offset}`)
    if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) throw new InvalidInputError(`invalid length ${length}`)
    if (length === 0) return
    const params: Record<string, string> = { offset: String(offset) }
    if (length !== undefined) params.length = String(length)
    const url = await this.#redirect('OPEN', path, params, signal)
    await readBody({
      url,
      length,
      signal,
      where: `OPEN ${path} [${offset}+${length ?? 'EOF'}]`,
      ca: this.#options.ca,
      headerTimeoutMs: this.#requestTimeoutMs,
      idleTimeoutMs: this.#idleTimeoutMs,
      onBytes: n => {
        this.bytesRead += n
        this.#options.onBytes?.(n)
      }
    }, sink)
  }

  /**
   * `read` as a pull-based stream of fresh blocks: bytes are read from the socket only as fast as the
   * consumer iterates (a few blocks ahead). Aborting `signal` or leaving the loop early closes the connection.
   */
  async * open (path: string, options: OpenOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
    const stop = new AbortController()
    const blocks: Uint8Array[] = []
    let block = Buffer.allocUnsafe(OPEN_BLOCK)
    let wake: (() => void) | undefined
    let release: (() => void) | undefined
    let ended = false
    let failure: { err: unknown } | undefined
    const sink: ReadSink = {
      region: () => block,
      filled: n => {
        blocks.push(block.subarray(0, n))
        block = Buffer.allocUnsafe(OPEN_BLOCK)
        wake?.()
        if (blocks.length >= OPEN_AHEAD) return new Promise(resolve => { release = resolve })
      }
    }
    const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal])
    const reading = this.read(path, { ...options, signal }, sink).then(
      () => { ended = true },
      (err: unknown) => { failure = { err } }
    ).finally(() => wake?.())
    try {
      while (true) {
        const next = blocks.shift()
        if (next !== undefined) {
          release?.()
          release = undefined
          yield next
          continue
        }
        if (failure !== undefined) throw failure.err
        if (ended) return
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
      }
    } finally {
      if (!ended && failure === undefined) {
        stop.abort()
        release?.()
        await reading
      }
    }
  }

  /** Closes idle keep-alive connections. */
  close (): void {
    this.#httpAgent.destroy()
    this.#httpsAgent.destroy()
  }

  async #metadata (op: string, path: string, signal: AbortSignal | undefined): Promise<unknown> {
    return this.#onNameNodes(`${op} ${path}`, signal, async (nn, deadline) =>
      readJson(await this.#nameNodeGet(this.#url(nn, op, path, {}), deadline, `${op} ${path} @ ${nn}`), `${op} ${path} @ ${nn}`))
  }

  /** Asks the NameNodes for `op` and returns the DataNode URL of their 307 answer. */
  async #redirect (op: string, path: string, params: Record<string, string>, signal: AbortSignal | undefined): Promise<URL> {
    return this.#onNameNodes(`${op} ${path}`, signal, async (nn, deadline) => {
      const where = `${op} ${path} @ ${nn}`
      const res = await this.#nameNodeGet(this.#url(nn, op, path, params), deadline, where)
      const location = res.headers.location
      if (res.statusCode === 307 && location !== undefined) {
        res.resume() // frees the keep-alive connection
        return new URL(location, nn)
      }
      if (res.statusCode !== undefined && res.statusCode >= 400) throw errorFromResponse(res.statusCode, await readText(res, where), where)
      res.resume()
      throw new HdfsHttpError(res.statusCode ?? 0, `${where}: expected a 307 redirect to a DataNode, got HTTP ${res.statusCode}`)
    })
  }

  /**
   * Runs `attempt` on the NameNodes, the last good one first. A standby, a NameNode in safe mode or asking
   * for a retry, a refused connection or a missed deadline moves on to the next one; any other answer is
   * authoritative and thrown as is.
   */
  async #onNameNodes<T> (what: string, signal: AbortSignal | undefined, attempt: (nn: string, signal: AbortSignal) => Promise<T>): Promise<T> {
    const failures: NameNodeFailure[] = []
    const rounds = this.#options.maxRounds ?? 3
    for (let round = 0; round < rounds; round++) {
      if (round > 0) await sleep(backoffDelay(round, { baseMs: this.#options.retryDelayMs ?? 500, jitter: false }), signal)
      for (let k = 0; k < this.#namenodes.length; k++) {
        const index = (this.#active + k) % this.#namenodes.length
        const nn = this.#namenodes[index]!
        try {
          const result = await this.#withDeadline(signal, deadline => attempt(nn, deadline))
          if (index !== this.#active) {
            this.#options.log?.info({ namenode: nn, previous: this.activeNameNode }, 'webhdfs: switched NameNode')
            this.#active = index
          }
          return result
        } catch (err) {
          if (!isNameNodeFailure(err)) throw err
          failures.push({ namenode: nn, error: err })
          this.#options.log?.warn({ namenode: nn, err: err.message, round }, 'webhdfs: NameNode failed, trying the next')
        }
      }
    }
    throw new NameNodesUnavailableError(what, failures)
  }

  async #withDeadline<T> (signal: AbortSignal | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs)
    try {
      return await run(signal === undefined ? timeout : AbortSignal.any([signal, timeout]))
    } catch (err) {
      if (signal?.aborted === true) throw signal.reason
      if (timeout.aborted) throw new TimeoutError(`no answer within ${this.#requestTimeoutMs} ms`, { cause: err })
      throw err
    }
  }

  #url (nn: string, op: string, path: string, params: Record<string, string>): URL {
    if (!path.startsWith('/')) throw new InvalidInputError(`HDFS path must be absolute: ${path}`)
    const url = new URL(`${nn}/webhdfs/v1${path.split('/').map(encodeURIComponent).join('/')}`)
    url.searchParams.set('op', op)
    if (this.#options.delegationToken !== undefined) url.searchParams.set('delegation', this.#options.delegationToken)
    else if (this.#options.user !== undefined) url.searchParams.set('user.name', this.#options.user)
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v)
    return url
  }

  /**
   * A GET to a NameNode, authenticated when it asks: its cookie if one is held, else on a 401 Negotiate
   * challenge a SPNEGO token and one retry.
   */
  async #nameNodeGet (url: URL, signal: AbortSignal, where: string): Promise<IncomingMessage> {
    if (this.#kerberized.has(url.origin)) url.searchParams.delete('user.name')
    const cookie = this.#authCookies.get(url.origin)
    let res = await this.#get(url, signal, cookie === undefined ? {} : { cookie })
    if (res.statusCode !== 401 || !isNegotiate(res)) return this.#keepCookie(url, res)
    res.resume()
    this.#authCookies.delete(url.origin)
    this.#kerberized.add(url.origin)
    url.searchParams.delete('user.name')
    const spnego = this.#options.spnego
    if (spnego === undefined) throw new HdfsAuthError(`${where}: the NameNode requires Kerberos (SPNEGO); pass ${KERBEROS_FLAGS}`)
    const token = await spnego.token(url.hostname, where)
    res = await this.#get(url, signal, { authorization: `Negotiate ${token}` })
    if (res.statusCode === 401) {
      const text = await readText(res, where)
      throw new HdfsAuthError(`${where}: the NameNode refused the Kerberos credentials (${errorFromResponse(401, text, 'HTTP 401').message}); check ${KERBEROS_FLAGS}`)
    }
    return this.#keepCookie(url, res)
  }

  #keepCookie (url: URL, res: IncomingMessage): IncomingMessage {
    for (const c of res.headers['set-cookie'] ?? []) {
      const pair = c.split(';', 1)[0]!
      if (pair.startsWith('hadoop.auth=') && pair.length > 'hadoop.auth='.length + 2) this.#authCookies.set(url.origin, pair)
    }
    return res
  }

  #get (url: URL, signal: AbortSignal, headers: OutgoingHttpHeaders = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const https = url.protocol === 'https:'
      const request = https ? httpsRequest : httpRequest
      const req = request(url, { agent: https ? this.#httpsAgent : this.#httpAgent, signal, headers: { accept: 'application/json', ...headers } }, resolve)
      req.once('error', err => reject(signal.aborted ? err : connectionError(`GET ${url.origin}${url.pathname}`, err)))
      req.end()
    })
  }
}

function isNegotiate (res: IncomingMessage): boolean {
  const h = res.headers['www-authenticate']
  return h !== undefined && /^negotiate\b/i.test(h)
}

function isNameNodeFailure (err: unknown): err is Error {
  return err instanceof HdfsStandbyError || err instanceof HdfsSafeModeError || err instanceof HdfsRetriableError ||
    err instanceof HdfsConnectionError || err instanceof TimeoutError ||
    (err instanceof HdfsHttpError && err.status >= 500)
}

async function readText (res: IncomingMessage, where: string): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > MAX_JSON_BYTES) throw new HdfsHttpError(res.statusCode ?? 0, `${where}: answer larger than ${MAX_JSON_BYTES} bytes`)
      chunks.push(chunk)
    }
  } catch (err) {
    res.destroy()
    throw err instanceof HdfsHttpError ? err : new HdfsConnectionError(where, err)
  }
  return Buffer.concat(chunks).toString('utf8')
}

async function readJson (res: IncomingMessage, where: string): Promise<unknown> {
  const text = await readText(res, where)
  if (res.statusCode !== 200) throw errorFromResponse(res.statusCode ?? 0, text, where)
  try {
    return JSON.parse(text)
  } catch {
    throw new HdfsHttpError(200, `${where}: invalid JSON: ${text.slice(0, 200)}`)
  }
}

function field (body: unknown, name: string): unknown {
  const value = (body as Record<string, unknown> | null)?.[name]
  if (typeof value !== 'object' || value === null) throw new HdfsHttpError(200, `answer lacks ${name}`)
  return value
}

function fileStatus (value: unknown, where: string): HdfsFileStatus {
  const s = value as Partial<HdfsFileStatus>
  if (typeof s.type !== 'string' || typeof s.length !== 'number' || typeof s.pathSuffix !== 'string' ||
    typeof s.modificationTime !== 'number' || typeof s.permission !== 'string') {
    throw new HdfsHttpError(200, `${where}: malformed FileStatus`)
  }
  return s as HdfsFileStatus
}
