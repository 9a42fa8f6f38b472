/** The TLS-PSK bulk endpoint's server: grants per neighbour, and chunk requests served over persistent connections. */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import tls, { type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../../../log.ts'
import { ByteReader } from '../byte-reader.ts'
import type { BulkGrant } from '../session/codec.ts'
import { BULK_CONNECTION_IDLE_MS, BULK_TLS, socketSender } from './bulk-tls.ts'
import { readRequest, writeResponse, type ChunkLookup } from './codec.ts'

const peerOfSocket = new WeakMap<TLSSocket, string>()

export class BulkServer {
  readonly #server: tls.Server
  /** PSK identity → the libp2p peer it was granted to, and its key. */
  readonly #grants = new Map<string, { peer: string, key: Buffer }>()
  readonly #byPeer = new Map<string, string>()
  readonly #log: Logger
  #port = 0

  constructor (lookup: ChunkLookup, log: Logger) {
    this.#log = log
    this.#server = tls.createServer({
      ...BULK_TLS,
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

  async #serve (socket: TLSSocket, lookup: ChunkLookup): Promise<void> {
    const peer = peerOfSocket.get(socket)
    if (peer === undefined) {
      socket.destroy()
      return
    }
    // Small answers (missing, busy, a refusal, a 2 KiB chunk of a config file) must leave at once: with
    // Nagle on, each waited for the client's delayed ACK (~40 ms), and a version of 5,000 small files took
    // 60–75 s instead of 19.5 s over libp2p streams.
    socket.setNoDelay(true)
    const reader = new ByteReader(socket, { idleMs: BULK_CONNECTION_IDLE_MS, abort: err => socket.destroy(err), what: 'bulk connection' })
    const send = socketSender(socket)
    socket.on('error', () => {})
    try {
      for (let req = await readRequest(reader); req !== undefined; req = await readRequest(reader)) {
        if (!this.#byPeer.has(peer)) break
        await writeResponse(send, lookup(peer, req))
      }
      socket.end()
    } catch (err) {
      socket.destroy(err as Error)
    } finally {
      reader.dispose()
    }
  }
}
