/**
 * One simulated node: the driver that carries out the real node's decisions in the simulator, as
 * DownloadScheduler and VersionSwarm carry them out over the network. It moves no bytes and owns no clock:
 * the event engine (swarm-sim.ts) calls it when messages arrive and carries out what it asks through HostIo.
 *
 * The decisions are the real code's, not copies: the DownloadPlanner (src/peer/download-planner.ts) decides
 * what to ask whom within the request and memory budgets and what failures, 'missing', 'busy', refusals,
 * unreachable holders and timeouts lead to; UploadAdmission (src/peer/upload-admission.ts) decides whom to
 * serve, with the seeder's UploadPolicy as its gate; the seeder's hints are the same random sample
 * (randomSample, as Neighbours#hintsFor). What is left here is the driving: neighbours capped at
 * maxNeighbours peers (Neighbours#wantMore), a fill of request slots once per instant, HAVE to every
 * neighbour (the seeder: to those its policy reveals a chunk to), discovery while short of neighbours
 * when the DiscoveryPacer (src/peer/discovery-pacer.ts) says a round is due, a round ending when its dials
 * have.
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { DISCOVERY_MAX_WAIT_MS, DiscoveryPacer } from '../peer/discovery-pacer.ts'
import { BUSY_RETRY_MS, dialNamedHolders, DownloadPlanner, HINTED_ABOVE_LIMIT } from '../peer/download-planner.ts'
import { PICKER_DEFAULTS } from '../peer/piece-picker.ts'
import { UploadAdmission, type AdmissionDecision } from '../peer/upload-admission.ts'
import type { SeederGate } from '../peer/version-swarm.ts'
import type { ServeDecision as NodeServeDecision } from '../peer/protocols/chunk/codec.ts'
import { SWARM_DEFAULTS } from '../peer/swarm-defaults.ts'
import { randomSample, type Rng } from '../util/random.ts'

export type Role = 'peer' | 'seeder'

/** The node options that shape the swarm, with the real defaults (src/peer/version-swarm.ts, download-planner.ts). */
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
  /** Passed to the DownloadPlanner: how soon a peer that answered busy is asked again. @default 250 */
  busyRetryMs: number
  /** Passed to the DownloadPlanner: what a busy answer holds back, the peer or only that chunk on it. @default 'peer' */
  busyBackoff: 'peer' | 'chunk'
  /** Passed to UploadAdmission: concurrent uploads to one requester. @default 1 */
  maxUploadsPerPeer: number | undefined
  /** Passed to UploadAdmission: other requesters' requests held while the upload slots are taken. @default 2 */
  uploadQueue: number
  /** As DownloadScheduler: neighbours dialed above maxNeighbours for holders a refusal names. @default HINTED_ABOVE_LIMIT */
  hintedAboveLimit: number
}

export const DRIVER_DEFAULTS: DriverOptions = {
  ...SWARM_DEFAULTS,
  ...PICKER_DEFAULTS,
  busyRetryMs: BUSY_RETRY_MS,
  busyBackoff: 'peer',
  hintedAboveLimit: HINTED_ABOVE_LIMIT
}

/** A node's answer to a request, as the engine sees it: the chunk will flow, or a message goes back. */
export type ServeDecision =
  | { status: 'ok' }
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
  /** The signed hash of `index` to these neighbours (seeders only). */
  publish: (index: number, to: readonly string[]) => void
  /** Neighbour hints to one neighbour (seeders only). */
  hint: (peer: string, hints: readonly string[]) => void
  /** Members found through the DHT. */
  discover: () => readonly string[]
  /** Run `fn` after the current event, at the same instant (the real node's setImmediate). */
  soon: (fn: () => void) => void
  /** Run `fn` `ms` from now (the real node's setTimeout); not at all if this node has died by then. */
  later: (ms: number, fn: () => void) => void
  /** This host now holds every chunk. */
  complete: () => void
}

interface Neighbour {
  id: string
  role: Role
  bits: Bitfield
  /** Chunks it holds as far as the real node would have heard: its bitfield's and its HAVEs since (see onHave). */
  held: number
  /** Its place in #order, #nbrs and #interesting. */
  slot: number
}

type Upload = Extract<NodeServeDecision, { status: 'ok' }>

export interface HostModelInit {
  id: string
  role: Role
  chunkSize: number
  /** Each chunk's length in bytes. */
  lengths: ArrayLike<number>
  have: Bitfield
  /**
   * Where to keep `have` (its bytes, copied from `have`): the engine keeps every node's in one array, so
   * it can tell whether a node holds a chunk without touching the node. Default: a copy of its own.
   */
  haveStorage?: Uint8Array
  /** Chunks whose hashes this host knows (the seeder publishes them as it pulls). */
  known: Bitfield
  /** The planner's (picker tie-breaks, first neighbour visited) and the hint sample's randomness. */
  rng: Rng
  io: HostIo
  options: DriverOptions
  /** The seeder's upload policy; undefined on peers. */
  gate?: SeederGate
}

export class HostModel {
  readonly id: string
  readonly role: Role
  readonly have: Bitfield
  readonly known: Bitfield
  readonly #opts: DriverOptions
  readonly #io: HostIo
  readonly #rng: Rng
  /** Peers only: a seeder downloads nothing (the real seeder has no download scheduler either). */
  readonly #plan: DownloadPlanner | undefined
  readonly #admission: UploadAdmission
  readonly #gate: SeederGate | undefined
  readonly #sessions = new Map<string, Neighbour>()
  /** The same neighbours in an array, so the planner's fill and the hint sample need no copy. */
  readonly #order: string[] = []
  /** Their sessions, in #order's order: the loops over every neighbour per chunk need no lookups. */
  readonly #nbrs: Neighbour[] = []
  /**
   * Per neighbour (same order), chunks it holds that this host lacks: a peer with none cannot be picked
   * from. Kept apart from the sessions so a fill's pass over the neighbours reads one small array.
   */
  readonly #interesting: number[] = []
  /** Sessions with peers (not seeders), for Neighbours#wantMore. */
  #peerSessions = 0
  readonly #dialing = new Set<string>()
  readonly #discovery: DiscoveryPacer
  /** The running discovery round's dials not yet ended (the round ends with its last). */
  #roundDials: Set<string> | undefined
  /** Requests in flight: peer → chunks (numbers, not `peer/index` strings: no string made per request). */
  readonly #requests = new Map<string, Set<number>>()
  #inflight = 0
  /** Uploads admitted and not yet ended: requester → chunk → upload. */
  readonly #uploads = new Map<string, Map<number, Upload>>()
  #scheduled = false

  constructor (init: HostModelInit) {
    this.id = init.id
    this.role = init.role
    if (init.haveStorage === undefined) this.have = init.have.clone()
    else {
      init.haveStorage.set(init.have.bytes)
      this.have = new Bitfield(init.have.length, init.haveStorage)
    }
    this.known = init.known.clone()
    this.#opts = init.options
    this.#io = init.io
    this.#rng = init.rng
    this.#gate = init.gate
    this.#discovery = new DiscoveryPacer({ baseMs: init.options.tickMs, maxMs: DISCOVERY_MAX_WAIT_MS, rng: init.rng })
    const { lengths, chunkSize } = init
    this.#admission = new UploadAdmission({
      store: {
        have: this.have,
        layout: { count: lengths.length, length: lengths },
        header: { chunkSize },
        readRange: () => { throw new Error('the simulator moves no bytes') }
      },
      gate: init.gate,
      maxUploads: init.options.maxUploads,
      maxUploadsPerPeer: init.options.maxUploadsPerPeer,
      queue: init.options.uploadQueue,
      held: peer => this.#sessions.get(peer)?.held ?? 0,
      isBanned: () => false,
      now: () => init.io.now(),
      stats: { bytesUp: 0, chunksUp: 0 }
    })
    if (init.role === 'peer') {
      const { maxRequestsPerPeer, maxBufferedBytes, requestIdleMs, endgameThreshold, retryAfterMs, busyRetryMs, busyBackoff } = init.options
      this.#plan = new DownloadPlanner({
        chunkSize,
        lengths,
        have: this.have,
        known: this.known,
        rng: init.rng,
        options: { maxRequestsPerPeer, maxBufferedBytes, requestIdleMs },
        picker: { endgameThreshold, retryAfterMs },
        busyRetryMs,
        busyBackoff
      })
    }
  }

  get complete (): boolean { return this.have.complete }
  get neighbours (): number { return this.#sessions.size }
  get inflight (): number { return this.#inflight }
  hasSession (peer: string): boolean { return this.#sessions.has(peer) }
  neighbourIds (): readonly string[] { return this.#order }

  // --- Neighbours -----------------------------------------------------------------------------

  /** Dials `peer` unless it is this node, a neighbour or being dialed; whether it did. */
  connect (peer: string): boolean {
    if (peer === this.id || this.#sessions.has(peer) || this.#dialing.has(peer)) return false
    this.#dialing.add(peer)
    this.#io.dial(peer)
    return true
  }

  /** The dial failed: if a refusal named this peer, the seeder serves those chunks itself. */
  dialFailed (peer: string): void {
    this.#dialing.delete(peer)
    this.#dialEnded(peer)
    this.#plan?.holderUnreachable(peer)
    this.#schedule()
  }

  /** A session is up (either side dialed); `bits` is the neighbour's bitfield as it sent it. */
  attach (peer: string, role: Role, bits: Bitfield): void {
    this.#dialing.delete(peer)
    if (this.#sessions.has(peer)) {
      this.#dialEnded(peer)
      return
    }
    let interesting = 0
    for (let b = 0; b < bits.bytes.length; b++) interesting += popcount8(bits.bytes[b]! & ~this.have.bytes[b]!)
    const s: Neighbour = { id: peer, role, bits: bits.clone(), held: bits.count, slot: this.#nbrs.length }
    this.#sessions.set(peer, s)
    this.#order.push(peer)
    this.#nbrs.push(s)
    this.#interesting.push(interesting)
    if (role === 'peer') this.#peerSessions++
    this.#plan?.peerJoined(peer, bits, role === 'seeder')
    if (this.#gate !== undefined) {
      this.#gate.peerBitfield(peer, bits)
      this.#revealDue()
      // The seeder sees the whole swarm: it tells each newcomer whom to trade with.
      this.#io.hint(peer, randomSample(this.#order, this.#opts.maxNeighbours, this.#rng, id => id !== peer && this.#sessions.get(id)!.role === 'peer'))
    }
    this.#dialEnded(peer)
    this.#schedule()
  }

  /** A dial ended (a session or a failure): the discovery round that made it ends with its last dial. */
  #dialEnded (peer: string): void {
    const dials = this.#roundDials
    if (dials === undefined || !dials.delete(peer) || dials.size > 0) return
    this.#roundDials = undefined
    this.#discovery.end(this.#sessions.size, this.#io.now())
  }

  detach (peer: string): void {
    const s = this.#sessions.get(peer)
    if (s === undefined) return
    this.#sessions.delete(peer)
    if (s.role === 'peer') this.#peerSessions--
    const at = s.slot
    const last = this.#nbrs.length - 1
    this.#order[at] = this.#order[last]!
    this.#order.pop()
    this.#nbrs[at] = this.#nbrs[last]!
    this.#nbrs[at]!.slot = at
    this.#nbrs.pop()
    this.#interesting[at] = this.#interesting[last]!
    this.#interesting.pop()
    for (const index of this.#plan?.peerLeft(peer) ?? []) this.#cancel(peer, index)
    this.#gate?.peerGone(peer)
    this.#discovery.neighbourLost()
    this.#schedule()
  }

  onHave (peer: string, index: number): void {
    const s = this.#sessions.get(peer)
    if (s === undefined) return
    // What the real node's session bits count (VersionSwarm gives them to upload admission): a peer is not
    // told of chunks it holds (haveFor), a seeder of all.
    if (this.role === 'seeder' || !this.have.has(index)) s.held++
    if (this.#gate !== undefined) {
      this.#gate.peerHas(peer, index)
      this.#revealDue()
    }
    // A HAVE for a chunk held already reaches no decision: the planner picks, counts rarity for and
    // times out only chunks not held, and `interesting` counts only those. So neither the planner nor the
    // session's bits hear of it (the real node records it anyway) — about half of all HAVEs at scale,
    // and the same run to the last event (docs/simulator.md, "The simulator's own cost").
    if (this.have.has(index)) return
    if (s.bits.set(index)) this.#interesting[s.slot]!++
    this.#plan?.peerHas(peer, index)
    this.#schedule()
  }

  onHints (hints: readonly string[]): void {
    for (const h of hints) if (this.#wantMoreNeighbours()) this.connect(h)
  }

  /** The chunk's hash arrived (signed by the seeder). */
  onAvailable (index: number): void {
    if (!this.known.set(index)) return
    this.#plan?.setAvailable(index)
    this.#schedule()
  }

  /** Neighbours#wantMore: peers (seeders not counted) connected or being dialed, below maxNeighbours (+ `extra`). */
  #wantMoreNeighbours (extra = 0): boolean {
    return this.#peerSessions + this.#dialing.size < this.#opts.maxNeighbours + extra
  }

  // --- Publishing (seeder) ---------------------------------------------------------------------

  /**
   * The seeder stored a pulled chunk: it is now known and held; every neighbour gets its hash, and those
   * its policy reveals it to a HAVE (VersionSwarm#announceHave).
   */
  published (index: number): void {
    this.known.set(index)
    this.have.set(index)
    this.#io.publish(index, this.#order)
    for (const r of this.#gate!.pulled(index, this.#io.now())) this.#io.announce(r.index, r.peers)
  }

  /** The seeder's HAVEs due now (VersionSwarm#revealDue): after a peer's HAVE, and every tick. */
  #revealDue (): void {
    const gate = this.#gate!
    for (const r of gate.dueReveals(this.#io.now())) this.#io.announce(r.index, r.peers)
    if (gate.allDue()) for (let i = 0; i < this.have.length; i++) this.#io.announce(i, this.#order)
  }

  /** The bitfield this node sends a neighbour joining (VersionSwarm#onJoin): the seeder's holds back what it has not revealed. */
  bitfieldFor (role: Role): Bitfield {
    return this.#gate !== undefined && role === 'peer' ? this.#gate.bitfieldFor(this.have) : this.have
  }

  /** The seeder's pull is done (VersionSwarm#revealAll). */
  pulled (): void {
    this.#gate!.whole()
    this.#revealDue()
  }

  // --- Upload ---------------------------------------------------------------------------------

  /**
   * Upload admission for one request (UploadAdmission#serve). On 'ok' the caller must call uploadEnded; a
   * 'queued' request is answered later through `admitted` (as a slot frees), unless the caller unqueues it first.
   * `held`: the chunks the requester holds, as a real request over a bulk connection says.
   */
  serve (peer: string, index: number, failedHolders: readonly string[], admitted: (d: ServeDecision) => void, held?: number): ServeDecision | { status: 'queued' } {
    const d = this.#admission.serve(peer, index, {
      failedHolders,
      held,
      admitted: later => {
        this.#track(peer, index, later)
        admitted(later)
      }
    })
    this.#track(peer, index, d)
    return d
  }

  #track (peer: string, index: number, d: AdmissionDecision): void {
    if (d.status !== 'ok') return
    let mine = this.#uploads.get(peer)
    if (mine === undefined) this.#uploads.set(peer, mine = new Map())
    mine.set(index, d)
  }

  /** The requester abandoned a queued request. */
  unqueue (peer: string, index: number): void {
    this.#admission.unqueue(peer, index)
  }

  /** An upload admitted by serve, to `peer`, ended after `bytes` bytes (all of them or fewer); queued requests may be admitted now. */
  uploadEnded (peer: string, index: number, bytes: number): void {
    const mine = this.#uploads.get(peer)!
    const upload = mine.get(index)!
    mine.delete(index)
    if (mine.size === 0) this.#uploads.delete(peer)
    upload.onSent?.(bytes)
    upload.onEnd?.()
  }

  // --- Download -------------------------------------------------------------------------------

  #schedule (): void {
    // With the budget spent a fill does nothing; whatever frees a slot schedules again.
    if (this.#scheduled || this.#plan === undefined || this.have.complete || !this.#plan.hasRoom) return
    this.#scheduled = true
    this.#io.soon(() => {
      this.#scheduled = false
      this.#fillRequests()
    })
  }

  #fillRequests (): void {
    const plan = this.#plan!
    if (this.have.complete) return
    // The picker picks only what a peer holds and this host lacks: peers with none are left out (same picks, fewer calls).
    const peers = FILL_PEERS
    peers.length = 0
    const interesting = this.#interesting
    for (let k = 0; k < interesting.length; k++) if (interesting[k]! > 0) peers.push(this.#order[k]!)
    for (const r of plan.fill(peers, this.#io.now())) {
      let mine = this.#requests.get(r.peer)
      if (mine === undefined) this.#requests.set(r.peer, mine = new Set())
      mine.add(r.index)
      this.#inflight++
      const toSeeder = this.#sessions.get(r.peer)?.role === 'seeder'
      this.#io.request(r.peer, r.index, toSeeder ? plan.failedHoldersFor(r.index) : undefined)
    }
  }

  /** The request failed in transit (connection error, not a cancel). */
  onFailed (peer: string, index: number): void {
    if (!this.#ended(peer, index)) return
    this.#plan!.failed(peer, index, this.#io.now())
    this.#schedule()
  }

  /** A non-'ok' answer. */
  onResponse (peer: string, index: number, res: Exclude<ServeDecision, { status: 'ok' | 'queued' }>): void {
    if (!this.#ended(peer, index)) return
    dialNamedHolders(this.#plan!.answered(peer, index, res, this.#io.now()), this.#sessions.get(peer)?.role === 'seeder', {
      wantMore: extra => this.#wantMoreNeighbours(extra),
      isNeighbour: h => this.#sessions.has(h),
      dial: h => this.connect(h)
    }, this.#opts.hintedAboveLimit)
    if (res.status === 'busy') this.#io.later(this.#plan!.busyRetryMs, () => this.#schedule())
    this.#schedule()
  }

  /** The chunk's last byte arrived; the caller calls onWritten once it is verified and written. */
  onDelivered (peer: string, index: number, bytes: number): boolean {
    if (!this.#ended(peer, index)) return false
    this.#plan!.received(peer, index, bytes, this.#io.now())
    this.#schedule()
    return true
  }

  onWritten (peer: string, index: number): void {
    const duplicates = this.#plan!.written(peer, index)
    if (!this.have.has(index)) this.#onVerified(index, duplicates)
    this.#schedule()
  }

  #onVerified (index: number, duplicates: ReadonlyArray<{ peer: string, index: number }>): void {
    for (const c of duplicates) this.#cancel(c.peer, c.index)
    this.have.set(index)
    const nbrs = this.#nbrs
    for (let k = 0; k < nbrs.length; k++) if (nbrs[k]!.bits.has(index)) this.#interesting[k]!--
    this.#io.announce(index, this.#order)
    if (this.have.complete) this.#io.complete()
  }

  /** Forgets a request in flight; false if there was none. */
  #ended (peer: string, index: number): boolean {
    const mine = this.#requests.get(peer)
    if (mine === undefined || !mine.delete(index)) return false
    if (mine.size === 0) this.#requests.delete(peer)
    this.#inflight--
    return true
  }

  #cancel (peer: string, index: number): void {
    if (!this.#ended(peer, index)) return
    this.#io.cancel(peer, index)
    this.#plan!.released(peer, index)
  }

  // --- Housekeeping ---------------------------------------------------------------------------

  tick (): void {
    if (this.#gate !== undefined) this.#revealDue()
    for (const r of this.#plan?.timedOut(this.#io.now()) ?? []) this.#cancel(r.peer, r.index)
    const now = this.#io.now()
    if (this.#plan !== undefined && !this.have.complete && this.#wantMoreNeighbours() && this.#discovery.due(now)) {
      this.#discovery.begin(this.#sessions.size)
      const dials = new Set<string>()
      for (const h of this.#io.discover()) if (this.#wantMoreNeighbours() && this.connect(h)) dials.add(h)
      if (dials.size > 0) this.#roundDials = dials
      else this.#discovery.end(this.#sessions.size, now)
    }
    this.#schedule()
  }
}

/** Scratch list for #fillRequests (the simulator runs one event at a time): no array per fill. */
const FILL_PEERS: string[] = []

function popcount8 (b: number): number {
  b = b - ((b >> 1) & 0x55)
  b = (b & 0x33) + ((b >> 2) & 0x33)
  return (b + (b >> 4)) & 0x0f
}
