/**
 * One model version's swarm as seen from one node: its neighbours (sessions), what each holds, the
 * signed metadata, the download scheduler (peers) and upload admission (everyone).
 *
 * The piece picker and the seeder's upload policy decide; this file only moves bytes and messages.
 */
import { EventEmitter } from 'node:events'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { IntegrityError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelVersion } from '../model-version.ts'
import { createRng } from '../util/random.ts'
import { BufferPool } from './buffer-pool.ts'
import { BulkClient } from './bulk-transfer.ts'
import type { ChunkRequest, ChunkResponse, ServeDecision } from './chunk-codec.ts'
import { requestChunk } from './chunk-transfer.ts'
import { ipOf, type SwarmNode } from './node.ts'
import { PiecePicker } from './piece-picker.ts'
import { SESSION_PROTOCOL } from './protocols.ts'
import type { VersionMeta } from './publications.ts'
import { readHello, sendHello, Session } from './session.ts'
import type { BulkGrant, PeerHint, ProgressReport, Role, SessionMessage } from './session-messages.ts'
import type { TrustList } from './signed.ts'

/** The seeder's say over its own upload (src/seeder/upload-policy.ts implements it). */
export interface UploadGate {
  decide: (peer: string, index: number, now: number, failedHolders: readonly string[]) => { serve: true } | { serve: false, holders: string[] }
  served: (index: number, bytes: number) => void
  peerHas: (peer: string, index: number) => void
  peerBitfield: (peer: string, bits: Bitfield) => void
  peerGone: (peer: string) => void
}

/** The node's TLS bulk endpoint, if it runs one (src/peer/bulk-transfer.ts). */
export interface BulkAccess {
  grant: (peer: string) => BulkGrant
  revoke: (peer: string) => void
}

export interface VersionSwarmOptions {
  /** Neighbours to keep sessions with (seeders excluded). @default 12 */
  maxNeighbours?: number
  /** Concurrent chunk requests to one peer. @default 4 */
  maxRequestsPerPeer?: number
  /** Memory for chunks being received (each is verified whole before it is written; at least two chunks). @default 32 MiB */
  maxBufferedBytes?: number
  /** Concurrent uploads this node serves for the version. @default 8 */
  maxUploads?: number
  /** Abort a request when no byte arrives for this long. @default 20 s */
  requestIdleMs?: number
  /** How often to report progress to seeders and look for more peers. @default 2 s */
  tickMs?: number
  /** Declare the download stalled after this long without a verified chunk. @default 30 s */
  stallAfterMs?: number
  /** Seed for tie-breaks. @default random */
  seed?: number
}

export interface SwarmStats {
  bytesDown: number
  bytesUp: number
  chunksDown: number
  chunksUp: number
  /** Chunks received that failed verification. */
  rejected: number
  banned: string[]
}

interface SwarmEvents {
  chunk: [index: number, from: string]
  complete: []
  stalled: [reason: string]
  progress: []
  /** A local failure (disk full, I/O error) that ends the download. */
  fatal: [err: Error]
}

const DEFAULTS = { maxNeighbours: 12, maxRequestsPerPeer: 4, maxBufferedBytes: 32 * 1024 * 1024, maxUploads: 8, requestIdleMs: 20_000, tickMs: 2000, stallAfterMs: 30_000 }

export class VersionSwarm extends EventEmitter<SwarmEvents> {
  readonly role: Role
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly stats: SwarmStats = { bytesDown: 0, bytesUp: 0, chunksDown: 0, chunksUp: 0, rejected: 0, banned: [] }
  /** Last progress report of each peer (seeders keep these for `status`). */
  readonly reports = new Map<string, ProgressReport & { at: number }>()
  readonly #node: SwarmNode
  readonly #trust: TrustList | undefined
  readonly #gate: UploadGate | undefined
  readonly #log: Logger
  readonly #opts: Required<Omit<VersionSwarmOptions, 'seed'>>
  readonly #picker: PiecePicker
  readonly #sessions = new Map<string, Session>()
  readonly #dialing = new Set<string>()
  readonly #requests = new Map<string, AbortController>()
  readonly #banned = new Set<string>()
  /** Per chunk, non-seeder peers whose request for it failed: told to seeders so they stop naming them. */
  readonly #failedHolders = new Map<number, Set<string>>()
  #uploads = 0
  /** Chunks received and being verified and written; their buffers count against the memory budget. */
  #writing = 0
  #lastProgressAt = Date.now()
  #stalledReason: string | undefined
  #timer: NodeJS.Timeout | undefined
  #scheduled = false
  #closed = false
  #finalizing: Promise<void> | undefined
  #discover: (() => Promise<PeerHint[]>) | undefined

  readonly #bulk: BulkAccess | undefined
  readonly #buffers: BufferPool

  constructor (init: { node: SwarmNode, meta: VersionMeta, store: ChunkStore, role: Role, trust?: TrustList, gate?: UploadGate, bulk?: BulkAccess, log: Logger, options?: VersionSwarmOptions }) {
    super()
    this.#node = init.node
    this.meta = init.meta
    this.store = init.store
    this.role = init.role
    this.#trust = init.trust
    this.#gate = init.gate
    this.#log = init.log.child({ version: formatModelVersion(init.meta.header) })
    const { seed, ...rest } = init.options ?? {}
    this.#opts = { ...DEFAULTS, ...rest }
    this.#bulk = init.bulk
    this.#buffers = new BufferPool(init.store.header.chunkSize, Math.max(2, Math.floor(this.#opts.maxBufferedBytes / init.store.header.chunkSize)))
    this.#picker = new PiecePicker({ numChunks: init.store.layout.count, have: init.store.have, rng: createRng(seed ?? Math.floor(Math.random() * 2 ** 31)) })
    for (const i of init.meta.known.setIndexes()) this.#picker.setAvailable(i)
  }

  get headerId (): string { return this.meta.headerId }
  get complete (): boolean { return this.store.complete }
  get neighbours (): number { return this.#sessions.size }
  get stalledReason (): string | undefined { return this.#stalledReason }

  /** Starts timers: reports, discovery, timeouts; and downloading when this node lacks chunks. */
  start (discover?: () => Promise<PeerHint[]>): void {
    this.#discover = discover
    this.#timer = setInterval(() => { this.#tick() }, this.#opts.tickMs)
    this.#timer.unref()
    this.#tick()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    for (const c of this.#requests.values()) c.abort(new Error('swarm closing'))
    for (const s of this.#sessions.values()) s.close()
    await this.#finalizing?.catch(() => {})
  }

  // --- Neighbours -----------------------------------------------------------------------------

  /** Dials a peer and opens a session (no-op when one exists, is being dialed, or the peer is banned). */
  async connect (hint: PeerHint | PeerId): Promise<void> {
    const id = 'toMultihash' in hint ? hint : peerIdFromString(hint.id)
    const key = id.toString()
    if (this.#closed || key === this.#node.peerId.toString() || this.#sessions.has(key) || this.#dialing.has(key) || this.#banned.has(key)) return
    this.#dialing.add(key)
    try {
      if (!('toMultihash' in hint) && hint.addrs.length > 0) await this.#node.peerStore.merge(id, { multiaddrs: hint.addrs.map(a => multiaddr(a)) })
      const stream = await this.#node.dialProtocol(id, SESSION_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      await sendHello(stream, this.headerId, this.role)
      const hello = await readHello(stream)
      if (hello.headerId !== this.headerId) throw new IntegrityError('peer answered for another version')
      this.attach(new Session(stream, hello.reader, id, hello.role, this.store.layout.count))
    } catch (err) {
      this.#log.debug({ peer: key, err: (err as Error).message }, 'session dial failed')
    } finally {
      this.#dialing.delete(key)
    }
  }

  /** Adopts a handshaken session: sends what we know, then reads the neighbour's messages. */
  attach (session: Session): void {
    const key = session.peerKey
    if (this.#closed || this.#banned.has(key)) {
      session.close()
      return
    }
    const old = this.#sessions.get(key)
    if (old !== undefined && !old.closed) {
      // Both sides dialed at once: keep one session, the same one on both sides (the older wins).
      session.close()
      return
    }
    this.#sessions.set(key, session)
    this.#log.debug({ peer: key, role: session.remoteRole }, 'neighbour joined')
    for (const bytes of this.meta.signedItems()) session.send({ type: 'signed', bytes })
    session.send({ type: 'bitfield', bytes: this.store.have.bytes.slice() })
    if (this.#bulk !== undefined) session.send({ type: 'bulk', grant: this.#bulk.grant(key) })
    if (this.role === 'seeder') session.send({ type: 'peers', peers: this.#hintsFor(key) })
    session.run(m => this.#onMessage(session, m))
      .catch(err => this.#log.debug({ peer: key, err: (err as Error).message }, 'session ended with error'))
      .finally(() => this.#detach(session))
  }

  #detach (session: Session): void {
    if (this.#sessions.get(session.peerKey) !== session) return
    this.#sessions.delete(session.peerKey)
    for (const index of this.#picker.removePeer(session.peerKey)) this.#cancel(session.peerKey, index)
    this.#gate?.peerGone(session.peerKey)
    this.#schedule()
  }

  async #onMessage (session: Session, m: SessionMessage): Promise<void> {
    const key = session.peerKey
    switch (m.type) {
      case 'signed': {
        // The publisher signs; everyone else verifies before believing or relaying.
        if (this.#trust === undefined) return
        const fresh = await this.meta.addSigned(m.bytes, this.#trust)
        if (fresh.length === 0) return
        for (const i of fresh) {
          await this.store.recordHash(i, this.meta.hashOf(i)!)
          this.#picker.setAvailable(i)
        }
        for (const s of this.#sessions.values()) if (s !== session) s.send(m)
        this.#schedule()
        return
      }
      case 'bitfield': {
        const bits = new Bitfield(this.store.layout.count, m.bytes)
        for (const i of bits.setIndexes()) session.bits.set(i)
        this.#picker.addPeer(key, session.bits, { seeder: session.remoteRole === 'seeder' })
        this.#gate?.peerBitfield(key, session.bits)
        this.#schedule()
        return
      }
      case 'have':
        for (const i of m.indexes) {
          if (i >= this.store.layout.count) throw new IntegrityError(`HAVE for chunk ${i} of ${this.store.layout.count}`)
          session.bits.set(i)
          this.#picker.peerHas(key, i)
          this.#gate?.peerHas(key, i)
        }
        this.#schedule()
        return
      case 'peers':
        for (const hint of m.peers) if (this.#wantMoreNeighbours()) void this.connect(hint)
        return
      case 'report':
        this.reports.set(key, { ...m.report, at: Date.now() })
        return
      case 'bulk': {
        // A node run with the bulk path off neither serves nor uses it.
        if (this.#bulk === undefined) return
        // Dial the bulk endpoint at the address the libp2p connection already reaches.
        const remote = this.#node.getConnections(session.peer)[0]?.remoteAddr
        const host = remote === undefined ? undefined : ipOf(remote)
        if (host !== undefined) {
          session.bulk?.close()
          session.bulk = new BulkClient(host, m.grant)
        }
        return
      }
      case 'hello':
        throw new IntegrityError('second hello')
    }
  }

  #wantMoreNeighbours (): boolean {
    let peers = 0
    for (const s of this.#sessions.values()) if (s.remoteRole === 'peer') peers++
    return peers + this.#dialing.size < this.#opts.maxNeighbours
  }

  /** A sample of members for a newcomer, those holding the most first (the seeder sees everyone). */
  #hintsFor (exclude: string): PeerHint[] {
    const members = [...this.#sessions.values()].filter(s => s.peerKey !== exclude && s.remoteRole === 'peer')
    members.sort((a, b) => b.bits.count - a.bits.count || Math.random() - 0.5)
    return members.slice(0, this.#opts.maxNeighbours).map(s => ({
      id: s.peerKey,
      addrs: this.#node.getConnections(s.peer).map(c => c.remoteAddr.toString()).filter(a => !a.includes('/p2p-circuit'))
    }))
  }

  // --- Publishing (seeder) and announcing -----------------------------------------------------

  /** Sends a signed item this node produced (or accepted) to every neighbour. */
  broadcastSigned (bytes: Uint8Array, fresh: readonly number[]): void {
    for (const i of fresh) this.#picker.setAvailable(i)
    for (const s of this.#sessions.values()) s.send({ type: 'signed', bytes })
  }

  /** Tells neighbours this node now holds `indexes`. */
  announceHave (indexes: number[]): void {
    for (const s of this.#sessions.values()) s.send({ type: 'have', indexes })
    this.emit('progress')
  }

  // --- Upload ---------------------------------------------------------------------------------

  /** Upload admission for one chunk request from `peer`. */
  serve (peer: string, index: number, failedHolders: readonly string[] = []): ServeDecision {
    if (this.#banned.has(peer) || index >= this.store.layout.count || !this.store.have.has(index)) return { status: 'missing' }
    if (this.#uploads >= this.#opts.maxUploads) return { status: 'busy' }
    const verdict = this.#gate?.decide(peer, index, Date.now(), failedHolders)
    if (verdict !== undefined && !verdict.serve) return { status: 'refused', holders: verdict.holders }
    this.#uploads++
    let sent = 0
    const length = this.store.layout.length[index]!
    return {
      status: 'ok',
      length,
      read: (offset, n, into) => this.store.readRange(index, offset, n, into),
      onSent: bytes => {
        sent += bytes
        this.stats.bytesUp += bytes
        this.#gate?.served(index, bytes)
        if (sent === length) {
          this.stats.chunksUp++
          this.#uploads--
        }
      },
      onEnd: () => { if (sent !== length) this.#uploads-- }
    }
  }

  // --- Download -------------------------------------------------------------------------------

  #schedule (): void {
    if (this.#scheduled || this.#closed || this.role === 'seeder' || this.store.have.complete) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#fillRequests()
    })
  }

  #fillRequests (): void {
    const budget = Math.max(2, Math.floor(this.#opts.maxBufferedBytes / this.store.header.chunkSize))
    const now = Date.now()
    // Rotate the starting neighbour so no one peer always gets first pick.
    const sessions = [...this.#sessions.values()]
    const start = sessions.length > 0 ? Math.floor(Math.random() * sessions.length) : 0
    for (let k = 0; k < sessions.length && this.#requests.size + this.#writing < budget; k++) {
      const s = sessions[(start + k) % sessions.length]!
      const inflight = this.#picker.peerStats(s.peerKey)?.inflight ?? 0
      const free = Math.min(this.#opts.maxRequestsPerPeer - inflight, budget - this.#requests.size - this.#writing)
      for (const index of this.#picker.pick(s.peerKey, free, now)) void this.#request(s, index)
    }
  }

  async #request (session: Session, index: number): Promise<void> {
    const key = session.peerKey
    const reqKey = `${key}/${index}`
    const ctl = new AbortController()
    this.#requests.set(reqKey, ctl)
    let res: ChunkResponse
    try {
      res = await this.#fetchChunk(session, {
        headerId: this.headerId,
        index,
        length: this.store.layout.length[index]!,
        onBytes: n => { this.stats.bytesDown += n },
        alloc: n => this.#buffers.take(n),
        failedHolders: session.remoteRole === 'seeder' ? [...this.#banned, ...this.#failedHolders.get(index) ?? []] : undefined
      }, ctl.signal)
    } catch (err) {
      if (!ctl.signal.aborted) {
        this.#holderFailed(session, index)
        this.#picker.requestFailed(key, index, Date.now())
        this.#log.debug({ peer: key, index, err: (err as Error).message }, 'chunk request failed')
      }
      return
    } finally {
      if (this.#requests.get(reqKey) === ctl) this.#requests.delete(reqKey)
      this.#schedule()
    }
    if (ctl.signal.aborted) return
    const now = Date.now()
    if (res.status !== 'ok') {
      if (res.status === 'missing') this.#holderFailed(session, index)
      this.#picker.requestFailed(key, index, now, { refused: res.status !== 'missing' })
      if (res.status === 'refused') for (const h of res.holders) if (this.#wantMoreNeighbours()) void this.connect(peerIdFromString(h))
      return
    }
    // The request slot is free again (scheduled above) while the chunk is verified and written.
    this.#picker.requestDone(key, index, res.data.length, now)
    this.#writing++
    try {
      await this.store.writeChunk(index, res.data, res.digest)
      this.#onVerified(index, key)
    } catch (err) {
      if (err instanceof IntegrityError) {
        this.#picker.requestFailed(key, index, now)
        this.#ban(session, `chunk ${index} failed verification`)
      } else {
        // Not the peer's fault (disk full, I/O error): the download cannot go on.
        this.emit('fatal', err as Error)
      }
    } finally {
      this.#writing--
      this.#buffers.give(res.data)
      this.#schedule()
    }
  }

  /** Over the neighbour's TLS bulk endpoint when it granted one, else over a libp2p stream. */
  async #fetchChunk (session: Session, req: ChunkRequest, signal: AbortSignal): Promise<ChunkResponse> {
    const bulk = session.bulk
    if (bulk === undefined) return requestChunk(this.#node, session.peer, req, this.#opts.requestIdleMs, signal)
    try {
      return await bulk.request(req, this.#opts.requestIdleMs, signal)
    } catch (err) {
      // An endpoint we cannot reach (firewalled port) is given up for this neighbour; libp2p still works.
      if (!signal.aborted && bulk.connectFailed) {
        this.#log.warn({ peer: session.peerKey, err: (err as Error).message }, 'bulk endpoint unreachable; using libp2p streams')
        session.bulk = undefined
      }
      throw err
    }
  }

  #holderFailed (session: Session, index: number): void {
    if (session.remoteRole === 'seeder') return
    const set = this.#failedHolders.get(index) ?? new Set()
    set.add(session.peerKey)
    this.#failedHolders.set(index, set)
  }

  #onVerified (index: number, from: string): void {
    this.#failedHolders.delete(index)
    this.stats.chunksDown++
    this.#lastProgressAt = Date.now()
    this.#setStalled(undefined)
    for (const c of this.#picker.markHave(index)) this.#cancel(c.peer, c.index)
    for (const s of this.#sessions.values()) s.send({ type: 'have', indexes: [index] })
    this.emit('chunk', index, from)
    this.emit('progress')
    if (this.store.have.complete && this.#finalizing === undefined) {
      this.#finalizing = this.store.finalize().then(() => {
        this.#log.info({ chunks: this.store.layout.count, bytes: this.store.layout.totalSize }, 'download complete')
        this.#report()
        this.emit('complete')
      })
    }
  }

  #cancel (peer: string, index: number): void {
    const key = `${peer}/${index}`
    const ctl = this.#requests.get(key)
    if (ctl !== undefined) {
      this.#requests.delete(key)
      ctl.abort(new Error('duplicate no longer needed'))
    }
  }

  #ban (session: Session, why: string): void {
    const key = session.peerKey
    this.stats.rejected++
    if (this.#banned.has(key)) return
    this.#banned.add(key)
    this.stats.banned.push(key)
    this.#log.warn({ peer: key, why }, 'peer banned for this session')
    this.#bulk?.revoke(key)
    session.close(new IntegrityError(why))
    void this.#node.hangUp(session.peer).catch(() => {})
  }

  // --- Housekeeping ---------------------------------------------------------------------------

  #tick (): void {
    if (this.#closed) return
    const now = Date.now()
    for (const r of this.#picker.timedOut(now, () => this.#opts.requestIdleMs * 2)) {
      this.#cancel(r.peer, r.index)
      this.#picker.requestFailed(r.peer, r.index, now)
    }
    this.#report()
    if (this.role === 'peer' && !this.store.have.complete) {
      if (now - this.#lastProgressAt > this.#opts.stallAfterMs) this.#setStalled(this.#diagnose())
      if (this.#discover !== undefined && this.#wantMoreNeighbours()) {
        this.#discover().then(hints => { for (const h of hints) if (this.#wantMoreNeighbours()) void this.connect(h) }, () => {})
      }
    }
    this.#schedule()
  }

  #setStalled (reason: string | undefined): void {
    if (reason === this.#stalledReason) return
    this.#stalledReason = reason
    if (reason !== undefined) {
      this.#log.warn({ reason, have: this.store.have.count, total: this.store.layout.count }, 'download stalled')
      this.emit('stalled', reason)
    } else this.#log.info('download progressing again')
  }

  /** Says why no chunk arrives, in words an operator can act on. */
  #diagnose (): string {
    if (this.#sessions.size === 0) return 'no neighbours: no seeder or peer reachable (check --bootstrap and the network)'
    if (this.meta.known.count === this.store.have.count) return 'waiting for the seeder to publish more chunks (it is still pulling from the origin)'
    return `${this.#sessions.size} neighbours but none serves the missing chunks (refused, busy or timing out)`
  }

  #report (): void {
    if (this.role === 'seeder') return
    const report: ProgressReport = {
      have: this.store.have.count,
      total: this.store.layout.count,
      bytesDown: this.stats.bytesDown,
      bytesUp: this.stats.bytesUp,
      rateDown: 0,
      state: this.store.have.complete ? 'seeding' : this.#stalledReason !== undefined ? 'stalled' : 'downloading',
      ...(this.#stalledReason !== undefined ? { reason: this.#stalledReason } : {})
    }
    for (const s of this.#sessions.values()) if (s.remoteRole === 'seeder') s.send({ type: 'report', report })
  }
}
