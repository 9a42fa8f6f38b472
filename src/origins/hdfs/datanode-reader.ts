/**
 * One HTTP/1.1 GET to a DataNode whose body the kernel copies straight into the caller's buffers
 * (net.Socket `onread` with a buffer chosen per read). Through node:http the same body cost 1.7 CPU-s per
 * GiB here, of which the HTTP stream layer, a fresh Buffer per socket read and their garbage collection
 * were half; this path does the read, SHA-256 included by the puller, in ~0.8.
 *
 * Only what a DataNode OPEN needs: a Content-Length, chunked or close-delimited body, no keep-alive (the
 * DataNode closes after each OPEN anyway), no redirects. https:// DataNodes (dfs.http.policy=HTTPS_ONLY)
 * go through tls.connect, which takes the same `onread`, verified against `ca` when given. Anything but a 200 becomes the typed error
 * `errorFromResponse` makes of its body.
 */
import { connect, isIP, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { ShortReadError, TimeoutError } from '../../errors.ts'
import type { ReadSink } from '../origin.ts'
import { HdfsConnectionError, HdfsHttpError, connectionError, errorFromResponse } from './webhdfs-errors.ts'

export interface BodyRequest {
  url: URL
  /** PEM bundle of the CAs trusted for an https:// URL; Node's bundled roots when omitted. */
  ca?: string | Buffer
  /** Body bytes expected: fewer is a ShortReadError, more an HdfsHttpError. Omitted: whatever the body holds. */
  length?: number
  /** Deadline for the response head. */
  headerTimeoutMs: number
  /** Longest wait for the next bytes while the sink is not holding the read. */
  idleTimeoutMs: number
  signal?: AbortSignal
  /** Names the request in errors. */
  where: string
  /** Called with each count of body bytes as they arrive. */
  onBytes?: (n: number) => void
}

const HEAD_LIMIT = 16 * 1024
const ERROR_BODY_LIMIT = 64 * 1024

/** Streams the body of a GET of `req.url` into `sink`; resolves once the whole body is in. */
export async function readBody (req: BodyRequest, sink: ReadSink): Promise<void> {
  if (req.url.protocol !== 'http:' && req.url.protocol !== 'https:') throw new HdfsHttpError(0, `${req.where}: unsupported DataNode URL ${req.url.origin}: only http:// and https:// are implemented`)
  return new BodyRead(req, sink).done
}

type Framing = { kind: 'length', left: number } | { kind: 'chunked', decoder: ChunkedDecoder } | { kind: 'close' }

class BodyRead {
  readonly done: Promise<void>
  readonly #req: BodyRequest
  readonly #sink: ReadSink
  readonly #socket: Socket
  #resolve!: () => void
  #reject!: (err: Error) => void
  #finished = false
  #state: 'head' | 'body' | 'error-body' = 'head'
  readonly #head = Buffer.allocUnsafe(HEAD_LIMIT)
  #headLength = 0
  #status = 0
  #framing: Framing = { kind: 'close' }
  #received = 0
  /** The socket is paused while the sink holds the read. */
  #paused = false
  /**
   * Reads that land while the sink holds the read go to the spare buffer and wait here, still framed, to be
   * copied in, in order, once it lets go. A net.Socket makes no read after its `onread` callback returns
   * false, but a TLSSocket does: it hands on what it already decrypted (195 of 512 reads of an 8 MiB body
   * came while paused, Node 24). Without this they overwrote the region the sink held: chunks of an HTTPS
   * pull failed verification at the hosts once chunks were 128 KiB.
   */
  readonly #backlog: Uint8Array[] = []
  /** The connection closed while the sink held the read (a TLSSocket gets that far too): ended once the backlog is in. */
  #closedWhilePaused = false
  readonly #spare = Buffer.allocUnsafe(64 * 1024)
  /** The region the sink gave for the read in progress. */
  #region: Uint8Array | undefined
  #errorBody: Buffer[] = []
  #errorBodyLength = 0
  readonly #headTimer: NodeJS.Timeout
  #idleTimer: NodeJS.Timeout | undefined
  /** When body bytes last arrived or the sink last released the read (performance.now()). */
  #lastProgress = 0
  readonly #onAbort = (): void => { this.#fail(this.#req.signal!.reason as Error) }

  constructor (req: BodyRequest, sink: ReadSink) {
    this.#req = req
    this.#sink = sink
    this.done = new Promise((resolve, reject) => { this.#resolve = resolve; this.#reject = reject })
    this.#headTimer = setTimeout(() => { this.#fail(new TimeoutError(`${req.where}: no answer from the DataNode within ${req.headerTimeoutMs} ms`)) }, req.headerTimeoutMs)
    const tls = req.url.protocol === 'https:'
    const host = req.url.hostname.replace(/^\[|\]$/g, '')
    const target = {
      host,
      port: Number(req.url.port === '' ? (tls ? 443 : 80) : req.url.port),
      onread: { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Uint8Array) => this.#onRead(n, buf) }
    }
    this.#socket = tls ? tlsConnect({ ...target, ca: req.ca, servername: isIP(host) === 0 ? host : undefined }) : connect(target)
    this.#socket.once(tls ? 'secureConnect' : 'connect', () => {
      const { pathname, search, host } = req.url
      this.#socket.write(`GET ${pathname}${search} HTTP/1.1\r\nHost: ${host}\r\nAccept: application/octet-stream\r\nConnection: close\r\n\r\n`)
    })
    this.#socket.on('error', err => { this.#fail(connectionError(req.where, err)) })
    this.#socket.once('close', () => { this.#onClose() })
    if (req.signal !== undefined) {
      if (req.signal.aborted) this.#onAbort()
      else req.signal.addEventListener('abort', this.#onAbort, { once: true })
    }
  }

  #nextBuffer (): Uint8Array {
    if (this.#state === 'head') return this.#head.subarray(this.#headLength)
    if (this.#state === 'error-body') return this.#head
    // Past the length asked for, only framing or an overrun can come: neither belongs in the sink.
    if (this.#paused || (this.#req.length !== undefined && this.#received >= this.#req.length)) return this.#spare
    try {
      this.#region = this.#sink.region()
    } catch (err) {
      // Node asks for this buffer from inside its read callback, where a throw would be uncaught.
      this.#fail(err as Error)
      return this.#spare
    }
    return this.#region
  }

  /** Returns false to pause the socket. */
  #onRead (n: number, buf: Uint8Array): boolean {
    if (this.#finished) return false
    try {
      if (buf === this.#spare) {
        this.#lastProgress = performance.now()
        // A copy: Node chose this buffer before the sink let go, and the next reads may land in it again
        // while the copy-in of this one is held part-way.
        const bytes = Buffer.from(this.#spare.subarray(0, n))
        if (!this.#paused) return this.#carry(bytes)
        this.#backlog.push(bytes)
        return false
      }
      if (this.#state === 'head') return this.#onHead(n)
      if (this.#state === 'error-body') return this.#onErrorBody(this.#head.subarray(0, n))
      return this.#onBody(n)
    } catch (err) {
      this.#fail(err as Error)
      return false
    }
  }

  #onHead (n: number): boolean {
    this.#headLength += n
    const head = this.#head.subarray(0, this.#headLength)
    const end = head.indexOf('\r\n\r\n')
    if (end < 0) {
      if (this.#headLength === HEAD_LIMIT) throw new HdfsHttpError(0, `${this.#req.where}: DataNode response head larger than ${HEAD_LIMIT} bytes`)
      return true
    }
    clearTimeout(this.#headTimer)
    this.#lastProgress = performance.now()
    this.#idleTimer = setTimeout(() => { this.#checkIdle() }, this.#req.idleTimeoutMs)
    this.#parseHead(head.subarray(0, end).toString('latin1'))
    const rest = Buffer.from(head.subarray(end + 4)) // the head buffer takes the next reads
    if (this.#status !== 200) {
      this.#state = 'error-body'
      return this.#onErrorBody(rest)
    }
    this.#state = 'body'
    return this.#carry(rest)
  }

  #parseHead (text: string): void {
    const [statusLine = '', ...lines] = text.split('\r\n')
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
    if (m === null) throw new HdfsHttpError(0, `${this.#req.where}: not an HTTP response: ${JSON.stringify(statusLine.slice(0, 80))}`)
    this.#status = Number(m[1])
    const headers = new Map<string, string>()
    for (const line of lines) {
      const colon = line.indexOf(':')
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
    }
    const te = headers.get('transfer-encoding')
    const cl = headers.get('content-length')
    if (te !== undefined && te.toLowerCase() !== 'identity') {
      if (te.toLowerCase() !== 'chunked') throw new HdfsHttpError(this.#status, `${this.#req.where}: unsupported transfer-encoding ${te}`)
      this.#framing = { kind: 'chunked', decoder: new ChunkedDecoder(this.#req.where) }
    } else if (cl !== undefined) {
      const left = Number(cl)
      if (!/^\d+$/.test(cl) || !Number.isSafeInteger(left)) throw new HdfsHttpError(this.#status, `${this.#req.where}: bad content-length ${JSON.stringify(cl)}`)
      if (this.#status === 200 && this.#req.length !== undefined && left > this.#req.length) throw new HdfsHttpError(200, `${this.#req.where}: DataNode sent more than requested (content-length ${left})`)
      this.#framing = { kind: 'length', left }
    }
  }

  /** Body bytes that landed outside the sink's regions (after the head, or in the spare buffer): copied in. */
  #carry (bytes: Uint8Array): boolean {
    return this.#copyIn(this.#unframe(bytes, 0, bytes.length), 0)
  }

  /** Copies data[at…] into the sink's regions, pausing whenever the sink asks to; false while paused or done. */
  #copyIn (data: Uint8Array, at: number): boolean {
    if (this.#finished) return false
    while (at < data.length) {
      const region = this.#sink.region()
      const n = Math.min(region.length, data.length - at)
      region.set(data.subarray(at, at + n))
      at += n
      const pending = this.#deliver(n)
      if (pending !== undefined) {
        const from = at
        this.#pause()
        this.#after(pending, () => { if (this.#copyIn(data, from)) this.#resume() })
        return false
      }
    }
    return this.#checkEnd()
  }

  #onBody (n: number): boolean {
    this.#lastProgress = performance.now()
    const region = this.#region!
    const data = this.#unframe(region, 0, n)
    if (data.length === 0) return this.#checkEnd()
    const pending = this.#deliver(data.length)
    if (pending === undefined) return this.#checkEnd()
    this.#pause()
    this.#after(pending, () => { if (this.#checkEnd()) this.#resume() })
    return false
  }

  /** Strips chunked framing in place (data moved to the front) and counts against Content-Length. */
  #unframe (buf: Uint8Array, start: number, end: number): Uint8Array {
    const f = this.#framing
    if (f.kind === 'chunked') return buf.subarray(start, start + f.decoder.decode(buf, start, end))
    if (f.kind === 'length') {
      const n = Math.min(end - start, f.left)
      f.left -= n
      return buf.subarray(start, start + n)
    }
    return buf.subarray(start, end)
  }

  /** Hands `n` bytes to the sink, checking the expected length first. */
  #deliver (n: number): Promise<void> | undefined {
    this.#received += n
    if (this.#req.length !== undefined && this.#received > this.#req.length) throw new HdfsHttpError(200, `${this.#req.where}: DataNode sent more than requested`)
    this.#req.onBytes?.(n)
    const r = this.#sink.filled(n)
    return r instanceof Promise ? r : undefined
  }

  /** Finishes when the framing says the body is complete; true while more is expected. */
  #checkEnd (): boolean {
    if (!this.#framedBodyComplete()) return true
    this.#finish()
    return false
  }

  /** Whether a Content-Length or chunked body is all in (a close-delimited one ends with the connection). */
  #framedBodyComplete (): boolean {
    const f = this.#framing
    return (f.kind === 'length' && f.left === 0) || (f.kind === 'chunked' && f.decoder.done)
  }

  #onErrorBody (bytes: Uint8Array): boolean {
    const data = this.#unframe(bytes, 0, bytes.length)
    if (this.#errorBodyLength < ERROR_BODY_LIMIT) {
      this.#errorBody.push(Buffer.from(data.subarray(0, ERROR_BODY_LIMIT - this.#errorBodyLength)))
      this.#errorBodyLength += data.length
    }
    if (this.#framedBodyComplete()) this.#failWithStatus()
    return true
  }

  #failWithStatus (): void {
    this.#fail(errorFromResponse(this.#status, Buffer.concat(this.#errorBody).toString('utf8'), this.#req.where))
  }

  #onClose (): void {
    if (this.#finished) return
    if (this.#paused) {
      this.#closedWhilePaused = true
      return
    }
    if (this.#state === 'error-body') return this.#failWithStatus()
    if (this.#state === 'body' && this.#framing.kind === 'close') {
      if (this.#short) return this.#failShort()
      return this.#finish()
    }
    if (this.#state === 'body' && this.#req.length !== undefined) return this.#failShort()
    this.#fail(new HdfsConnectionError(this.#req.where, new Error(this.#state === 'head' ? 'connection closed before the response head' : 'connection closed mid-body')))
  }

  /**
   * One timer for the whole read, re-armed only when it fires: bumping a timestamp per socket read is
   * cheaper than re-arming a timer per read. Time the sink holds the read does not count.
   */
  #checkIdle (): void {
    const idleFor = this.#paused ? 0 : performance.now() - this.#lastProgress
    if (idleFor >= this.#req.idleTimeoutMs) return this.#fail(new TimeoutError(`${this.#req.where}: no data for ${this.#req.idleTimeoutMs} ms`))
    this.#idleTimer = setTimeout(() => { this.#checkIdle() }, this.#req.idleTimeoutMs - idleFor)
  }

  #pause (): void {
    this.#paused = true
  }

  /** Runs `next` once the sink lets go; a sink's error, or one `next` throws (bad framing, an overrun), ends the read. */
  #after (pending: Promise<void>, next: () => void): void {
    pending.then(next).catch((err: unknown) => { this.#fail(err as Error) })
  }

  /** The sink let go: what arrived meanwhile goes in first, then the socket reads on (unless the sink holds again). */
  #resume (): void {
    if (this.#finished) return
    this.#paused = false
    this.#lastProgress = performance.now()
    while (this.#backlog.length > 0) {
      // false: the sink holds again (its continuation resumes from here) or the body is complete.
      if (!this.#carry(this.#backlog.shift()!)) return
    }
    if (this.#closedWhilePaused) this.#onClose()
    else this.#socket.resume()
  }

  #finish (): void {
    if (this.#finished) return
    if (this.#short) return this.#failShort()
    this.#settle()
    this.#resolve()
  }

  /** Fewer body bytes arrived than were asked for. */
  get #short (): boolean {
    return this.#req.length !== undefined && this.#received < this.#req.length
  }

  #failShort (): void {
    this.#fail(new ShortReadError(this.#req.where, this.#req.length!, this.#received))
  }

  #fail (err: Error): void {
    if (this.#finished) return
    this.#settle()
    this.#reject(err)
  }

  #settle (): void {
    this.#finished = true
    clearTimeout(this.#headTimer)
    clearTimeout(this.#idleTimer)
    this.#req.signal?.removeEventListener('abort', this.#onAbort)
    this.#socket.destroy()
  }
}

/**
 * Decodes a chunked body in place: each call moves the data bytes of buf[start, end) to buf[start, …)
 * and returns their count. Framing may be split anywhere across calls.
 */
export class ChunkedDecoder {
  done = false
  readonly #where: string
  #state: 'size' | 'ext' | 'size-lf' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'trailer-lf' = 'size'
  #size = 0
  #digits = 0
  #left = 0
  #trailerLineLength = 0

  constructor (where: string) { this.#where = where }

  decode (buf: Uint8Array, start: number, end: number): number {
    let out = start
    let i = start
    while (i < end && !this.done) {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, end - i)
        if (out !== i) buf.copyWithin(out, i, i + n)
        out += n
        i += n
        this.#left -= n
        if (this.#left === 0) this.#state = 'data-cr'
        continue
      }
      this.#step(buf[i++]!)
    }
    return out - start
  }

  #step (c: number): void {
    switch (this.#state) {
      case 'size': {
        const d = hexDigit(c)
        if (d >= 0) {
          if (++this.#digits > 12) throw this.#bad('chunk size too large')
          this.#size = this.#size * 16 + d
        } else if (c === 0x0d && this.#digits > 0) this.#state = 'size-lf'
        else if ((c === 0x3b || c === 0x20 || c === 0x09) && this.#digits > 0) this.#state = 'ext'
        else throw this.#bad('bad chunk size')
        return
      }
      case 'ext':
        if (c === 0x0d) this.#state = 'size-lf'
        return
      case 'size-lf':
        if (c !== 0x0a) throw this.#bad('missing LF after chunk size')
        if (this.#size === 0) {
          this.#state = 'trailer'
          this.#trailerLineLength = 0
        } else {
          this.#left = this.#size
          this.#state = 'data'
        }
        this.#size = 0
        this.#digits = 0
        return
      case 'data-cr':
        if (c !== 0x0d) throw this.#bad('missing CR after chunk data')
        this.#state = 'data-lf'
        return
      case 'data-lf':
        if (c !== 0x0a) throw this.#bad('missing LF after chunk data')
        this.#state = 'size'
        return
      case 'trailer':
        if (c === 0x0d) this.#state = 'trailer-lf'
        else this.#trailerLineLength++
        return
      case 'trailer-lf':
        if (c !== 0x0a) throw this.#bad('missing LF in trailer')
        if (this.#trailerLineLength === 0) this.done = true
        this.#trailerLineLength = 0
        this.#state = 'trailer'
    }
  }

  #bad (what: string): HdfsHttpError {
    return new HdfsHttpError(200, `${this.#where}: malformed chunked body: ${what}`)
  }
}

function hexDigit (c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  if (c >= 0x41 && c <= 0x46) return c - 0x37
  return -1
}
