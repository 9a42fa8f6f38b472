/**
 * The download side of one version's swarm on a peer: it carries out what its DownloadPlanner (the sole
 * owner of the piece picker) decides — chunk requests within the memory budget, what a refusal, a busy
 * answer or a timeout leads to — verifies and writes what arrives, bans peers that send bad bytes, and
 * says why when nothing arrives. A seeder has none.
 *
 * The clock and the Rng are passed in and the neighbours and transports are interfaces, so the
 * scheduler runs under a mock clock in unit tests and in the simulator.
 */
import type { PeerId } from '@libp2p/interface'
import { hostname } from 'node:os'
import type { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { IntegrityError } from '../errors.ts'
import { BufferPool } from '../util/buffer-pool.ts'
import type { Rng } from '../util/random.ts'
import { dialNamedHolders, DownloadPlanner, receiveBudgetBytes } from './download-planner.ts'
import { SlowPeers, type SlowPeerOptions } from './slow-peer.ts'
import type { ChunkRequest, ChunkResponse } from './protocols/chunk/codec.ts'
import type { PeerHint, ProgressReport, Role } from './protocols/session/codec.ts'
import type { ChunkRequestOutcome, SwarmLog } from './swarm-log.ts'

/** What the scheduler needs to know of a neighbour. */
export interface Neighbour {
  readonly peer: PeerId
  readonly peerKey: string
  readonly remoteRole: Role
}

/** The neighbours it schedules over (src/peer/neighbours.ts). */
export interface NeighbourSet<N extends Neighbour> {
  all: () => N[]
  readonly size: number
  /** Below the neighbour limit, or `extra` above it. */
  wantMore: (extra?: number) => boolean
  /** Never rejects: a hint naming no valid peer id is logged and dropped. */
  connect: (peer: PeerHint | PeerId) => Promise<void>
  /** HAVEs of chunks this node now holds (Neighbours#announce). */
  announce: (indexes: number[]) => void
  /** Peers banned so far: seeders are told, so they stop naming them. */
  readonly banned: ReadonlySet<string>
}

export interface SchedulerOptions {
  /** Concurrent chunk requests to one peer. */
  maxRequestsPerPeer: number
  /** Memory for chunks being received (each is verified whole before it is written; at least two chunks), in bytes. */
  maxBufferedBytes: number
  /** Abort a request when no byte arrives for this long, in ms. */
  requestIdleMs: number
  /** Declare the download stalled after this long without a verified chunk, in ms. */
  stallAfterMs: number
  /** When a staller or trickler is routed around (slow-peer.ts); its defaults otherwise. */
  slowPeers?: SlowPeerOptions
}

/** `chunksDown` counts chunks this download verified and wrote; `duplicates` second copies that arrived after (endgame). */
export interface DownloadStats { bytesDown: number, chunksDown: number, rejected: number, duplicates: number }

export interface SchedulerEvents {
  chunk: (index: number, from: string) => void
  complete: () => void
  stalled: (reason: string) => void
  /** A local failure (disk full, I/O error) that ends the download. */
  fatal: (err: Error) => void
}

export interface DownloadSchedulerInit<N extends Neighbour> {
  headerId: string
  store: ChunkStore
  /** Chunks whose hash the swarm has published so far. */
  known: Bitfield
  neighbours: NeighbourSet<N>
  /** Moves one chunk from a neighbour (bulk path or libp2p stream). */
  fetchChunk: (from: N, req: ChunkRequest, signal: AbortSignal) => Promise<ChunkResponse>
  /** A peer sent bytes that failed verification. */
  ban: (from: N, err: IntegrityError) => void
  /** A seeder sent bytes that failed verification: tell it, so it re-checks its copy. */
  reportCorrupt: (from: N, index: number) => void
  now: () => number
  rng: Rng
  log: SwarmLog
  options: SchedulerOptions
  stats: DownloadStats
  events: SchedulerEvents
}

export class DownloadScheduler<N extends Neighbour> {
  readonly #init: DownloadSchedulerInit<N>
  readonly #plan: DownloadPlanner
  readonly #buffers: BufferPool
  /** Requests in flight, by `peer/index`. */
  readonly #requests = new Map<string, AbortController>()
  readonly #slow: SlowPeers
  /** Each neighbour's bitfield as last given (HAVEs applied), to add a paused peer back when its pause ends. */
  readonly #bits = new Map<string, { bits: Bitfield, seeder: boolean }>()
  #haves: number[] = []
  #lastReport = { at: 0, bytesDown: 0 }
  #lastProgressAt: number
  #stalledReason: string | undefined
  #scheduled = false
  #closed = false
  #finalizing: Promise<void> | undefined

  constructor (init: DownloadSchedulerInit<N>) {
    this.#init = init
    const { store } = init
    this.#buffers = new BufferPool(store.header.chunkSize, this.#budget)
    this.#plan = new DownloadPlanner({
      chunkSize: store.header.chunkSize, lengths: store.layout.length, have: store.have, known: init.known, rng: init.rng, options: init.options
    })
    this.#slow = new SlowPeers(init.options.slowPeers)
    this.#lastProgressAt = init.now()
    this.#lastReport = { at: init.now(), bytesDown: 0 }
  }

  get stalledReason (): string | undefined { return this.#stalledReason }

  /** Chunks received at once, at most: the receive budget (receiveBudgetBytes) in whole chunks. */
  get #budget (): number {
    const size = this.#init.store.header.chunkSize
    return Math.floor(receiveBudgetBytes(this.#init.options.maxBufferedBytes, size) / size)
  }

  /** The chunk's hash is now known (signed metadata arrived). */
  setAvailable (index: number): void {
    this.#plan.setAvailable(index)
    this.schedule()
  }

  /** Reorders requests: chunks with a higher priority are asked for first (see PiecePicker.setPriority). */
  setPriority (index: number, priority: number): void {
    this.#plan.setPriority(index, priority)
    this.schedule()
  }

  /** The store got chunk `index` without this download (DownloadPlanner#gained): requests for it are aborted. */
  gained (index: number): void {
    // Announced a while after it was written (hashes are signed in batches): it may have been dropped since.
    if (!this.#init.store.have.has(index)) return
    for (const r of this.#plan.gained(index)) this.#cancel(r.peer, r.index)
  }

  /**
   * Chunk `index` was held and no longer is: its copy on disk failed a re-check and was dropped
   * (ChunkStore.verifyHeld). It is fetched again from whoever holds it. A download that had completed
   * does not complete (nor finalize) a second time: the store's repair ends when the chunk is written.
   */
  lost (index: number): void {
    this.#plan.lost(index)
    this.schedule()
  }

  /** A neighbour's full bitfield. */
  peerBitfield (from: N, bits: Bitfield): void {
    const seeder = from.remoteRole === 'seeder'
    this.#bits.set(from.peerKey, { bits, seeder })
    // A paused peer is added back when its pause ends.
    if (!this.#slow.paused(from.peerKey, this.#init.now())) this.#plan.peerJoined(from.peerKey, bits, seeder)
    this.schedule()
  }

  /** A HAVE from a neighbour. */
  peerHas (peer: string, index: number): void {
    this.#bits.get(peer)?.bits.set(index)
    this.#plan.peerHas(peer, index)
  }

  /** A neighbour left: its requests go back to the pool. */
  peerLeft (peer: string): void {
    this.#bits.delete(peer)
    this.#slow.forget(peer)
    for (const index of this.#plan.peerLeft(peer)) this.#cancel(peer, index)
    this.schedule()
  }

  /** A holder a seeder pointed us to cannot be dialed (DownloadPlanner#holderUnreachable). */
  holderUnreachable (peer: string): void {
    this.#plan.holderUnreachable(peer)
    this.schedule()
  }

  /** Fills free request slots soon (once per turn of the event loop however often it is asked). */
  schedule (): void {
    if (this.#scheduled || this.#closed || this.#init.store.have.complete) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#fillRequests()
    })
  }

  /** Periodic housekeeping at time `now`: request timeouts and stall diagnosis. */
  tick (now: number): void {
    if (this.#closed) return
    for (const r of this.#plan.timedOut(now)) this.#cancel(r.peer, r.index)
    this.#routeAroundSlowPeers(now)
    if (!this.#init.store.have.complete && now - this.#lastProgressAt > this.#init.options.stallAfterMs) this.#setStalled(this.#diagnose())
    this.schedule()
  }

  /** This node's progress, for the seeders' view of the swarm; the rate is over the time since the last report. */
  report (stats: { bytesDown: number, bytesUp: number }): ProgressReport {
    const { have } = this.#init.store
    const now = this.#init.now()
    const rateDown = now > this.#lastReport.at ? (stats.bytesDown - this.#lastReport.bytesDown) * 1000 / (now - this.#lastReport.at) : 0
    this.#lastReport = { at: now, bytesDown: stats.bytesDown }
    return {
      have: have.count,
      total: this.#init.store.layout.count,
      bytesDown: stats.bytesDown,
      bytesUp: stats.bytesUp,
      rateDown: Math.max(0, Math.round(rateDown)),
      hostname: hostname(),
      state: have.complete ? 'seeding' : this.#stalledReason !== undefined ? 'stalled' : 'downloading',
      ...(this.#stalledReason !== undefined ? { reason: this.#stalledReason } : {})
    }
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const c of this.#requests.values()) c.abort(new Error('swarm closing'))
    await this.#finalizing?.catch(() => {})
  }

  #fillRequests (): void {
    const byKey = new Map(this.#init.neighbours.all().map(s => [s.peerKey, s]))
    for (const r of this.#plan.fill([...byKey.keys()], this.#init.now())) void this.#request(byKey.get(r.peer)!, r.index)
  }

  async #request (from: N, index: number): Promise<void> {
    const { store, stats, log } = this.#init
    const key = from.peerKey
    const reqKey = `${key}/${index}`
    const ctl = new AbortController()
    this.#requests.set(reqKey, ctl)
    const startedAt = this.#init.now()
    this.#slow.started(key, startedAt)
    const urgent = this.#plan.isUrgent(index)
    let firstByteAt: number | undefined
    let got = 0
    const ended = (outcome: ChunkRequestOutcome): void => {
      log.chunkRequestEnded({ peer: key, index, urgent, outcome, startedAt, firstByteAt, endedAt: this.#init.now(), bytes: got })
    }
    let res: ChunkResponse
    try {
      res = await this.#init.fetchChunk(from, {
        headerId: this.#init.headerId,
        index,
        length: store.layout.length[index]!,
        onBytes: n => {
          const now = this.#init.now()
          firstByteAt ??= now
          got += n
          stats.bytesDown += n
          this.#slow.bytes(key, n, now)
        },
        alloc: n => this.#buffers.take(n),
        urgent,
        // The uploader serves those furthest behind first (upload-admission.ts).
        held: store.have.count,
        failedHolders: from.remoteRole === 'seeder'
          ? [...this.#init.neighbours.banned, ...this.#plan.failedHoldersFor(index), ...this.#slow.pausedPeers(this.#init.now())]
          : undefined
      }, ctl.signal)
    } catch (err) {
      ended(ctl.signal.aborted ? 'aborted' : 'failed')
      if (ctl.signal.aborted) this.#plan.released(key, index)
      else {
        this.#plan.failed(key, index, this.#init.now())
        log.chunkRequestFailed(key, index, err as Error)
      }
      return
    } finally {
      this.#slow.ended(key)
      if (this.#requests.get(reqKey) === ctl) this.#requests.delete(reqKey)
      this.schedule()
    }
    ended(ctl.signal.aborted ? 'aborted' : res.status)
    if (ctl.signal.aborted) {
      this.#plan.released(key, index)
      return
    }
    const now = this.#init.now()
    if (res.status !== 'ok') {
      const { neighbours } = this.#init
      dialNamedHolders(this.#plan.answered(key, index, res, now), from.remoteRole === 'seeder', {
        wantMore: extra => neighbours.wantMore(extra),
        isNeighbour: h => neighbours.all().some(n => n.peerKey === h),
        dial: h => { void neighbours.connect({ id: h, addrs: [] }) }
      })
      // Nothing else may free a slot for the busy peer's chunks: look again when its back-off ends.
      if (res.status === 'busy') setTimeout(() => this.schedule(), this.#plan.busyRetryMs).unref()
      return
    }
    // The request slot is free again (scheduled above) while the chunk is verified and written.
    this.#plan.received(key, index, res.data.length, now)
    try {
      const fresh = await store.writeChunk(index, res.data, res.digest)
      const others = this.#plan.written(key, index)
      // Not fresh: another copy of the chunk (an endgame duplicate) was written first; that one was counted.
      if (fresh) this.#onVerified(index, key, others)
      else stats.duplicates++
    } catch (err) {
      if (err instanceof IntegrityError) {
        this.#plan.rejected(key, index, now)
        stats.rejected++
        if (from.remoteRole !== 'seeder') this.#init.ban(from, new IntegrityError(`chunk ${index} failed verification`))
        else {
          // A seeder's copy rotted (disk, memory): it is told and repairs it, and stays a source for the
          // rest. With nobody else to ask, waiting out --timeout helps no one: fail now, naming both.
          this.#init.reportCorrupt(from, index)
          if (this.#init.neighbours.size <= 1) {
            this.#init.events.fatal(new IntegrityError(`chunk ${index} from seeder ${key}, the only source, failed verification (SHA-256 mismatch); the seeder was told and checks its copy — rerun to fetch it again`))
          }
        }
      } else {
        // Not the peer's fault (disk full, I/O error): the download cannot go on.
        this.#plan.released(key, index, true)
        this.#init.events.fatal(err as Error)
      }
    } finally {
      this.#buffers.give(res.data)
      this.schedule()
    }
  }

  /** `duplicates` are the other requests for the chunk still in flight (endgame), to abort. */
  #onVerified (index: number, from: string, duplicates: ReadonlyArray<{ peer: string, index: number }>): void {
    const { store, stats, events } = this.#init
    stats.chunksDown++
    this.#lastProgressAt = this.#init.now()
    this.#setStalled(undefined)
    for (const c of duplicates) this.#cancel(c.peer, c.index)
    this.#announce(index)
    events.chunk(index, from)
    if (store.have.complete && this.#finalizing === undefined) {
      this.#finalizing = store.finalize().then(() => {
        this.#init.log.downloadComplete(store.layout.count, store.layout.totalSize)
        events.complete()
      }, err => events.fatal(err as Error))
    }
  }

  /**
   * Pauses neighbours that stall or trickle while others deliver (slow-peer.ts): each leaves the planner,
   * so its requests go back to the pool for other holders (the seeder too, if nobody else holds them), and
   * joins again with its bitfield when its pause ends.
   */
  #routeAroundSlowPeers (now: number): void {
    const { routeAround, resume } = this.#slow.check(now, this.#init.neighbours.size)
    for (const v of routeAround) {
      this.#init.log.peerRoutedAround(v)
      // Seeders that refused chunks naming it are asked again at once, and told it failed (peerLeft).
      for (const index of this.#plan.peerLeft(v.peer)) this.#cancel(v.peer, index)
    }
    for (const peer of resume) {
      const known = this.#bits.get(peer)
      if (known !== undefined) this.#plan.peerJoined(peer, known.bits, known.seeder)
    }
  }

  /** HAVEs of chunks verified in the same turn of the event loop go out as one message (small files make many). */
  #announce (index: number): void {
    if (this.#haves.length === 0) {
      setImmediate(() => {
        const indexes = this.#haves
        this.#haves = []
        this.#init.neighbours.announce(indexes)
      })
    }
    this.#haves.push(index)
  }

  #cancel (peer: string, index: number): void {
    const key = `${peer}/${index}`
    const ctl = this.#requests.get(key)
    if (ctl !== undefined) {
      this.#requests.delete(key)
      ctl.abort(new Error('duplicate no longer needed'))
    }
  }

  #setStalled (reason: string | undefined): void {
    if (reason === this.#stalledReason) return
    this.#stalledReason = reason
    const { store, log } = this.#init
    if (reason !== undefined) {
      log.downloadStalled(reason, store.have.count, store.layout.count)
      this.#init.events.stalled(reason)
    } else log.downloadProgressing()
  }

  /** Says why no chunk arrives, in words an operator can act on. */
  #diagnose (): string {
    const { neighbours, known, store } = this.#init
    if (neighbours.size === 0) return 'no neighbours: no seeder or peer reachable (check --bootstrap and the network)'
    if (known.count === store.have.count) return 'waiting for the seeder to publish more chunks (it is still pulling from the origin)'
    return `${neighbours.size} neighbours but none serves the missing chunks (refused, busy or timing out)`
  }
}
