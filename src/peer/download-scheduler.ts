/**
 * The download side of one version's swarm on a peer: it alone owns the piece picker, and turns its
 * picks into chunk requests within a memory budget, verifies and writes what arrives, bans peers that
 * send bad bytes, times out requests that stall, and says why when nothing arrives. A seeder has none.
 *
 * The clock and the Rng are passed in and the neighbours and transports are interfaces, so the
 * scheduler runs under a mock clock in unit tests and in the simulator.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { hostname } from 'node:os'
import type { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { IntegrityError } from '../errors.ts'
import { BufferPool } from '../util/buffer-pool.ts'
import type { Rng } from '../util/random.ts'
import { PiecePicker } from './piece-picker.ts'
import type { ChunkRequest, ChunkResponse } from './protocols/chunk/codec.ts'
import type { ProgressReport, Role, SessionMessage } from './protocols/session/codec.ts'
import type { SwarmLog } from './swarm-log.ts'

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
  wantMore: () => boolean
  connect: (peer: PeerId) => Promise<void>
  broadcast: (m: SessionMessage) => void
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

/** Requests in flight to one peer, and in all, whatever their size: bounds per-request overhead for tiny chunks. */
const MAX_REQUESTS_PER_PEER = 64
const MAX_REQUESTS = 256
/** How soon a peer that answered busy is asked again for that chunk. */
const BUSY_RETRY_MS = 250

export class DownloadScheduler<N extends Neighbour> {
  readonly #init: DownloadSchedulerInit<N>
  readonly #picker: PiecePicker
  readonly #buffers: BufferPool
  /** Requests in flight, by `peer/index`. */
  readonly #requests = new Map<string, AbortController>()
  /** Per chunk, non-seeder peers whose request for it failed: told to seeders so they stop naming them. */
  readonly #failedHolders = new Map<number, Set<string>>()
  /** Holders a seeder's refusal named, not yet reached: peer → the chunks and who named it for them. */
  readonly #hinted = new Map<string, Array<{ index: number, seeder: string }>>()
  /** Chunks received and being verified and written; their buffers count against the memory budget. */
  #writing = 0
  /** Bytes of chunks requested and not yet written (in flight or being written), in all and per peer. */
  #bytesInFlight = 0
  #haves: number[] = []
  #lastReport = { at: 0, bytesDown: 0 }
  readonly #peerBytes = new Map<string, number>()
  #lastProgressAt: number
  #stalledReason: string | undefined
  #scheduled = false
  #closed = false
  #finalizing: Promise<void> | undefined

  constructor (init: DownloadSchedulerInit<N>) {
    this.#init = init
    const { store } = init
    this.#buffers = new BufferPool(store.header.chunkSize, this.#budget)
    this.#picker = new PiecePicker({ numChunks: store.layout.count, have: store.have, rng: init.rng })
    for (const i of init.known.setIndexes()) this.#picker.setAvailable(i)
    this.#lastProgressAt = init.now()
    this.#lastReport = { at: init.now(), bytesDown: 0 }
  }

  get stalledReason (): string | undefined { return this.#stalledReason }

  /** Chunks received at once, at most: the memory budget in whole chunks, at least two. */
  get #budget (): number {
    return Math.max(2, Math.floor(this.#init.options.maxBufferedBytes / this.#init.store.header.chunkSize))
  }

  /**
   * Room for more requests to a peer that has `peerBytes` in flight. Budgets are in bytes (a chunk's real
   * length; a file's last chunk, or a small file's only one, is short), counted for a new request as a
   * full chunk since what the picker will choose is unknown: a version of 5,000 files of 1–4 KiB kept
   * only 4 tiny requests in flight at a time and took 45 × as long as the same bytes in one file.
   */
  #room (peerBytes: number, peerCount: number): number {
    const { maxRequestsPerPeer, maxBufferedBytes } = this.#init.options
    const size = this.#init.store.header.chunkSize
    const total = Math.max(maxBufferedBytes, 2 * size)
    return Math.max(0, Math.min(
      Math.floor((maxRequestsPerPeer * size - peerBytes) / size),
      Math.floor((total - this.#bytesInFlight) / size),
      MAX_REQUESTS_PER_PEER - peerCount,
      MAX_REQUESTS - this.#requests.size - this.#writing
    ))
  }

  /** The chunk's hash is now known (signed metadata arrived). */
  setAvailable (index: number): void {
    this.#picker.setAvailable(index)
    this.schedule()
  }

  /** Reorders requests: chunks with a higher priority are asked for first (see PiecePicker.setPriority). */
  setPriority (index: number, priority: number): void {
    this.#picker.setPriority(index, priority)
    this.schedule()
  }

  /** A neighbour's full bitfield. */
  peerBitfield (from: N, bits: Bitfield): void {
    this.#hinted.delete(from.peerKey)
    this.#picker.addPeer(from.peerKey, bits, { seeder: from.remoteRole === 'seeder' })
    this.schedule()
  }

  /** A HAVE from a neighbour. */
  peerHas (peer: string, index: number): void {
    this.#picker.peerHas(peer, index)
  }

  /** A neighbour left: its requests go back to the pool. */
  peerLeft (peer: string): void {
    for (const index of this.#picker.removePeer(peer)) this.#cancel(peer, index)
    this.schedule()
  }

  /**
   * A holder a seeder pointed us to cannot be dialed. It counts as failed for those chunks, so the next
   * request tells the seeder, which then serves them itself (its policy's first rule), and the seeder
   * may be asked again at once rather than after the refusal's back-off.
   */
  holderUnreachable (peer: string): void {
    for (const { index, seeder } of this.#hinted.get(peer) ?? []) {
      const set = this.#failedHolders.get(index) ?? new Set()
      set.add(peer)
      this.#failedHolders.set(index, set)
      this.#picker.unblock(seeder, index)
    }
    this.#hinted.delete(peer)
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
    for (const r of this.#picker.timedOut(now, () => this.#init.options.requestIdleMs * 2)) {
      this.#cancel(r.peer, r.index)
      this.#picker.requestFailed(r.peer, r.index, now)
    }
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
    const now = this.#init.now()
    // Rotate the starting neighbour so no one peer always gets first pick.
    const sessions = this.#init.neighbours.all()
    const start = sessions.length > 0 ? Math.floor(this.#init.rng() * sessions.length) : 0
    for (let k = 0; k < sessions.length; k++) {
      const s = sessions[(start + k) % sessions.length]!
      const free = this.#room(this.#peerBytes.get(s.peerKey) ?? 0, this.#picker.peerStats(s.peerKey)?.inflight ?? 0)
      if (free > 0) for (const index of this.#picker.pick(s.peerKey, free, now)) void this.#request(s, index)
    }
  }

  /** Counts a chunk's bytes against the memory budgets (+1) or releases them (−1). */
  #account (peer: string, index: number, sign: 1 | -1): void {
    const n = sign * this.#init.store.layout.length[index]!
    this.#bytesInFlight += n
    this.#peerBytes.set(peer, (this.#peerBytes.get(peer) ?? 0) + n)
  }

  async #request (from: N, index: number): Promise<void> {
    const { store, stats, log } = this.#init
    const key = from.peerKey
    const reqKey = `${key}/${index}`
    const ctl = new AbortController()
    this.#requests.set(reqKey, ctl)
    this.#account(key, index, 1)
    let res: ChunkResponse
    try {
      res = await this.#init.fetchChunk(from, {
        headerId: this.#init.headerId,
        index,
        length: store.layout.length[index]!,
        onBytes: n => { stats.bytesDown += n },
        alloc: n => this.#buffers.take(n),
        failedHolders: from.remoteRole === 'seeder' ? [...this.#init.neighbours.banned, ...this.#failedHolders.get(index) ?? []] : undefined
      }, ctl.signal)
    } catch (err) {
      if (!ctl.signal.aborted) {
        this.#holderFailed(from, index)
        this.#picker.requestFailed(key, index, this.#init.now())
        log.chunkRequestFailed(key, index, err as Error)
      }
      this.#account(key, index, -1)
      return
    } finally {
      if (this.#requests.get(reqKey) === ctl) this.#requests.delete(reqKey)
      this.schedule()
    }
    if (ctl.signal.aborted || res.status !== 'ok') this.#account(key, index, -1)
    if (ctl.signal.aborted) return
    const now = this.#init.now()
    if (res.status !== 'ok') {
      if (res.status === 'missing') this.#holderFailed(from, index)
      // A busy peer is asked again soon: it only had no upload slot free this instant.
      this.#picker.requestFailed(key, index, now, { refused: res.status !== 'missing', retryAfterMs: res.status === 'busy' ? BUSY_RETRY_MS : undefined })
      if (res.status === 'refused') {
        for (const h of res.holders) {
          this.#hinted.set(h, [...this.#hinted.get(h) ?? [], { index, seeder: key }])
          if (this.#init.neighbours.wantMore()) void this.#init.neighbours.connect(peerIdFromString(h))
        }
      }
      return
    }
    // The request slot is free again (scheduled above) while the chunk is verified and written.
    this.#picker.requestDone(key, index, res.data.length, now)
    this.#writing++
    try {
      // False: another copy of the chunk (an endgame duplicate) was written first; that one was counted.
      if (await store.writeChunk(index, res.data, res.digest)) this.#onVerified(index, key)
      else stats.duplicates++
    } catch (err) {
      if (err instanceof IntegrityError) {
        this.#picker.requestFailed(key, index, now)
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
        this.#init.events.fatal(err as Error)
      }
    } finally {
      this.#writing--
      this.#account(key, index, -1)
      this.#buffers.give(res.data)
      this.schedule()
    }
  }

  #holderFailed (from: N, index: number): void {
    if (from.remoteRole === 'seeder') return
    const set = this.#failedHolders.get(index) ?? new Set()
    set.add(from.peerKey)
    this.#failedHolders.set(index, set)
  }

  #onVerified (index: number, from: string): void {
    const { store, stats, events } = this.#init
    this.#failedHolders.delete(index)
    stats.chunksDown++
    this.#lastProgressAt = this.#init.now()
    this.#setStalled(undefined)
    for (const c of this.#picker.markHave(index)) this.#cancel(c.peer, c.index)
    this.#announce(index)
    events.chunk(index, from)
    if (store.have.complete && this.#finalizing === undefined) {
      this.#finalizing = store.finalize().then(() => {
        this.#init.log.downloadComplete(store.layout.count, store.layout.totalSize)
        events.complete()
      })
    }
  }

  /** HAVEs of chunks verified in the same turn of the event loop go out as one message (small files make many). */
  #announce (index: number): void {
    if (this.#haves.length === 0) {
      setImmediate(() => {
        const indexes = this.#haves
        this.#haves = []
        this.#init.neighbours.broadcast({ type: 'have', indexes })
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
