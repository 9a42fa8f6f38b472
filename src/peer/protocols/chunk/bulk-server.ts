/** The TLS-PSK bulk endpoint's server: grants per neighbour, and chunk requests served over persistent connections. */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import tls, { type TLSSocket } from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import type { Logger } from '../../../log.ts'
import { ByteReader } from '../byte-reader.ts'
import type { BulkGrant } from '../session/codec.ts'
import { BULK_CONNECTION_IDLE_MS, BULK_TLS, socketSender } from './bulk-tls.ts'
import { readReceipt, readRequest, writeResponse, type ChunkLookup } from './codec.ts'

const peerOfSocket = new WeakMap<TLSSocket, string>()

export class BulkServer {
  /** One TLS server per listen address, all on one port. */
  readonly #servers: tls.Server[] = []
  readonly #lookup: ChunkLookup
  /** PSK identity → the libp2p peer it was granted to, and its key. */
  readonly #grants = new Map<string, { peer: string, key: Buffer }>()
  readonly #byPeer = new Map<string, string>()
  readonly #log: Logger
  readonly #admit: (ip: string | undefined) => boolean
  /** Connections accepted and not yet closed, so close() need not wait for clients to hang up. */
  readonly #open = new Set<Socket>()
  #port = 0

  /** `admit`: whether a connection from that IP may start a TLS handshake at all (the allow-list). */
  constructor (lookup: ChunkLookup, log: Logger, admit: (ip: string | undefined) => boolean = () => true) {
    this.#log = log
    this.#lookup = lookup
    this.#admit = admit
  }

  /**
   * Listens on every one of `hosts` (the IPs libp2p listens on; a wildcard of each family it listens
   * on), all on `port` (0: one the kernel picks for the first, then the same for the rest), so a
   * neighbour reaching us over any of libp2p's addresses finds the bulk endpoint at the same IP.
   * Returns the port.
   */
  async listen (hosts: readonly string[], port = 0): Promise<number> {
    const families = new Set(hosts.map(h => h.includes(':') ? 6 : 4))
    for (const host of hosts) {
      const server = tls.createServer({
        ...BULK_TLS,
        pskCallback: (socket, identity) => {
          const g = this.#grants.get(identity)
          if (g === undefined) return null
          peerOfSocket.set(socket, g.peer)
          return g.key
        }
      }, socket => { void this.#serve(socket, this.#lookup) })
      server.on('tlsClientError', err => this.#log.debug({ err: err.message }, 'bulk handshake failed'))
      // Before TLS sees a byte: a refused address never reaches the PSK lookup.
      server.prependListener('connection', (socket: Socket) => {
        if (!this.#admit(socket.remoteAddress)) return socket.destroy()
        this.#open.add(socket)
        socket.once('close', () => this.#open.delete(socket))
      })
      // '::' would also take IPv4 unless told not to, and collide with a '0.0.0.0' listener on the same port.
      server.listen({ host, port: this.#port === 0 ? port : this.#port, ipv6Only: host === '::' && families.has(4) })
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => { throw err })])
      this.#servers.push(server)
      this.#port = (server.address() as AddressInfo).port
    }
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
    return { port: this.#port, identity, key: this.#grants.get(identity)!.key.toString('base64'), receipts: true, held: true }
  }

  /** Withdraws a peer's access (a banned peer) and closes nothing already running: lookups refuse it. */
  revoke (peer: string): void {
    const identity = this.#byPeer.get(peer)
    if (identity === undefined) return
    this.#byPeer.delete(peer)
    this.#grants.delete(identity)
  }

  /**
   * Stops listening and closes every connection: a stopping node does not wait for its neighbours to hang
   * up (a client that never did kept a lab host from exiting for the server's five-minute idle timeout).
   */
  async close (): Promise<void> {
    const closed = Promise.all(this.#servers.map(s => new Promise(resolve => s.close(resolve))))
    for (const socket of this.#open) socket.destroy()
    await closed
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
        const decision = await lookup(peer, req)
        // The receipt is read while the chunk is sent (the requester sends it after the last byte), and
        // taken before the next request even when the upload stopped waiting for it.
        const delivered = req.receipt && decision.status === 'ok' ? readReceipt(reader) : undefined
        delivered?.catch(() => {})
        await writeResponse(send, decision, delivered)
        await delivered
      }
      socket.end()
    } catch (err) {
      socket.destroy(err as Error)
    } finally {
      reader.dispose()
    }
  }
}
