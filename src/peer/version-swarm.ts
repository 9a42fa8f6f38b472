/**
 * One model version's swarm as seen from one node: the shell that wires its parts together and
 * dispatches session messages to them. Neighbours (neighbours.ts), upload admission
 * (upload-admission.ts) and, on a node that lacks chunks, the download scheduler
 * (download-scheduler.ts, the only owner of the piece picker); the seeder's publishing enters through
 * `broadcastSigned` and `announceHave`. The clock and the Rng are injected like the policies take them.
 */
import { EventEmitter } from 'node:events'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { IntegrityError, ProtocolError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { formatModelVersion } from '../model-version.ts'
import { createRng, type Rng } from '../util/random.ts'
import type { TokenBucket } from '../util/token-bucket.ts'
import { DISCOVERY_MAX_WAIT_MS, DiscoveryPacer } from './discovery-pacer.ts'
import { DownloadScheduler } from './download-scheduler.ts'
import { Neighbours } from './neighbours.ts'
import { ipOf } from './node.ts'
import { BulkClient } from './protocols/chunk/bulk-client.ts'
import { requestChunk } from './protocols/chunk/client.ts'
import type { ChunkRequest, ChunkResponse, ServeDecision } from './protocols/chunk/codec.ts'
import type { BulkGrant, PeerHint, ProgressReport, Role, SessionMessage } from './protocols/session/codec.ts'
import type { Session } from './protocols/session/session.ts'
import type { VersionMeta } from './publications.ts'
import type { TrustList } from './signed.ts'
import type { SwarmComponents } from './swarm-components.ts'
import { SwarmLog } from './swarm-log.ts'
import { UploadAdmission, type UploadGate } from './upload-admission.ts'
import { SWARM_DEFAULTS } from './swarm-defaults.ts'

export type { UploadGate }

/** Peers a seeder tells (HAVE) of one chunk. */
export interface Reveal { index: number, peers: string[] }

/**
 * The seeder's policy as its swarm uses it (src/seeder/upload-policy.ts): upload admission's gate, and
 * whom to tell (HAVE) of a chunk it just pulled — a few peers, who pass it on, not every peer at once.
 */
export interface SeederGate extends UploadGate {
  /** Chunk `index` was just stored: the HAVEs to send now. */
  pulled: (index: number, now: number) => Reveal[]
  /** HAVEs to send now: chunks the peers told did not take in time, and chunks waiting their turn. */
  dueReveals: (now: number) => Reveal[]
  /** The version is whole. */
  whole: () => void
  /** True once, when nothing need be held back any more: every peer is then told of every chunk. */
  allDue: () => boolean
  /** The bitfield to send a peer joining: `have` without what is held back. */
  bitfieldFor: (have: Bitfield) => Bitfield
}

/** The node's TLS bulk endpoint, if it runs one (src/peer/protocols/chunk/bulk-server.ts). */
export interface BulkAccess {
  grant: (peer: string) => BulkGrant
  revoke: (peer: string) => void
}

export interface VersionSwarmOptions {
  /** Neighbours to keep sessions with (seeders excluded). @default 12 */
  maxNeighbours?: number
  /** Concurrent chunk requests to one peer. @default 4 */
  maxRequestsPerPeer?: number
  /** Memory for chunks being received, in bytes (each verified whole before it is written; see receiveBudgetBytes). @default 32 MiB */
  maxBufferedBytes?: number
  /** Concurrent uploads this node serves for the version. @default 8 */
  maxUploads?: number
  /** Concurrent uploads to one requester; its further requests wait their turn (UploadAdmission). @default 1 */
  maxUploadsPerPeer?: number
  /** Other requesters' requests held while every upload slot is taken, instead of answered busy. @default 2 */
  uploadQueue?: number
  /** Abort a request when no byte arrives for this long, in ms. @default 20 s */
  requestIdleMs?: number
  /** How often to report progress to seeders and look for more peers, in ms. @default 2 s */
  tickMs?: number
  /** Declare the download stalled after this long without a verified chunk, in ms. @default 30 s */
  stallAfterMs?: number
  /** Seed for tie-breaks. @default random */
  seed?: number
  /** Caps what this node uploads, in bytes per second; one bucket may be shared by several swarms. @default uncapped */
  uploadBudget?: TokenBucket
}

export interface SwarmStats {
  bytesDown: number
  bytesUp: number
  chunksDown: number
  chunksUp: number
  /** Chunks received that failed verification. */
  rejected: number
  /** Verified chunks received again after another copy was written (endgame duplicates). */
  duplicates: number
  banned: string[]
}

interface SwarmEvents {
  chunk: [index: number, from: string]
  complete: []
  stalled: [reason: string]
  progress: []
  /** A local failure (disk full, I/O error) that ends the download. */
  fatal: [err: Error]
  /** A neighbour says a chunk we sent it failed verification. */
  corrupt: [index: number, peer: string]
}

const DEFAULTS = { ...SWARM_DEFAULTS, stallAfterMs: 30_000 }

export interface VersionSwarmInit {
  components: SwarmComponents
  meta: VersionMeta
  store: ChunkStore
  role: Role
  /** Keys whose signed metadata this node accepts and relays; a publisher (seeder) has none. */
  trust?: TrustList
  /** The seeder's upload policy. */
  gate?: SeederGate
  /** Download what the node lacks from the swarm: a seeder of an HA group does (src/seeder/ha-pull.ts). @default role === 'peer' */
  download?: boolean
  bulk?: BulkAccess
  log: Logger
  options?: VersionSwarmOptions
  /** Clock in ms. @default Date.now */
  now?: () => number
  /** @default a fresh Rng from `options.seed` or a random seed */
  rng?: Rng
}

export class VersionSwarm extends EventEmitter<SwarmEvents> {
  readonly role: Role
  readonly meta: VersionMeta
  readonly store: ChunkStore
  readonly stats: SwarmStats = { bytesDown: 0, bytesUp: 0, chunksDown: 0, chunksUp: 0, rejected: 0, duplicates: 0, banned: [] }
  /**
   * Last progress report of each peer, when it came and from which IP (seeders keep these for `status`),
   * and, once its session ended, when and whether because it stopped answering (see `unresponsive`).
   */
  readonly reports = new Map<string, ProgressReport & { at: number, address?: string, ended?: { at: number, unresponsive: boolean } }>()
  readonly #init: VersionSwarmInit
  readonly #opts: Required<Omit<VersionSwarmOptions, 'seed' | 'uploadBudget'>>
  readonly #now: () => number
  readonly #log: SwarmLog
  readonly #neighbours: Neighbours
  readonly #uploads: UploadAdmission
  readonly #download: DownloadScheduler<Session> | undefined
  #timer: NodeJS.Timeout | undefined
  #closed = false
  #discover: ((fruitless: number) => Promise<PeerHint[]>) | undefined
  readonly #discovery: DiscoveryPacer
  /** Neighbours that are seeders (an HA group's other members): served past the upload gate. */
  readonly #seederNeighbours = new Set<string>()

  constructor (init: VersionSwarmInit) {
    super()
    this.#init = init
    this.meta = init.meta
    this.store = init.store
    this.role = init.role
    const { seed, uploadBudget, ...rest } = init.options ?? {}
    this.#opts = { ...DEFAULTS, ...rest }
    this.#now = init.now ?? Date.now
    const rng = init.rng ?? createRng(seed ?? Math.floor(Math.random() * 2 ** 31))
    this.#discovery = new DiscoveryPacer({ baseMs: this.#opts.tickMs, maxMs: DISCOVERY_MAX_WAIT_MS, rng })
    this.#log = new SwarmLog(init.log.child({ version: formatModelVersion(init.meta.header) }))
    this.#neighbours = new Neighbours({
      components: init.components,
      headerId: this.headerId,
      role: init.role,
      chunkCount: init.store.layout.count,
      maxNeighbours: this.#opts.maxNeighbours,
      rng,
      log: this.#log,
      onJoin: s => this.#onJoin(s),
      onMessage: (s, m) => this.#onMessage(s, m),
      onLeave: (s, err) => this.#onLeave(s, err),
      onDialFailed: peer => this.#download?.holderUnreachable(peer)
    })
    this.#uploads = new UploadAdmission({
      store: init.store, gate: init.gate, maxUploads: this.#opts.maxUploads, maxUploadsPerPeer: this.#opts.maxUploadsPerPeer, queue: this.#opts.uploadQueue,
      isBanned: p => this.#neighbours.isBanned(p), now: this.#now, stats: this.stats, budget: uploadBudget,
      held: p => this.#neighbours.get(p)?.bits.count ?? 0
    })
    // A lone seeder publishes and never downloads; one of an HA group also fetches what another seeder pulled.
    if (init.download ?? init.role === 'peer') {
      this.#download = new DownloadScheduler<Session>({
        headerId: this.headerId,
        store: init.store,
        known: init.meta.known,
        neighbours: this.#neighbours,
        fetchChunk: (s, req, signal) => this.#fetchChunk(s, req, signal),
        ban: (s, err) => this.#ban(s, err),
        reportCorrupt: (s, index) => s.send({ type: 'corrupt', indexes: [index] }),
        now: this.#now,
        rng,
        log: this.#log,
        options: this.#opts,
        stats: this.stats,
        events: {
          chunk: (index, from) => {
            this.emit('chunk', index, from)
            this.emit('progress')
          },
          complete: () => {
            this.#report()
            this.emit('complete')
          },
          stalled: reason => this.emit('stalled', reason),
          fatal: err => this.emit('fatal', err)
        }
      })
    }
  }

  get headerId (): string { return this.meta.headerId }
  get complete (): boolean { return this.store.complete }
  get neighbours (): number { return this.#neighbours.size }
  /** Seeders among the neighbours. */
  get seeders (): number { return this.#neighbours.all().filter(s => s.remoteRole === 'seeder').length }
  get stalledReason (): string | undefined { return this.#download?.stalledReason }

  /** The chunks each neighbour holds (its bitfield and HAVEs so far), by peer id. */
  neighbourBits (): Map<string, Bitfield> {
    return new Map(this.#neighbours.all().map(s => [s.peerKey, s.bits]))
  }

  /**
   * Asks for chunk `index` ahead of the rarest-first order while `priority` > 0 (a reader waits for it), back
   * in that order at 0. A no-op on a seeder, which downloads nothing.
   */
  setPriority (index: number, priority: number): void {
    this.#download?.setPriority(index, priority)
  }

  /**
   * Chunk `index` was dropped from the store (a re-check found it rotten): a node that downloads fetches it
   * again from the swarm. A no-op on a lone seeder, which pulls it from the origin instead.
   */
  chunkLost (index: number): void {
    this.#download?.lost(index)
  }

  /**
   * Starts timers: reports, discovery, timeouts; and downloading when this node lacks chunks. While short of
   * neighbours, `discover` is asked for peers to dial, paced (discovery-pacer.ts); it is told how many rounds
   * in a row found no one new, so it can widen the search.
   */
  start (discover?: (fruitless: number) => Promise<PeerHint[]>): void {
    this.#discover = discover
    this.#timer = setInterval(() => { this.#tick() }, this.#opts.tickMs)
    this.#timer.unref()
    this.#tick()
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    this.#neighbours.close()
    await this.#download?.close()
  }

  /** Dials a peer and opens a session (no-op when one exists, is being dialed, or the peer is banned). */
  connect (hint: PeerHint | PeerId): Promise<void> {
    return this.#neighbours.connect(hint)
  }

  /** Adopts a session the session handler accepted. */
  attach (session: Session): void {
    this.#neighbours.attach(session)
  }

  /** Whether to take a session `peer` opened (Neighbours#acceptsInbound). */
  acceptsInbound (peer: string): boolean {
    return this.#neighbours.acceptsInbound(peer)
  }

  /** Sends a signed item this node produced (or accepted) to every neighbour. */
  broadcastSigned (bytes: Uint8Array, fresh: readonly number[]): void {
    for (const i of fresh) this.#download?.setAvailable(i)
    this.#neighbours.broadcast({ type: 'signed', bytes })
  }

  /**
   * Tells neighbours this node now holds `indexes`, got without the download. On a seeder, peers are told
   * only what its policy reveals to each (other seeders are told everything); the rest hear of it from
   * those peers.
   */
  announceHave (indexes: number[]): void {
    // Got from the origin or a twin file: an HA seeder's download must not fetch them again from the swarm.
    for (const i of indexes) this.#download?.gained(i)
    const gate = this.#init.gate
    if (gate === undefined) this.#neighbours.announce(indexes)
    else {
      const now = this.#now()
      this.#tell(indexes.flatMap(index => gate.pulled(index, now)), indexes)
    }
    this.emit('progress')
  }

  /**
   * A seeder's version is whole: once every chunk held back has been taken by a peer (SeederGate#allDue),
   * every peer is told of every chunk.
   */
  revealAll (): void {
    this.#init.gate?.whole()
    this.#revealDue()
  }

  /** A seeder's HAVEs due now (SeederGate#dueReveals), or all of them. */
  #revealDue (): void {
    const gate = this.#init.gate
    if (gate === undefined) return
    const due = gate.dueReveals(this.#now())
    if (due.length > 0) this.#tell(due, [])
    if (!gate.allDue()) return
    // As a HAVE list (4 bytes a chunk), not a second bitfield, which a host's picker takes as a new peer.
    const indexes = [...this.store.have.setIndexes()]
    for (const s of this.#neighbours.all()) if (s.remoteRole === 'peer') s.send({ type: 'have', indexes })
  }

  /** HAVEs as a seeder's policy revealed them; `all` to other seeders. */
  #tell (reveals: readonly Reveal[], all: number[]): void {
    const byPeer = new Map<string, number[]>()
    for (const { index, peers } of reveals) {
      for (const p of peers) {
        const mine = byPeer.get(p)
        if (mine === undefined) byPeer.set(p, [index])
        else mine.push(index)
      }
    }
    for (const s of this.#neighbours.all()) {
      const indexes = s.remoteRole === 'seeder' ? all : byPeer.get(s.peerKey)
      if (indexes !== undefined && indexes.length > 0) s.send({ type: 'have', indexes })
    }
  }

  /**
   * Upload admission for one chunk request from `peer`; a promise when the request waits for an upload slot.
   * `held`: the chunks the requester says it holds (bulk requests), else what its HAVEs told us.
   */
  serve (peer: string, index: number, failedHolders: readonly string[] = [], urgent = false, held?: number): ServeDecision | Promise<ServeDecision> {
    let admitted: ((d: ServeDecision) => void) | undefined
    const later = new Promise<ServeDecision>(resolve => { admitted = resolve })
    // A seeder serving another is not super-seeding: the gate would mark the chunk pending to it and
    // send hosts there for pendingMs, and each seeder would refer hosts to the other.
    const d = this.#uploads.serve(peer, index, { failedHolders, admitted, gated: !this.#seederNeighbours.has(peer), urgent, held })
    return d.status === 'queued' ? later : d
  }

  #onJoin (session: Session): void {
    delete this.reports.get(session.peerKey)?.ended
    if (session.remoteRole === 'seeder') this.#seederNeighbours.add(session.peerKey)
    for (const bytes of this.meta.signedItems()) session.send({ type: 'signed', bytes })
    const gate = this.#init.gate
    const bits = gate !== undefined && session.remoteRole === 'peer' ? gate.bitfieldFor(this.store.have) : this.store.have
    session.send({ type: 'bitfield', bytes: bits.bytes.slice() })
    if (this.#init.bulk !== undefined) session.send({ type: 'bulk', grant: this.#init.bulk.grant(session.peerKey) })
    // The seeder sees the whole swarm: it tells each newcomer whom to trade with.
    if (gate !== undefined) {
      void this.#neighbours.hintsFor(session.peerKey).then(peers => { if (peers.length > 0) session.send({ type: 'peers', peers }) })
    }
  }

  #onLeave (session: Session, err: Error | undefined): void {
    const report = this.reports.get(session.peerKey)
    if (report !== undefined) report.ended = { at: this.#now(), unresponsive: unresponsive(err) }
    this.#seederNeighbours.delete(session.peerKey)
    this.#discovery.neighbourLost()
    this.#download?.peerLeft(session.peerKey)
    this.#init.gate?.peerGone(session.peerKey)
  }

  async #onMessage (session: Session, m: SessionMessage): Promise<void> {
    const key = session.peerKey
    switch (m.type) {
      case 'signed': {
        // The publisher signs; everyone else verifies before believing or relaying.
        if (this.#init.trust === undefined) return
        const fresh = await this.meta.addSigned(m.bytes, this.#init.trust)
        if (fresh.length === 0) return
        await this.store.recordHashes(fresh.map(i => [i, this.meta.hashOf(i)!] as const))
        for (const i of fresh) this.#download?.setAvailable(i)
        this.#neighbours.broadcast(m, session)
        return
      }
      case 'bitfield': {
        const bits = new Bitfield(this.store.layout.count, m.bytes)
        for (const i of bits.setIndexes()) session.bits.set(i)
        this.#download?.peerBitfield(session, session.bits)
        // Another seeder is no holder to send hosts to: two seeders would refer hosts to each other.
        if (session.remoteRole === 'peer' && this.#init.gate !== undefined) {
          this.#init.gate.peerBitfield(key, session.bits)
          this.#revealDue()
        }
        return
      }
      case 'have':
        for (const i of m.indexes) {
          if (i >= this.store.layout.count) throw new ProtocolError(`HAVE for chunk ${i} of ${this.store.layout.count}`)
          session.bits.set(i)
          this.#download?.peerHas(key, i)
          if (session.remoteRole === 'peer') this.#init.gate?.peerHas(key, i)
        }
        // A chunk a peer now holds may let a held-back one go out.
        if (session.remoteRole === 'peer') this.#revealDue()
        this.#download?.schedule()
        return
      case 'peers':
        for (const hint of m.peers) if (this.#neighbours.wantMore()) void this.#neighbours.connect(hint)
        return
      case 'report': {
        // Where the host is reached: its address beside its name for the operator's view.
        const address = this.#init.components.getConnections(session.peer)[0]?.remoteAddr
        this.reports.set(key, { ...m.report, at: this.#now(), ...(address === undefined ? {} : { address: ipOf(address) }) })
        return
      }
      case 'bulk': {
        // A node run with the bulk path off neither serves nor uses it.
        if (this.#init.bulk === undefined) return
        // Dial the bulk endpoint at an IP the neighbour listens on (Neighbours#dialable), else at the one its
        // connection comes from. That source IP need not be one it listens on: on loopback, hosts listening
        // on 127.0.0.2–17 dial out from 127.0.0.1, and 25 of 246 sessions fell back to libp2p streams (N = 16).
        const listening = (await this.#neighbours.dialable(session.peer)).map(a => ipOf(multiaddr(a))).find(ip => ip !== undefined)
        const remote = this.#init.components.getConnections(session.peer)[0]?.remoteAddr
        const host = listening ?? (remote === undefined ? undefined : ipOf(remote))
        if (host !== undefined) {
          session.bulk?.close()
          session.bulk = new BulkClient(host, m.grant)
        }
        return
      }
      case 'corrupt':
        for (const i of m.indexes) if (i < this.store.layout.count) this.emit('corrupt', i, key)
        return
      case 'hello':
        throw new ProtocolError('second hello')
    }
  }

  /** Over the neighbour's TLS bulk endpoint when it granted one, else over a libp2p stream. */
  async #fetchChunk (session: Session, req: ChunkRequest, signal: AbortSignal): Promise<ChunkResponse> {
    const bulk = session.bulk
    if (bulk === undefined) return requestChunk(this.#init.components, session.peer, req, this.#opts.requestIdleMs, signal)
    try {
      return await bulk.request(req, this.#opts.requestIdleMs, signal)
    } catch (err) {
      // An endpoint we cannot reach (firewalled port) is given up for this neighbour; libp2p still works.
      if (!signal.aborted && bulk.connectFailed && session.bulk === bulk) {
        this.#log.bulkUnreachable(session.peerKey, err as Error)
        bulk.close()
        session.bulk = undefined
      }
      throw err
    }
  }

  #ban (session: Session, err: IntegrityError): void {
    if (!this.#neighbours.ban(session, err)) return
    this.stats.banned.push(session.peerKey)
    this.#init.bulk?.revoke(session.peerKey)
  }

  #tick (): void {
    if (this.#closed) return
    this.#revealDue()
    this.#download?.tick(this.#now())
    this.#report()
    const discover = this.#discover
    const wanted = this.#download !== undefined && !this.store.have.complete && this.#neighbours.wantMore()
    if (wanted && discover !== undefined && this.#discovery.due(this.#now())) {
      this.#discovery.begin(this.#neighbours.size)
      const round = async (): Promise<void> => {
        const dials: Array<Promise<void>> = []
        for (const h of await discover(this.#discovery.fruitless)) if (this.#neighbours.wantMore()) dials.push(this.#neighbours.connect(h))
        await Promise.all(dials)
      }
      round().catch(() => {}).finally(() => { this.#discovery.end(this.#neighbours.size, this.#now()) })
    }
  }

  /** Sends this node's progress to the seeders among its neighbours. */
  #report (): void {
    // A seeder fetching from another (HA) is no host: it stays out of the others' host counts.
    if (this.#download === undefined || this.role === 'seeder') return
    const report = this.#download.report(this.stats)
    for (const s of this.#neighbours.all()) if (s.remoteRole === 'seeder') s.send({ type: 'report', report })
  }
}

/**
 * Whether a session ended because the neighbour stopped answering rather than hanging up: libp2p's
 * connection monitor aborts a connection whose ping times out (a frozen process, or a host cut off from
 * the network: the kernel of a killed process closes its sockets instead), and an idle read times out.
 */
export function unresponsive (err: Error | undefined): boolean {
  return err?.name === 'TimeoutError'
}
