/**
 * Upload admission for one version: whether to serve a chunk request now, and the bookkeeping of what
 * was served. Every node uploads what it holds, up to `maxUploads` at once and `maxUploadsPerPeer` to one
 * requester; a request that finds the slots taken waits in a short queue (`queue`) and is answered busy
 * only when that is full too — or when a requester far behind it takes its place (`held`, DISPLACE_MARGIN).
 * As slots free, urgent requests go first, then the requester holding fewest chunks (#next). A seeder also
 * asks its upload gate (super-seeding, src/seeder/upload-policy.ts), which may refuse and name holders instead. The swarm
 * simulator (src/sim/host-model.ts) admits its uploads here too.
 *
 * Why a queue and one upload per requester (simulated, npm run simulate, docs/simulator.md; N = 16,
 * 64 MiB in 256 KiB chunks, lab rates, seeds 1–6): answering busy at once 1.36 × the bound, a queue of 2
 * 1.26 ×, a queue of 2 and one upload per requester 1.16 ×. A busy answer costs the requester a round trip
 * and a 250 ms back-off while the uploader's link may go idle; the queue keeps the link fed, and serving
 * each requester one chunk at a time gives each chunk the whole link, so it arrives — and can be
 * forwarded — sooner.
 */
import type { Bitfield } from '../chunker/bitfield.ts'
import type { ChunkStore } from '../chunker/chunk-store.ts'
import { take, type TokenBucket } from '../util/token-bucket.ts'
import type { ServeDecision } from './protocols/chunk/codec.ts'

/** The seeder's say over its own upload (src/seeder/upload-policy.ts implements it). */
export interface UploadGate {
  decide: (peer: string, index: number, now: number, failedHolders: readonly string[]) => { serve: true } | { serve: false, holders: string[] }
  served: (index: number, bytes: number) => void
  /** An upload the gate let through ended, `complete` (every byte sent) or not. */
  uploadEnded: (peer: string, index: number, complete: boolean, now: number) => void
  peerHas: (peer: string, index: number) => void
  peerBitfield: (peer: string, bits: Bitfield) => void
  peerGone: (peer: string) => void
}

/** Upload counters, shared with the swarm's stats. */
export interface UploadStats { bytesUp: number, chunksUp: number }

/** What admission reads of the store: the chunks held, their lengths, their bytes (ChunkStore; the simulator passes its own). */
export interface ServableChunks {
  readonly have: Bitfield
  readonly layout: { readonly count: number, readonly length: ArrayLike<number> }
  readonly header: { readonly chunkSize: number }
  readRange: ChunkStore['readRange']
}

export interface UploadAdmissionInit {
  store: ServableChunks
  gate?: UploadGate
  /** Concurrent uploads. */
  maxUploads: number
  isBanned: (peer: string) => boolean
  now: () => number
  stats: UploadStats
  /** Caps upload bytes per second (`fetch --upload-rate`); may be shared by several swarms of one process. */
  budget?: TokenBucket
  /** Concurrent uploads to one requester. @default unlimited */
  maxUploadsPerPeer?: number
  /** Requests held while the upload slots (or the requester's own) are taken, answered as they free; busy beyond. @default 0 */
  queue?: number
  /**
   * Chunks `peer` holds, as far as this node has heard (its bitfield and HAVEs), for a request that does not
   * say (ServeOptions.held). Without either, a full queue answers busy and slots go first come first served.
   */
  held?: (peer: string) => number
}

export interface ServeOptions {
  /** Peers the requester tried for the chunk in vain. */
  failedHolders?: readonly string[]
  /** Receives the decision of a request that waited for a slot; without it nothing waits (busy). */
  admitted?: Admitted
  /** false skips the gate (another seeder asking: no host to send it to, nothing to mark pending). @default true */
  gated?: boolean
  /** A reader waits on the chunk: ahead of other waiting requests, and the gate does not refuse it. */
  urgent?: boolean
  /**
   * Chunks the requester holds, as it says in its request (chunk/codec.ts), else UploadAdmissionInit.held.
   * A node does not tell a neighbour of chunks that neighbour holds (neighbours.ts, haveFor), so what its
   * HAVEs add up to at an uploader ahead of it is far below what it holds: compared with it, the lab's
   * host furthest behind (N = 16, 256 MiB) held 182 chunks at 100 s against 289 on average and 379 at
   * most, and finished 29 s after the first.
   */
  held?: number
}

/** What a queued request's answer is handed to once it is admitted (never busy). */
export type Admitted = (decision: ServeDecision) => void

/** The decision on arrival; 'queued': it comes later, through the request's `admitted` callback. */
export type AdmissionDecision = ServeDecision | { status: 'queued' }

/**
 * How much more than a newcomer (a fraction of the version's chunks) a queued request's requester must hold
 * for the newcomer to take its place in a full queue. Strictly first come first served, the hosts that
 * asked first kept the uploaders' slots and queues all run — each answer brings their next request — while
 * the rest were answered busy and backed off: in the simulator (N = 16, traced) early hosts downloaded
 * about twice as fast, and at the end the few hosts left could not use the uplinks that had gone idle.
 * Last host ÷ bound, warm / cold (npm run simulate, docs/simulator.md "Displacing who is ahead"): N = 16,
 * 64 MiB, a quarter of the lab rates, seeds 1–6: 1.148 / 1.119 without, 1.093 / 1.085 with no margin,
 * 1.117 / 1.090 with an eighth; N = 32, 32 MiB, an eighth of them, seeds 1–4: 1.208 / 1.166, 1.140 / 1.106,
 * 1.162 / 1.117; N = 1,000, 100 GiB, cold: 1.166, 1.208, 1.168 — with no margin the hosts, all close, turned
 * each other away for little. Seeder egress 1.00·F in all. Serving the waiting requester holding fewest
 * first changed nothing by the counts an uploader heard (1.146 / 1.115 at N = 16 alone); by the counts
 * requests carry, with this margin: N = 16 1.109 / 1.083, N = 32 1.152 / 1.099, N = 1,000 1.152 (a margin of
 * 1/32 gained at N = 16 and 32 and lost at N = 1,000: 1.188; docs/simulator.md, "Who holds what").
 */
const DISPLACE_MARGIN = 1 / 8

/**
 * Times a waiting request may see later ones from requesters holding fewer chunks admitted before it; then
 * it goes first. Without a bound, a host ahead could wait out its request's idle timeout (20 s) while
 * hosts behind kept arriving.
 */
const MAX_PASSED_OVER = 4

/** Uploads at once whatever their size: bounds per-upload overhead when chunks are tiny. */
const MAX_SMALL_UPLOADS = 64

/**
 * Under an upload cap, a request that would wait longer than this for budget is answered busy, so the
 * requester asks another holder instead of idling towards its request timeout (20 s) behind a queue.
 */
const MAX_BUDGET_WAIT_MS = 2000

/** A request waiting for an upload slot; `held` as ServeOptions.held, undefined when unknown. */
interface Waiting {
  peer: string
  index: number
  failedHolders: readonly string[]
  gated: boolean
  urgent: boolean
  held: number | undefined
  /** Later requests admitted before this one (#drain). */
  passedOver: number
  admitted: Admitted
}

/**
 * What a requester holds, as far as admission goes: the count its request says, but never fewer than its
 * HAVEs have shown this node (an honest count is never below that, so claiming fewer gains nothing).
 */
function heldBy (said: number | undefined, heard: number | undefined): number | undefined {
  return said === undefined ? heard : Math.max(said, heard ?? 0)
}

/** Busy answers, told apart by identity: only a request that waits for a slot is queued. */
const SLOTS_TAKEN: ServeDecision = Object.freeze({ status: 'busy' })
const OVER_BUDGET: ServeDecision = Object.freeze({ status: 'busy' })

export class UploadAdmission {
  readonly #init: UploadAdmissionInit
  #uploads = 0
  /** Uploads in progress weighed by their share of a full chunk. */
  #load = 0
  readonly #uploadsTo = new Map<string, number>()
  readonly #queue: Waiting[] = []

  constructor (init: UploadAdmissionInit) {
    this.#init = init
  }

  /** Uploads in progress. */
  get active (): number { return this.#uploads }

  /** Requests waiting for a slot. */
  get queued (): number { return this.#queue.length }

  /**
   * Admission for one chunk request from `peer`; `failedHolders` are peers it tried in vain. Uploads are
   * weighed by size: `maxUploads` full chunks at once, and small chunks (small files) by their share of
   * one, up to MAX_SMALL_UPLOADS at once — what an upload holds is two slices of at most its own length.
   * When the slots are taken and the queue has room (and `admitted` is given), the request waits: the
   * answer is 'queued' and `admitted` receives the decision when a slot frees: urgent requests first come
   * first served, then the requester holding fewest chunks (`held`). A full queue takes it in place of a
   * request from a requester far ahead, answered busy then.
   */
  serve (peer: string, index: number, opts: ServeOptions = {}): AdmissionDecision {
    const { failedHolders = [], admitted, urgent = false } = opts
    // An urgent request (a reader waits on the chunk) is never refused by the gate: sending the reader to
    // holders costs round trips while it waits.
    const gated = (opts.gated ?? true) && !urgent
    // A slot that frees goes to the queue at once (#drain), so a newcomer finds one free only when what
    // waits is held back by its own requester's limit: it need not wait behind that.
    const d = this.#admit(peer, index, failedHolders, gated)
    if (d !== SLOTS_TAKEN || admitted === undefined) return d
    const capacity = this.#init.queue ?? 0
    const entry: Waiting = { peer, index, failedHolders, gated, urgent, held: heldBy(opts.held, this.#init.held?.(peer)), passedOver: 0, admitted }
    // Urgent requests wait ahead of the others, first come first served among themselves, and as many as
    // the others may: beyond that a busy answer sends the reader's request to another holder. (At the head
    // without a limit, 16 hosts reading the same shard queued at one peer and the first waited 26–30 s
    // behind later ones: lab, shard scenario, N = 16.)
    let urgentWaiting = 0
    while (urgentWaiting < this.#queue.length && this.#queue[urgentWaiting]!.urgent) urgentWaiting++
    if (urgent && urgentWaiting < capacity) this.#queue.splice(urgentWaiting, 0, entry)
    else if (!urgent && (this.#queue.length - urgentWaiting < capacity || this.#displace(entry.held, urgentWaiting))) this.#queue.push(entry)
    else return d
    return { status: 'queued' }
  }

  /**
   * Makes room in a full queue for a request from a requester holding `held` chunks: of the waiting requests
   * from `from` on (past the urgent ones, never displaced), the one whose requester holds most is answered
   * busy, if that is more than DISPLACE_MARGIN of the chunks above `held`. Whether it did.
   */
  #displace (held: number | undefined, from: number): boolean {
    if (held === undefined) return false
    let worst = -1
    let worstHeld = held + DISPLACE_MARGIN * this.#init.store.layout.count
    for (let k = from; k < this.#queue.length; k++) {
      const h = this.#queue[k]!.held
      if (h !== undefined && h > worstHeld) { worst = k; worstHeld = h }
    }
    if (worst < 0) return false
    const [displaced] = this.#queue.splice(worst, 1)
    displaced!.admitted(SLOTS_TAKEN)
    return true
  }

  /** The requester abandoned a queued request (it is dropped if still waiting). */
  unqueue (peer: string, index: number): void {
    const at = this.#queue.findIndex(q => q.peer === peer && q.index === index)
    if (at >= 0) this.#queue.splice(at, 1)
  }

  #admit (peer: string, index: number, failedHolders: readonly string[], gated: boolean): ServeDecision {
    const { store, gate, stats } = this.#init
    if (this.#init.isBanned(peer) || index >= store.layout.count || !store.have.has(index)) return { status: 'missing' }
    const length = store.layout.length[index]!
    const weight = Math.min(1, length / store.header.chunkSize)
    if (this.#load + weight > this.#init.maxUploads || this.#uploads >= MAX_SMALL_UPLOADS) return SLOTS_TAKEN
    if (this.#atOwnLimit(peer)) return SLOTS_TAKEN
    const budget = this.#init.budget
    if (budget !== undefined && budget.reserve(0, budget.now()) > MAX_BUDGET_WAIT_MS) return OVER_BUDGET
    const verdict = gated ? gate?.decide(peer, index, this.#init.now(), failedHolders) : undefined
    if (verdict !== undefined && !verdict.serve) return { status: 'refused', holders: verdict.holders }
    this.#uploads++
    this.#load += weight
    this.#uploadsTo.set(peer, (this.#uploadsTo.get(peer) ?? 0) + 1)
    let sent = 0
    let handedOver = false
    let ended = false
    // The requester's own limit frees once the last byte is handed to the transport, so its next chunk
    // follows at once; the slot frees when the upload ends — on a bulk connection once the requester's
    // receipt has come (codec.ts, writeResponse) — so the chunks on their way at once are at most
    // maxUploads whatever the kernel's buffers hold.
    const handOver = (): void => {
      if (handedOver) return
      handedOver = true
      const to = this.#uploadsTo.get(peer)! - 1
      if (to === 0) this.#uploadsTo.delete(peer)
      else this.#uploadsTo.set(peer, to)
    }
    const done = (): void => {
      if (ended) return
      ended = true
      handOver()
      if (verdict !== undefined) gate?.uploadEnded(peer, index, sent === length, this.#init.now())
      this.#uploads--
      this.#load -= weight
      this.#drain()
    }
    return {
      status: 'ok',
      length,
      read: budget === undefined
        ? (offset, n, into) => store.readRange(index, offset, n, into)
        : async (offset, n, into) => { await take(budget, n); return await store.readRange(index, offset, n, into) },
      onSent: bytes => {
        sent += bytes
        stats.bytesUp += bytes
        gate?.served(index, bytes)
        if (sent === length) {
          stats.chunksUp++
          handOver()
          this.#drain()
        }
      },
      onEnd: done
    }
  }

  /**
   * Admits waiting requests while slots allow (#next says which first). Over the upload cap, what waits is
   * answered busy: no upload in progress may be left to free a slot and wake it.
   */
  #drain (): void {
    for (let k = this.#next(); k >= 0; k = this.#next()) {
      const q = this.#queue[k]!
      const d = this.#admit(q.peer, q.index, q.failedHolders, q.gated)
      if (d === SLOTS_TAKEN) return
      this.#queue.splice(k, 1)
      for (let j = 0; j < k; j++) this.#queue[j]!.passedOver++
      q.admitted(d)
    }
  }

  /**
   * The waiting request to admit next, -1 if none: the first urgent one, or one passed over MAX_PASSED_OVER
   * times, else the one whose requester holds fewest chunks (the first of equals; unknown counts last), so a
   * host that fell behind catches up instead of finishing last while the others' uplinks idle. One whose
   * requester is at its own limit is passed over (it would block every other requester behind it).
   */
  #next (): number {
    let best = -1
    for (let k = 0; k < this.#queue.length; k++) {
      const q = this.#queue[k]!
      if (this.#atOwnLimit(q.peer)) continue
      if (q.urgent || q.passedOver >= MAX_PASSED_OVER) return k
      if (best < 0 || (q.held ?? Infinity) < (this.#queue[best]!.held ?? Infinity)) best = k
    }
    return best
  }

  #atOwnLimit (peer: string): boolean {
    return (this.#uploadsTo.get(peer) ?? 0) >= (this.#init.maxUploadsPerPeer ?? Infinity)
  }
}
