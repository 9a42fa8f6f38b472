/** The TLS-PSK bulk endpoint's client: chunk requests to one neighbour over a small pool of persistent connections. */
import { once } from 'node:events'
import tls, { type TLSSocket } from 'node:tls'
import type { OnReadOpts } from 'node:net'
import { ProtocolError, TimeoutError } from '../../../errors.ts'
import { StreamEndedError } from '../byte-reader.ts'
import type { BulkGrant } from '../session/codec.ts'
import { BULK_CONNECT_TIMEOUT_MS, BULK_TLS, socketSender } from './bulk-tls.ts'
import { checkHead, ChunkReceiver, headLength, parsePeerList, RECEIPT, writeRequest, type ChunkRequest, type ChunkResponse, type Send } from './codec.ts'
import { CHUNK_STATUS } from './constants.ts'

interface Conn { socket: TLSSocket, parser: ResponseParser, send: Send }

const RECEIPT_BYTE = Uint8Array.of(RECEIPT)

/** Connects failing in a row, with none open, that make an endpoint unreachable even while others are being made. */
const UNREACHABLE_AFTER = 3

/** Requests chunks from one neighbour's bulk endpoint over a small pool of persistent connections. */
export class BulkClient {
  readonly #host: string
  readonly #grant: BulkGrant
  readonly #key: Buffer
  readonly #idle: Conn[] = []
  readonly #all = new Set<Conn>()
  /** Connections being made. */
  #connecting = 0
  /** Connects that failed since the last one that succeeded. */
  #failuresInARow = 0
  #closed = false
  /**
   * Set when no connection can be made (none open, and none being made or UNREACHABLE_AFTER failed in a row),
   * so the caller can fall back to libp2p streams. One connect reset while others were being made is not
   * that: in the lab a host was reset once under load at start while three other connects to the same peer
   * succeeded, and fell back to libp2p streams for that peer for the rest of its download.
   */
  connectFailed = false

  readonly #connectTimeoutMs: number

  /** `connectTimeoutMs`: how long a connect may take before it counts as failed (BULK_CONNECT_TIMEOUT_MS). */
  constructor (host: string, grant: BulkGrant, connectTimeoutMs = BULK_CONNECT_TIMEOUT_MS) {
    this.#host = host
    this.#grant = grant
    this.#key = Buffer.from(grant.key, 'base64')
    this.#connectTimeoutMs = connectTimeoutMs
  }

  async request (req: ChunkRequest, idleMs: number, signal: AbortSignal): Promise<ChunkResponse> {
    signal.throwIfAborted()
    const conn = this.#takeIdle() ?? await this.#connect(signal)
    const onAbort = (): void => { conn.socket.destroy(signal.reason as Error) }
    signal.addEventListener('abort', onAbort)
    try {
      const response = conn.parser.expect(req)
      // The connection may close before the response is awaited below (while the request is written);
      // the error then surfaces from the write or from awaiting, not as an unhandled rejection that ends
      // the process (a host in the lab's churn run died of one when a neighbour was killed).
      response.catch(() => {})
      const receipt = this.#grant.receipts === true
      await writeRequest(conn.send, { ...req, receipt, held: this.#grant.held === true ? req.held : undefined })
      const res = await withIdle(conn.socket, idleMs, response)
      // The sender's upload slot is held until this comes (codec.ts, writeResponse).
      if (receipt && res.status === 'ok') await conn.send(RECEIPT_BYTE)
      if (!this.#closed) this.#idle.push(conn)
      else conn.socket.destroy()
      return res
    } catch (err) {
      this.#all.delete(conn)
      conn.socket.destroy(err as Error)
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /** An idle connection still open: one whose peer closed it may wait here for its 'close' event. */
  #takeIdle (): Conn | undefined {
    for (let conn = this.#idle.pop(); conn !== undefined; conn = this.#idle.pop()) {
      if (!conn.socket.destroyed) return conn
      this.#all.delete(conn)
    }
    return undefined
  }

  /**
   * Closes idle connections at once; one carrying a request closes when its response has come. A closed
   * client never leaves a connection open: the peer's server, stopping, would wait for it (two lab hosts
   * each waited for the other's five-minute idle timeout before exiting).
   */
  close (): void {
    this.#closed = true
    for (const c of this.#idle) c.socket.destroy()
    this.#idle.length = 0
  }

  async #connect (signal: AbortSignal): Promise<Conn> {
    const parser = new ResponseParser()
    // `onread` is documented for tls.connect but missing from @types/node's ConnectionOptions.
    const options: tls.ConnectionOptions & { onread: OnReadOpts } = {
      host: this.#host,
      port: this.#grant.port,
      ...BULK_TLS,
      pskCallback: () => ({ psk: this.#key, identity: this.#grant.identity }),
      // PSK suites have no certificate; the key itself authenticates the server.
      checkServerIdentity: () => undefined,
      // Decrypted records land in one reused buffer: a fresh Buffer per 16 KiB record made major GCs
      // cost ~15 % of a receiver's CPU (perf profile of a 3 GiB fetch).
      onread: { buffer: sharedReadBuffer(), callback: (n, buf) => { parser.push(buf.subarray(0, n)); return true } }
    }
    const socket = tls.connect(options)
    const onAbort = (): void => { socket.destroy(signal.reason as Error) }
    signal.addEventListener('abort', onAbort)
    const timer = setTimeout(() => socket.destroy(new TimeoutError(`bulk connect to ${this.#host}:${this.#grant.port} not done after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs)
    this.#connecting++
    try {
      await once(socket, 'secureConnect')
    } catch (err) {
      if (!signal.aborted) {
        this.#failuresInARow++
        const alone = this.#connecting === 1 || this.#failuresInARow >= UNREACHABLE_AFTER
        if (this.#all.size === 0 && alone) this.connectFailed = true
      }
      throw err
    } finally {
      clearTimeout(timer)
      this.#connecting--
      signal.removeEventListener('abort', onAbort)
    }
    this.#failuresInARow = 0
    socket.setNoDelay(true)
    const conn: Conn = { socket, parser, send: socketSender(socket) }
    socket.on('error', err => parser.fail(err))
    socket.once('close', () => {
      parser.fail(new StreamEndedError('bulk connection closed'))
      this.#all.delete(conn)
      const i = this.#idle.indexOf(conn)
      if (i >= 0) this.#idle.splice(i, 1)
    })
    this.#all.add(conn)
    return conn
  }
}

const READ_BUFFER = 256 * 1024
let readBuffer: Buffer | undefined

/**
 * The one read buffer of every bulk connection of the process. Sharing it is safe because the parser
 * copies (or hashes) every byte before its callback returns and keeps no view of it, and each read fills
 * the buffer only just before its callback runs, on this one thread (the parallel-requests test in
 * test/peer/protocols/chunk/bulk-and-codec.test.ts checks the bytes). One per connection cost 256 KiB each,
 * and a fetch keeps a connection per request in flight to each neighbour (4 per neighbour with big chunks, up
 * to 64 with small files).
 */
function sharedReadBuffer (): Buffer {
  readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER)
  return readBuffer
}

/**
 * Parses chunk responses pushed by the socket (see codec.ts for the format), copying body bytes
 * straight into the chunk buffer and hashing them on the way.
 */
class ResponseParser {
  #req: ChunkRequest | undefined
  #resolve: ((r: ChunkResponse) => void) | undefined
  #reject: ((e: Error) => void) | undefined
  readonly #head = Buffer.alloc(5)
  #headLen = 0
  #chunk: ChunkReceiver | undefined
  /** A refusal's peer list being read. */
  #list: { bytes: Buffer, filled: number } | undefined

  expect (req: ChunkRequest): Promise<ChunkResponse> {
    if (this.#req !== undefined) throw new Error('a request is already pending on this connection')
    this.#req = req
    return new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  fail (err: Error): void {
    const reject = this.#reject
    this.#reset()
    reject?.(err)
  }

  push (data: Uint8Array): void {
    try {
      let pos = 0
      while (pos < data.length) {
        const req = this.#req
        if (req === undefined) throw new ProtocolError('bulk peer sent data nobody asked for')
        pos = this.#chunk === undefined && this.#list === undefined ? this.#readHead(data, pos, req) : this.#readBody(data, pos)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  #readHead (data: Uint8Array, pos: number, req: ChunkRequest): number {
    const need = this.#headLen === 0 ? 1 : headLength(this.#head[0]!)
    const take = Math.min(need - this.#headLen, data.length - pos)
    this.#head.set(data.subarray(pos, pos + take), this.#headLen)
    this.#headLen += take
    pos += take
    const status = this.#head[0]!
    if (this.#headLen < headLength(status)) return pos
    const length = headLength(status) === 5 ? this.#head.readUInt32BE(1) : 0
    const head = checkHead(status, length, req)
    if (typeof head !== 'number') {
      this.#finish(head)
      return pos
    }
    if (status === CHUNK_STATUS.ok) this.#chunk = new ChunkReceiver(req, length)
    else this.#list = { bytes: Buffer.allocUnsafe(length), filled: 0 }
    if (length === 0) this.#completeBody()
    return pos
  }

  #readBody (data: Uint8Array, pos: number): number {
    const missing = this.#chunk?.missing ?? this.#list!.bytes.length - this.#list!.filled
    const piece = data.subarray(pos, pos + Math.min(missing, data.length - pos))
    if (this.#chunk !== undefined) this.#chunk.push(piece)
    else {
      this.#list!.bytes.set(piece, this.#list!.filled)
      this.#list!.filled += piece.length
    }
    if (piece.length === missing) this.#completeBody()
    return pos + piece.length
  }

  #completeBody (): void {
    if (this.#chunk !== undefined) this.#finish(this.#chunk.response())
    else this.#finish({ status: 'refused', holders: parsePeerList(this.#list!.bytes) })
  }

  #finish (r: ChunkResponse): void {
    const resolve = this.#resolve
    this.#reset()
    resolve?.(r)
  }

  #reset (): void {
    this.#req = undefined
    this.#resolve = undefined
    this.#reject = undefined
    this.#chunk = undefined
    this.#list = undefined
    this.#headLen = 0
  }
}

/** A per-request idle bound on a connection that may otherwise sit quiet between requests. */
async function withIdle<T> (socket: TLSSocket, idleMs: number, response: Promise<T>): Promise<T> {
  let last = socket.bytesRead
  const timer = setInterval(() => {
    if (socket.bytesRead === last) socket.destroy(new TimeoutError(`bulk response idle for ${idleMs} ms`))
    last = socket.bytesRead
  }, idleMs)
  try {
    return await response
  } finally {
    clearInterval(timer)
  }
}
