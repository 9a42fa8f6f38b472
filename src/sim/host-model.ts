/**
 * One simulated node's decisions, mirroring src/peer/version-swarm.ts: which neighbours to keep, which
 * peer to ask for which chunk and how many at once, what to do on a refusal, whom to serve. It moves no
 * bytes and owns no clock: the event engine (swarm-sim.ts) calls it when messages arrive and carries out
 * what it asks through HostIo. The decisions themselves are the real ones — the PiecePicker decides what
 * to ask whom, the seeder's UploadPolicy decides whom to serve; this class replicates only VersionSwarm's
 * driving around them, kept apart so it can later be shared with the real download scheduler.
 *
 * Replicated from VersionSwarm (same defaults): request budget max(2, ⌊maxBufferedBytes ÷ chunkSize⌋)
 * counting requests in flight plus chunks being verified; at most maxRequestsPerPeer per neighbour;
 * neighbours visited from a random one; maxUploads concurrent uploads, else 'busy'; a refusal blocks the
 * chunk on that neighbour (picker.requestFailed refused) and dials the named holders while fewer than
 * maxNeighbours peers are connected or being dialed; 'missing' and errors count against the holder and
 * are reported to seeders as failed holders of that chunk; a verified chunk cancels its endgame duplicates
 * and is announced (HAVE) to every neighbour; the seeder hints newcomers towards the members holding the
 * most; every tickMs, requests without progress for 2 × requestIdleMs are cancelled and, while short of
 * neighbours, discovery is asked for more.
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { PiecePicker } from '../peer/piece-picker.ts'
import type { UploadPolicy } from '../seeder/upload-policy.ts'
import { randomInt, type Rng } from '../util/random.ts'

export type Role = 'peer' | 'seeder'

/** VersionSwarm's options that shape the swarm, with its defaults (src/peer/version-swarm.ts). */
export interface DriverOptions {
  /** @default 12 */
  maxNeighbours: number
  /** @default 4 */
  maxRequestsPerPeer: number
  /** @default 32 MiB */
  maxBufferedBytes: number
  /** @default 8 */
  maxUploads: number
  /** @default 20_000 */
  requestIdleMs: number
  /** @default 2000 */
  tickMs: number
  /** Passed to the PiecePicker. @default 16 */
  endgameThreshold: number
  /** Passed to the PiecePicker: how long a chunk is not asked again of a peer that failed or refused it. @default 10_000 */
  retryAfterMs: number
  /**
   * Candidate rule, not in VersionSwarm: after a 'busy' answer, ask that peer for nothing for this long,
   * and leave the chunk free for other peers at once. Undefined is VersionSwarm's behaviour: busy counts
   * as a refusal of that one chunk (blocked on that peer for retryAfterMs), so the next pick asks the same
   * busy peer for another chunk, and again, one round trip each.
   */
  busyBackoffMs: number | undefined
  /** Candidate rule, not in VersionSwarm: concurrent uploads one node serves to one requester (busy beyond). Undefined: no limit. */
  maxUploadsPerPeer: number | undefined
  /**
   * Candidate rule, not in VersionSwarm: requests a node holds in a FIFO queue when its upload slots are
   * taken, served as slots free, instead of answering 'busy'. 0 is VersionSwarm's behaviour.
   */
  uploadQueue: number
  /**
   * How the seeder picks the members it hints to a newcomer: 'most' (VersionSwarm: those holding the most
   * chunks, so every newcomer of a moment gets the same few) or 'random' (candidate rule: a uniform sample).
   */
  hints: 'most' | 'random'
}

export const DRIVER_DEFAULTS: DriverOptions = {
  maxNeighbours: 12,
  maxRequestsPerPeer: 4,
  maxBufferedBytes: 32 * 1024 * 1024,
  maxUploads: 8,
  requestIdleMs: 20_000,
  tickMs: 2000,
  endgameThreshold: 16,
  retryAfterMs: 10_000,
  busyBackoffMs: undefined,
  maxUploadsPerPeer: undefined,
  uploadQueue: 0,
  hints: 'most'
}

export type ServeDecision =
  | { status: 'ok' }
  | { status: 'queued' }
  | { status: 'missing' }
  | { status: 'busy' }
  | { status: 'refused', holders: string[] }

/** What a host asks of the world. Every call is asynchronous in effect: answers come back as method calls. */
export interface HostIo {
  now: () => number
  /** Open a session; the engine then calls attach on both ends, or dialFailed. */
  dial: (peer: string) => void
  /** Ask `peer` for chunk `index`; the answer comes as onDelivered, onResponse or onFailed. */
  request: (peer: string, index: number, failedHolders: readonly string[] | undefined) => void
  /** Abandon a request; no answer follows. */
  cancel: (peer: string, index: number) => void
  /** HAVE `index` to these neighbours. */
  announce: (index: number, to: readonly string[]) => void
  /** Neighbour hints to one neighbour (seeders only). */
  hint: (peer: string, hints: readonly string[]) => void
  /** Members found through the DHT. */
  discover: () => readonly string[]
  /** Run `fn` after the current event, at the same instant (VersionSwarm's setImmediate). */
  soon: (fn: () => void) => void
  /** This host now holds every chunk. */
  complete: () => void
}

interface Neighbour {
  role: Role
  bits: Bitfield
  /** Chunks it holds that this host lacks: a peer with none cannot be picked from outside the tail. */
  interesting: number
}

export interface HostModelInit {
  id: string
  role: Role
  numChunks: number
  chunkSize: number
  have: Bitfield
  /** Chunks whose hashes this host knows (the seeder publishes them as it pulls). */
  known: Bitfield
  /** For the picker's tie-breaks. */
  pickerRng: Rng
  /** For the driver's own choices (first neighbour visited, hint order). */
  rng: Rng
  io: HostIo
  options: DriverOptions
  /** The seeder's upload policy; undefined on peers. */
  gate?: UploadPolicy
}

export class HostModel {
  readonly id: string
  readonly role: Role
  readonly have: Bitfield
  readonly known: Bitfield
  readonly #opts: DriverOptions
  readonly #io: HostIo
  readonly #rng: Rng
  readonly #gate: UploadPolicy | undefined
  /** Peers only: a seeder downloads nothing, so it keeps no picker (VersionSwarm keeps an idle one). */
  readonly #picker: PiecePicker | undefined
  readonly #budget: number
  readonly #sessions = new Map<string, Neighbour>()
  /** The same neighbours in an array, so fillRequests can start at a random one without copying. */
  readonly #order: string[] = []
  readonly #dialing = new Set<string>()
  readonly #requests = new Set<string>()
  readonly #failedHolders = new Map<number, Set<string>>()
  /** Candidate rule busyBackoffMs: peers not to ask before this time. */
  readonly #busyUntil = new Map<string, number>()
  #writing = 0
  #uploads = 0
  readonly #uploadsTo = new Map<string, number>()
  readonly #uploadQueue: Array<{ peer: string, index: number, failedHolders: readonly string[] }> = []
  #scheduled = false

  constructor (init: HostModelInit) {
    this.id = init.id
    this.role = init.role
    this.have = init.have.clone()
    this.known = init.known.clone()
    this.#opts = init.options
    this.#io = init.io
    this.#rng = init.rng
    this.#gate = init.gate
    this.#budget = Math.max(2, Math.floor(init.options.maxBufferedBytes / init.chunkSize))
    if (init.role === 'peer') {
      const { endgameThreshold, retryAfterMs } = init.options
      this.#picker = new PiecePicker({ numChunks: init.numChunks, have: this.have, rng: init.pickerRng, endgameThreshold, retryAfterMs })
      for (const i of this.known.setIndexes()) this.#picker!.setAvailable(i)
    }
  }

  get complete (): boolean { return this.have.complete }
  get neighbours (): number { return this.#sessions.size }
  get inflight (): number { return this.#requests.size }
  hasSession (peer: string): boolean { return this.#sessions.has(peer) }
  neighbourIds (): readonly string[] { return this.#order }

  // --- Neighbours -----------------------------------------------------------------------------

  connect (peer: string): void {
    if (peer === this.id || this.#sessions.has(peer) || this.#dialing.has(peer)) return
    this.#dialing.add(peer)
    this.#io.dial(peer)
  }

  dialFailed (peer: string): void {
    this.#dialing.delete(peer)
  }

  /** A session is up (either side dialed); `bits` is the neighbour's bitfield as it sent it. */
  attach (peer: string, role: Role, bits: Bitfield): void {
    this.#dialing.delete(peer)
    if (this.#sessions.has(peer)) return
    let interesting = 0
    for (let b = 0; b < bits.bytes.length; b++) interesting += popcount8(bits.bytes[b]! & ~this.have.bytes[b]!)
    this.#sessions.set(peer, { role, bits: bits.clone(), interesting })
    this.#order.push(peer)
    this.#picker?.addPeer(peer, bits, { seeder: role === 'seeder' })
    this.#gate?.peerBitfield(peer, bits)
    if (this.role === 'seeder') this.#io.hint(peer, this.#hintsFor(peer))
    this.#schedule()
  }

  detach (peer: string): void {
    if (!this.#sessions.delete(peer)) return
    const at = this.#order.indexOf(peer)
    this.#order[at] = this.#order[this.#order.length - 1]!
    this.#order.pop()
    for (const index of this.#picker?.removePeer(peer) ?? []) this.#cancel(peer, index)
    this.#gate?.peerGone(peer)
    this.#schedule()
  }

  onHave (peer: string, index: number): void {
    const s = this.#sessions.get(peer)
    if (s === undefined) return
    const lacking = !this.have.has(index)
    if (s.bits.set(index) && lacking) s.interesting++
    this.#picker?.peerHas(peer, index)
    this.#gate?.peerHas(peer, index)
    // A HAVE for a chunk held already cannot make a request possible (VersionSwarm schedules anyway).
    if (lacking) this.#schedule()
  }

  onHints (hints: readonly string[]): void {
    for (const h of hints) if (this.#wantMoreNeighbours()) this.connect(h)
  }

  /** The chunk's hash arrived (signed by the seeder). */
  onAvailable (index: number): void {
    if (!this.known.set(index)) return
    this.#picker?.setAvailable(index)
    this.#schedule()
  }

  #wantMoreNeighbours (): boolean {
    let peers = 0
    for (const s of this.#sessions.values()) if (s.role === 'peer') peers++
    return peers + this.#dialing.size < this.#opts.maxNeighbours
  }

  /** Up to maxNeighbours members holding the most, ties in random order (VersionSwarm#hintsFor); or a random sample. */
  #hintsFor (exclude: string): string[] {
    const k = this.#opts.maxNeighbours
    const best: Array<{ id: string, count: number, key: number }> = []
    for (const id of this.#order) {
      const s = this.#sessions.get(id)!
      if (id === exclude || s.role !== 'peer') continue
      const item = { id, count: this.#opts.hints === 'most' ? s.bits.count : 0, key: this.#rng() }
      let at = best.length
      while (at > 0 && (best[at - 1]!.count < item.count || (best[at - 1]!.count === item.count && best[at - 1]!.key > item.key))) at--
      if (at >= k) continue
      best.splice(at, 0, item)
      if (best.length > k) best.pop()
    }
    return best.map(b => b.id)
  }

  // --- Publishing (seeder) ---------------------------------------------------------------------

  /** The seeder stored a pulled chunk: it is now known and held, and every neighbour hears of it. */
  published (index: number): void {
    this.known.set(index)
    this.have.set(index)
    this.#io.announce(index, this.#order)
  }

  // --- Upload ---------------------------------------------------------------------------------

  /**
   * Upload admission for one request (VersionSwarm#serve). On 'ok' the caller must call uploadEnded; a
   * 'queued' request is answered later, through admitQueued, unless the caller unqueues it first.
   */
  serve (peer: string, index: number, failedHolders: readonly string[]): ServeDecision {
    if (!this.have.has(index)) return { status: 'missing' }
    if (!this.#slotFor(peer)) {
      if (this.#uploadQueue.length >= this.#opts.uploadQueue) return { status: 'busy' }
      this.#uploadQueue.push({ peer, index, failedHolders })
      return { status: 'queued' }
    }
    return this.#admit(peer, index, failedHolders)
  }

  #slotFor (peer: string): boolean {
    return this.#uploads < this.#opts.maxUploads && (this.#uploadsTo.get(peer) ?? 0) < (this.#opts.maxUploadsPerPeer ?? Infinity)
  }

  #admit (peer: string, index: number, failedHolders: readonly string[]): Exclude<ServeDecision, { status: 'queued' | 'busy' | 'missing' }> {
    const verdict = this.#gate?.decide(peer, index, this.#io.now(), failedHolders)
    if (verdict !== undefined && !verdict.serve) return { status: 'refused', holders: verdict.holders }
    this.#uploads++
    this.#uploadsTo.set(peer, (this.#uploadsTo.get(peer) ?? 0) + 1)
    return { status: 'ok' }
  }

  /** The requester abandoned a queued request. */
  unqueue (peer: string, index: number): void {
    const at = this.#uploadQueue.findIndex(q => q.peer === peer && q.index === index)
    if (at >= 0) this.#uploadQueue.splice(at, 1)
  }

  /** Queued requests that a free slot now admits, first come first served, with their answers. */
  admitQueued (): Array<{ peer: string, index: number, decision: Exclude<ServeDecision, { status: 'queued' | 'busy' }> }> {
    const out: Array<{ peer: string, index: number, decision: Exclude<ServeDecision, { status: 'queued' | 'busy' }> }> = []
    for (let k = 0; k < this.#uploadQueue.length && this.#uploads < this.#opts.maxUploads;) {
      const q = this.#uploadQueue[k]!
      if (!this.#slotFor(q.peer)) {
        k++
        continue
      }
      this.#uploadQueue.splice(k, 1)
      out.push({ peer: q.peer, index: q.index, decision: this.#admit(q.peer, q.index, q.failedHolders) })
    }
    return out
  }

  /** An upload admitted by serve, to `peer`, ended after `bytes` bytes (all of them or fewer). */
  uploadEnded (peer: string, index: number, bytes: number): void {
    this.#uploads--
    const to = this.#uploadsTo.get(peer)! - 1
    if (to === 0) this.#uploadsTo.delete(peer)
    else this.#uploadsTo.set(peer, to)
    this.#gate?.served(index, bytes)
  }

  // --- Download -------------------------------------------------------------------------------

  #schedule (): void {
    // With the budget spent fillRequests does nothing; whatever frees a slot schedules again.
    if (this.#scheduled || this.role === 'seeder' || this.have.complete || this.#requests.size + this.#writing >= this.#budget) return
    this.#scheduled = true
    this.#io.soon(() => {
      this.#scheduled = false
      this.#fillRequests()
    })
  }

  #fillRequests (): void {
    if (this.have.complete) return
    const now = this.#io.now()
    const tail = this.#picker!.remaining <= this.#opts.endgameThreshold
    const n = this.#order.length
    const start = n > 0 ? randomInt(this.#rng, n) : 0
    for (let k = 0; k < n && this.#requests.size + this.#writing < this.#budget; k++) {
      const peer = this.#order[(start + k) % n]!
      // Outside the tail the picker can only pick what the peer has and this host lacks: skip the scan.
      if (!tail && this.#sessions.get(peer)!.interesting === 0) continue
      if ((this.#busyUntil.get(peer) ?? -Infinity) > now) continue
      const inflight = this.#picker!.peerStats(peer)?.inflight ?? 0
      const free = Math.min(this.#opts.maxRequestsPerPeer - inflight, this.#budget - this.#requests.size - this.#writing)
      for (const index of this.#picker!.pick(peer, free, now)) this.#request(peer, index)
    }
  }

  #request (peer: string, index: number): void {
    this.#requests.add(`${peer}/${index}`)
    const toSeeder = this.#sessions.get(peer)?.role === 'seeder'
    this.#io.request(peer, index, toSeeder ? [...this.#failedHolders.get(index) ?? []] : undefined)
  }

  /** The request failed in transit (connection error, not a cancel). */
  onFailed (peer: string, index: number): void {
    if (!this.#requests.delete(`${peer}/${index}`)) return
    this.#holderFailed(peer, index)
    this.#picker!.requestFailed(peer, index, this.#io.now())
    this.#schedule()
  }

  /** A non-'ok' answer. */
  onResponse (peer: string, index: number, res: Exclude<ServeDecision, { status: 'ok' | 'queued' }>): void {
    if (!this.#requests.delete(`${peer}/${index}`)) return
    if (res.status === 'missing') this.#holderFailed(peer, index)
    const backoff = res.status === 'busy' ? this.#opts.busyBackoffMs : undefined
    if (backoff !== undefined) this.#busyUntil.set(peer, this.#io.now() + backoff)
    // The picker blocks the chunk for its retryAfterMs from the time given: dated back, a busy answer blocks nothing.
    const at = backoff !== undefined ? this.#io.now() - this.#opts.retryAfterMs : this.#io.now()
    this.#picker!.requestFailed(peer, index, at, { refused: res.status !== 'missing' })
    if (res.status === 'refused') for (const h of res.holders) if (this.#wantMoreNeighbours()) this.connect(h)
    this.#schedule()
  }

  /** The chunk's last byte arrived; the caller calls onWritten once it is verified and written. */
  onDelivered (peer: string, index: number, bytes: number): boolean {
    if (!this.#requests.delete(`${peer}/${index}`)) return false
    this.#picker!.requestDone(peer, index, bytes, this.#io.now())
    this.#writing++
    this.#schedule()
    return true
  }

  onWritten (index: number): void {
    this.#writing--
    if (!this.have.has(index)) this.#onVerified(index)
    this.#schedule()
  }

  #holderFailed (peer: string, index: number): void {
    if (this.#sessions.get(peer)?.role !== 'peer') return
    const set = this.#failedHolders.get(index) ?? new Set()
    set.add(peer)
    this.#failedHolders.set(index, set)
  }

  #onVerified (index: number): void {
    this.#failedHolders.delete(index)
    for (const c of this.#picker!.markHave(index)) this.#cancel(c.peer, c.index)
    this.have.set(index)
    for (const s of this.#sessions.values()) if (s.bits.has(index)) s.interesting--
    this.#io.announce(index, this.#order)
    if (this.have.complete) this.#io.complete()
  }

  #cancel (peer: string, index: number): void {
    if (this.#requests.delete(`${peer}/${index}`)) this.#io.cancel(peer, index)
  }

  // --- Housekeeping ---------------------------------------------------------------------------

  tick (): void {
    const now = this.#io.now()
    for (const r of this.#picker?.timedOut(now, () => this.#opts.requestIdleMs * 2) ?? []) {
      this.#cancel(r.peer, r.index)
      this.#picker!.requestFailed(r.peer, r.index, now)
    }
    if (this.role === 'peer' && !this.have.complete && this.#wantMoreNeighbours()) {
      for (const h of this.#io.discover()) if (this.#wantMoreNeighbours()) this.connect(h)
    }
    this.#schedule()
  }
}

function popcount8 (b: number): number {
  b = b - ((b >> 1) & 0x55)
  b = (b & 0x33) + ((b >> 2) & 0x33)
  return (b + (b >> 4)) & 0x0f
}
