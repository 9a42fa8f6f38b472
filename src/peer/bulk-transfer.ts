/**
 * The bulk data path: chunk exchange over TLS 1.2 with a pre-shared key (PSK-AES128-GCM-SHA256).
 *
 * Why: libp2p's Noise + yamux costs ≈ 2.5–3 CPU-s per GiB received (ChaCha20 in JavaScript framing, one
 * cipher object per 64 KiB frame); OpenSSL's AES-GCM through node:tls costs ≈ 0.8 (FACTS.md). libp2p
 * still does everything else — discovery, authentication, metadata — and it is what makes this safe:
 * each node hands every neighbour a fresh random 256-bit key over their Noise-encrypted, peer-id
 * authenticated session, so a bulk connection is as authenticated as the session that granted it, and
 * its key never leaves that channel (forward secrecy comes from Noise's ephemeral keys).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto'
import { once } from 'node:events'
import tls, { type TLSSocket } from 'node:tls'
import type { AddressInfo, OnReadOpts } from 'node:net'
import { ByteReader, StreamEndedError } from './byte-reader.ts'
import { CHUNK_STATUS, MAX_REFUSAL, parsePeerList, readRequest, writeRequest, writeResponse, type ChunkRequest, type ChunkResponse, type Send, type ServeDecision } from './chunk-codec.ts'
import { IntegrityError, InvalidInputError, TimeoutError } from '../errors.ts'
import type { BulkGrant } from './session-messages.ts'
import type { Logger } from '../log.ts'

const CIPHERS = 'PSK-AES128-GCM-SHA256'
/** A persistent bulk connection may sit idle between requests this long. */
const CONNECTION_IDLE_MS = 5 * 60_000
const peerOfSocket = new WeakMap<TLSSocket, string>()

export type BulkLookup = (peer: string, headerId: string, index: number, failedHolders: string[]) => ServeDecision

/**
 * Writes with backpressure. net.Socket's 16 KiB high-water mark would make every 1 MiB write wait for a
 * full flush, leaving the link idle while the next slice is read; queue up to 2 MiB instead.
 */
const MAX_QUEUED = 2 * 1024 * 1024

function sender (socket: TLSSocket): Send {
  return async (data, release) => {
    if (socket.destroyed) throw new StreamEndedError('bulk connection closed')
    // The callback runs once TLS has encrypted the bytes: the buffer may then be reused.
    socket.write(data, release === undefined ? undefined : () => release())
    while (socket.writableLength > MAX_QUEUED) await drained(socket)
  }
}

function drained (socket: TLSSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      socket.off('drain', onDrain)
      socket.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new StreamEndedError('bulk connection closed while sending'))
    socket.on('drain', onDrain)
    socket.on('close', onClose)
  })
}

export class BulkServer {
  readonly #server: tls.Server
  /** PSK identity → the libp2p peer it was granted to, and its key. */
  readonly #grants = new Map<string, { peer: string, key: Buffer }>()
  readonly #byPeer = new Map<string, string>()
  readonly #log: Logger
  #port = 0

  constructor (lookup: BulkLookup, log: Logger) {
    this.#log = log
    this.#server = tls.createServer({
      ciphers: CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      pskCallback: (socket, identity) => {
        const g = this.#grants.get(identity)
        if (g === undefined) return null
        peerOfSocket.set(socket, g.peer)
        return g.key
      }
    }, socket => { void this.#serve(socket, lookup) })
    this.#server.on('tlsClientError', err => this.#log.debug({ err: err.message }, 'bulk handshake failed'))
  }

  async listen (host: string, port = 0): Promise<number> {
    this.#server.listen(port, host)
    await once(this.#server, 'listening')
    this.#port = (this.#server.address() as AddressInfo).port
    return this.#port
  }

  /** Access for `peer` (one grant per peer, reused across its connections). */
  grant (peer: string): BulkGrant {
    let identity = this.#byPeer.get(peer)
    if (identity === undefined) {
      identity = randomBytes(16).toString('hex')
      this.#grants.set(identity, { peer, key: randomBytes(32) })
      this.#byPeer.set(peer, identity)
    }
    return { port: this.#port, identity, key: this.#grants.get(identity)!.key.toString('base64') }
  }

  /** Withdraws a peer's access (a banned peer) and closes nothing already running: lookups refuse it. */
  revoke (peer: string): void {
    const identity = this.#byPeer.get(peer)
    if (identity === undefined) return
    this.#byPeer.delete(peer)
    this.#grants.delete(identity)
  }

  async close (): Promise<void> {
    await new Promise(resolve => this.#server.close(resolve))
  }

  async #serve (socket: TLSSocket, lookup: BulkLookup): Promise<void> {
    const peer = peerOfSocket.get(socket)
    if (peer === undefined) {
      socket.destroy()
      return
    }
    const reader = new ByteReader(socket, { idleMs: CONNECTION_IDLE_MS, abort: err => socket.destroy(err), what: 'bulk connection' })
    const send = sender(socket)
    socket.on('error', () => {})
    try {
      for (let req = await readRequest(reader); req !== undefined; req = await readRequest(reader)) {
        if (!this.#byPeer.has(peer)) break
        await writeResponse(send, lookup(peer, req.headerId, req.index, req.failedHolders))
      }
      socket.end()
    } catch (err) {
      socket.destroy(err as Error)
    } finally {
      reader.dispose()
    }
  }
}

interface Conn { socket: TLSSocket, parser: ResponseParser, send: Send }

/** Requests chunks from one neighbour's bulk endpoint over a small pool of persistent connections. */
export class BulkClient {
  readonly #host: string
  readonly #grant: BulkGrant
  readonly #key: Buffer
  readonly #idle: Conn[] = []
  readonly #all = new Set<Conn>()
  #closed = false
  /** Set when no connection could be made at all, so the caller can fall back to libp2p streams. */
  connectFailed = false

  constructor (host: string, grant: BulkGrant) {
    this.#host = host
    this.#grant = grant
    this.#key = Buffer.from(grant.key, 'base64')
  }

  async request (req: ChunkRequest, idleMs: number, signal: AbortSignal): Promise<ChunkResponse> {
    signal.throwIfAborted()
    const conn = this.#idle.pop() ?? await this.#connect(signal)
    const onAbort = (): void => { conn.socket.destroy(signal.reason as Error) }
    signal.addEventListener('abort', onAbort)
    try {
      const response = conn.parser.expect(req)
      await writeRequest(conn.send, req)
      const res = await withIdle(conn.socket, idleMs, response)
      if (!this.#closed) this.#idle.push(conn)
      else conn.socket.end()
      return res
    } catch (err) {
      this.#all.delete(conn)
      conn.socket.destroy(err as Error)
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  close (): void {
    this.#closed = true
    for (const c of this.#all) c.socket.end()
    this.#idle.length = 0
  }

  async #connect (signal: AbortSignal): Promise<Conn> {
    const parser = new ResponseParser()
    // `onread` is documented for tls.connect but missing from @types/node's ConnectionOptions.
    const options: tls.ConnectionOptions & { onread: OnReadOpts } = {
      host: this.#host,
      port: this.#grant.port,
      ciphers: CIPHERS,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.2',
      pskCallback: () => ({ psk: this.#key, identity: this.#grant.identity }),
      // PSK suites have no certificate; the key itself authenticates the server.
      checkServerIdentity: () => undefined,
      // Decrypted records land in one reused buffer: a fresh Buffer per 16 KiB record made major GCs
      // cost ~15 % of a receiver's CPU (perf profile of a 3 GiB fetch).
      onread: { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n, buf) => { parser.push(buf.subarray(0, n)); return true } }
    }
    const socket = tls.connect(options)
    const onAbort = (): void => { socket.destroy(signal.reason as Error) }
    signal.addEventListener('abort', onAbort)
    try {
      await once(socket, 'secureConnect')
    } catch (err) {
      if (this.#all.size === 0 && !signal.aborted) this.connectFailed = true
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
    socket.setNoDelay(true)
    const conn: Conn = { socket, parser, send: sender(socket) }
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

/**
 * Parses chunk responses pushed by the socket (see chunk-codec.ts for the format), copying body bytes
 * straight into the chunk buffer and hashing them on the way.
 */
class ResponseParser {
  #req: ChunkRequest | undefined
  #resolve: ((r: ChunkResponse) => void) | undefined
  #reject: ((e: Error) => void) | undefined
  #head = Buffer.alloc(5)
  #headLen = 0
  #body: Buffer | undefined
  #bodyLen = 0
  #hash: Hash | undefined

  expect (req: ChunkRequest): Promise<ChunkResponse> {
    if (this.#req !== undefined) throw new Error('a request is already pending on this connection')
    this.#req = req
    this.#headLen = 0
    this.#body = undefined
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
        if (req === undefined) throw new InvalidInputError('bulk peer sent data nobody asked for')
        if (this.#body === undefined) pos = this.#readHead(data, pos, req)
        else pos = this.#readBody(data, pos, req)
      }
    } catch (err) {
      this.fail(err as Error)
    }
  }

  #readHead (data: Uint8Array, pos: number, req: ChunkRequest): number {
    const need = this.#headLen === 0 || this.#head[0] === CHUNK_STATUS.ok || this.#head[0] === CHUNK_STATUS.refused ? 5 : 1
    const take = Math.min(need - this.#headLen, data.length - pos)
    this.#head.set(data.subarray(pos, pos + take), this.#headLen)
    this.#headLen += take
    pos += take
    const status = this.#head[0]
    if (status === CHUNK_STATUS.missing || status === CHUNK_STATUS.busy) {
      this.#finish({ status: status === CHUNK_STATUS.missing ? 'missing' : 'busy' })
      return pos
    }
    if (status !== CHUNK_STATUS.ok && status !== CHUNK_STATUS.refused) throw new InvalidInputError(`unknown chunk status ${status}`)
    if (this.#headLen < 5) return pos
    const length = this.#head.readUInt32BE(1)
    if (status === CHUNK_STATUS.ok && length !== req.length) throw new IntegrityError(`chunk ${req.index}: peer announced ${length} bytes, expected ${req.length}`)
    if (status === CHUNK_STATUS.refused && length > MAX_REFUSAL) throw new InvalidInputError('refusal too large')
    this.#body = status === CHUNK_STATUS.ok ? req.alloc?.(length) ?? Buffer.allocUnsafe(length) : Buffer.allocUnsafe(length)
    this.#bodyLen = 0
    this.#hash = status === CHUNK_STATUS.ok ? createHash('sha256') : undefined
    if (length === 0) this.#completeBody()
    return pos
  }

  #readBody (data: Uint8Array, pos: number, req: ChunkRequest): number {
    const body = this.#body!
    const take = Math.min(body.length - this.#bodyLen, data.length - pos)
    const piece = data.subarray(pos, pos + take)
    body.set(piece, this.#bodyLen)
    this.#hash?.update(piece)
    this.#bodyLen += take
    if (this.#hash !== undefined) req.onBytes?.(take)
    if (this.#bodyLen === body.length) this.#completeBody()
    return pos + take
  }

  #completeBody (): void {
    const body = this.#body!
    if (this.#hash !== undefined) this.#finish({ status: 'ok', data: body, digest: this.#hash.digest() })
    else this.#finish({ status: 'refused', holders: parsePeerList(body) })
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
    this.#body = undefined
    this.#hash = undefined
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
