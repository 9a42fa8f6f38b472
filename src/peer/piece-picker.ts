/**
 * Piece picker: which chunks to request from which peer. Pure decision code after Kraken's piece request
 * manager: it sends and receives nothing, takes the clock as an argument and its randomness from a seeded
 * Rng, so the swarm simulator can run it millions of times and replay a run from its seed.
 *
 * State, per chunk: `have` (verified and written), `available` (hash known — the seeder publishes hashes
 * while it is still pulling), `holders` (connected peers with the chunk) and `copies` (the same, seeders
 * excluded), `failures` (failed requests to non-seeder holders; kept when such a peer leaves, which only
 * frees the seeder sooner), in-flight requests
 * (peer → start time), and `verifying` (data received, waiting for markHave). `wanted` holds exactly the
 * chunks that are available, missing, not verifying and not in flight, kept in pick order
 * (ordered-chunks.ts). Per peer: its bitfield (in rank space, so it can be ANDed with the order's
 * buckets), whether it is a seeder, throughput (EWMA), failure count, and chunks it may not be asked for
 * again before a retry time (after a failure or a refusal).
 *
 * Ordering, one comparison as in anacrolix/torrent's request order: the key (`#keyOf`: higher priority
 * first — set by a reader waiting for those chunks, e.g. the read gateway, 0 otherwise — then fewer
 * non-seeder copies, i.e. rarest first), then a random rank fixed per picker (so ties break the same way
 * for one seed and differently across peers). `#keyOf` is the one place the order is defined; priority
 * goes in its high part, and the buckets follow. Priority only reorders: which peers may be asked for a
 * chunk is unchanged.
 *
 * Cost: outside the tail a pick walks the wanted chunks in order, 32 at a time ANDed with the peer's
 * chunks (and, for a seeder, with the chunks it may serve), and stops after `max` eligible ones, instead
 * of checking every wanted chunk. Measured with bench/picker-bench.ts (12 neighbours holding a random half
 * each, 4 per pick, Node 24 on this shared 2-core box): 1,000 chunks 70 → 3 µs per pick, 100,000 chunks
 * 4,750 → 4–6 µs. In the tail (at most `endgameThreshold` chunks missing) every wanted chunk is checked
 * with the tail's rules, as `scan: true` does always.
 *
 * Eligibility of chunk c for peer P:
 *  - P has c, and c is not blocked on P (a failure or refusal within `retryAfterMs`).
 *  - Seeders are holders of last resort: P may be a seeder only if no non-seeder holds c, or its
 *    non-seeder holders have failed at least as often as there are of them, or (in the tail) all of them
 *    are slow. Ask peers for what peers have; ask seeders for what nobody else has.
 *  - In the tail (at most `endgameThreshold` chunks missing), a slow peer — throughput below
 *    `slowRatio` × the best peer's — gets c only if no other usable holder of c is fast, so the last few
 *    chunks do not sit behind it.
 *
 * Endgame: in the tail, once every missing available chunk that anyone holds is in flight, a peer with
 * free slots (not a slow one) may duplicate in-flight chunks, up to `maxDuplicatesInEndgame` extra
 * requests per chunk, those in flight the longest first, then those on the slowest peer. markHave then
 * returns the duplicates to cancel.
 *
 * Hedging: a chunk a reader waits on (priority above 0) that has been in flight `hedgeAfterMs` may be asked
 * of another eligible peer too, tail or not, up to the same number of extra requests, longest in flight
 * first. One stalled connection must not hold a reader: in the lab's shard scenario (N = 16, every host
 * reading the first shard at once) a host's four urgent requests to the seeder were admitted at once and
 * then delivered 20 s later, all together, while other holders had those chunks. Once the reader waits on
 * its last few chunks (READER_TAIL), each is asked of up to READER_TAIL_HEDGES more peers, one more each
 * hedgeAfterMs: in the same scenario the hosts whose first shard came last (23 s against a median of 17 s)
 * each waited on one chunk whose two requests both crawled (first byte after 6–8 s, then 7–11 s for
 * 128 KiB on uplinks shared by eight uploads) while other holders had it by then.
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { InvalidInputError } from '../errors.ts'
import { randomInt, type Rng } from '../util/random.ts'
import { hasBit, OrderedChunks, putBit, wordsFor } from './ordered-chunks.ts'

/** Chunks a reader still waits on at or below which it is in its tail: its chunks are hedged more widely. */
const READER_TAIL = 4
/** Extra requests for one chunk of a reader's tail, one more each hedgeAfterMs. */
const READER_TAIL_HEDGES = 3

/** The tail's size and a failed peer's wait by default; the simulator's hosts use the same (src/sim/host-model.ts). */
export const PICKER_DEFAULTS = {
  endgameThreshold: 16,
  retryAfterMs: 10_000
} as const

export interface PiecePickerInit {
  numChunks: number
  /** Chunks already held; copied, not kept. */
  have: Bitfield
  rng: Rng
  /** Missing chunks at or below which the tail rules (slow-peer avoidance, endgame) apply. @default 16 */
  endgameThreshold?: number
  /** Extra concurrent requests for one chunk in endgame, on top of the first. @default 1 */
  maxDuplicatesInEndgame?: number
  /** A peer slower than this fraction of the best peer's throughput counts as slow in the tail. @default 0.25 */
  slowRatio?: number
  /** How long a peer is not asked again for a chunk it failed or refused. @default 10_000 */
  retryAfterMs?: number
  /** In flight this long, a chunk with priority may be asked of a second peer too (see Hedging). @default 2000 */
  hedgeAfterMs?: number
  /**
   * Check every wanted chunk in each pick (O(wanted)) instead of walking the order: the straightforward
   * rule, which the tail uses anyway and the property test holds the fast pick to. @default false
   */
  scan?: boolean
}

export interface PeerRequest {
  peer: string
  index: number
}

export interface PeerStats {
  /** Throughput estimate in bytes per second, undefined before the first delivery or failure. */
  rate: number | undefined
  failures: number
  inflight: number
}

interface PeerState {
  /** The chunks it holds, bit rank[c] for chunk c. */
  bits: Uint32Array
  seeder: boolean
  inflight: Set<number>
  /** Chunk → time before which this peer is not asked for it again. */
  blocked: Map<number, number>
  /** Bytes per millisecond, EWMA. */
  rate: number | undefined
  lastDoneAt: number
  failures: number
}

/** Weight of the newest sample in the throughput EWMA: reacts within a few chunks, ignores one outlier. */
const RATE_ALPHA = 0.3

export class PiecePicker {
  readonly numChunks: number
  readonly #have: Bitfield
  readonly #available: Bitfield
  readonly #holders: Int32Array
  readonly #copies: Int32Array
  readonly #failures: Int32Array
  readonly #rank: Uint32Array
  readonly #priority: Float64Array
  readonly #wanted: OrderedChunks
  /** Bit rank[c] set ⇔ copies[c] ≤ failures[c]: chunks a seeder may be asked for (its last-resort rule). */
  readonly #lastResort: Uint32Array
  readonly #requests = new Map<number, Map<string, number>>()
  readonly #verifying = new Set<number>()
  readonly #peers = new Map<string, PeerState>()
  readonly #endgameThreshold: number
  readonly #maxDuplicates: number
  readonly #slowRatio: number
  readonly #retryAfterMs: number
  readonly #hedgeAfterMs: number
  /** Chunks whose priority is above 0. */
  readonly #prioritized = new Set<number>()
  readonly #scan: boolean

  constructor (init: PiecePickerInit) {
    const n = init.numChunks
    if (!Number.isSafeInteger(n) || n < 0) throw new InvalidInputError(`invalid chunk count ${n}`)
    if (init.have.length !== n) throw new InvalidInputError(`have bitfield has ${init.have.length} bits, expected ${n}`)
    this.numChunks = n
    this.#have = init.have.clone()
    this.#available = new Bitfield(n)
    this.#holders = new Int32Array(n)
    this.#copies = new Int32Array(n)
    this.#failures = new Int32Array(n)
    this.#priority = new Float64Array(n)
    this.#endgameThreshold = init.endgameThreshold ?? PICKER_DEFAULTS.endgameThreshold
    this.#maxDuplicates = init.maxDuplicatesInEndgame ?? 1
    this.#slowRatio = init.slowRatio ?? 0.25
    this.#retryAfterMs = init.retryAfterMs ?? PICKER_DEFAULTS.retryAfterMs
    this.#hedgeAfterMs = init.hedgeAfterMs ?? 2000
    this.#scan = init.scan === true
    // A random permutation as the final tie-break: unique keys make the order total, hence reproducible.
    this.#rank = new Uint32Array(n)
    for (let i = 0; i < n; i++) this.#rank[i] = i
    for (let i = n - 1; i > 0; i--) {
      const j = randomInt(init.rng, i + 1)
      const t = this.#rank[i]!
      this.#rank[i] = this.#rank[j]!
      this.#rank[j] = t
    }
    this.#wanted = new OrderedChunks(this.#rank)
    // Every chunk starts with 0 copies and 0 failures.
    this.#lastResort = new Uint32Array(wordsFor(n)).fill(0xffffffff)
  }

  /** Chunks not yet verified, available or not. */
  get remaining (): number { return this.numChunks - this.#have.count }

  /** The chunk's hash is now known, so it may be requested. */
  setAvailable (index: number): void {
    this.#available.set(index)
    this.#refresh(index)
  }

  /**
   * Sets a chunk's priority: higher is picked first, ahead of rarity; 0 (the default) restores the normal
   * order. A reader sets it for chunks it waits on and clears it once served.
   */
  setPriority (index: number, priority: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numChunks) throw new InvalidInputError(`chunk index ${index} out of range`)
    this.#priority[index] = priority
    if (priority > 0) this.#prioritized.add(index)
    else this.#prioritized.delete(index)
    this.#refresh(index)
  }

  /** A chunk's priority (0 unless set). */
  priorityOf (index: number): number { return this.#priority[index] ?? 0 }

  /** Adds a peer (or replaces one that reconnected, dropping its old requests). */
  addPeer (peer: string, bits: Bitfield, opts: { seeder?: boolean } = {}): void {
    if (bits.length !== this.numChunks) throw new InvalidInputError(`peer ${peer} sent a bitfield of ${bits.length} bits, expected ${this.numChunks}`)
    this.removePeer(peer)
    const state: PeerState = {
      bits: new Uint32Array(wordsFor(this.numChunks)),
      seeder: opts.seeder === true,
      inflight: new Set(),
      blocked: new Map(),
      rate: undefined,
      lastDoneAt: -Infinity,
      failures: 0
    }
    this.#peers.set(peer, state)
    for (const i of bits.setIndexes()) {
      putBit(state.bits, this.#rank[i]!, true)
      this.#count(state, i, 1)
    }
  }

  /** A HAVE from a connected peer; unknown peers are ignored (the message raced their disconnect). */
  peerHas (peer: string, index: number): void {
    const state = this.#peers.get(peer)
    if (state !== undefined && putBit(state.bits, this.#rank[index]!, true)) this.#count(state, index, 1)
  }

  /** Forgets a peer; its in-flight chunks go back to the pool. Returns them so the caller can cancel. */
  removePeer (peer: string): number[] {
    const state = this.#peers.get(peer)
    if (state === undefined) return []
    this.#peers.delete(peer)
    for (let i = 0; i < this.numChunks; i++) if (hasBit(state.bits, this.#rank[i]!)) this.#count(state, i, -1)
    const dropped = [...state.inflight]
    for (const i of dropped) this.#dropRequest(peer, state, i)
    return dropped
  }

  /** Whether a reader waits on a chunk not held yet (one with priority above 0). */
  get readerWaiting (): boolean {
    for (const c of this.#prioritized) if (!this.#have.has(c)) return true
    return false
  }

  /** Requests in flight for chunks without priority. */
  get inflightUnprioritized (): number {
    let n = 0
    for (const [c, reqs] of this.#requests) if (!(this.#priority[c]! > 0)) n += reqs.size
    return n
  }

  /**
   * Chunks to request from `peer` now, at most `max`, of which at most `maxUnprioritized` without priority;
   * they are recorded as in flight since `now`.
   */
  pick (peer: string, max: number, now: number, { maxUnprioritized = Infinity } = {}): number[] {
    const p = this.#peers.get(peer)
    if (p === undefined || max <= 0) return []
    const tail = this.remaining <= this.#endgameThreshold
    const best = tail ? this.#bestRate() : 0
    const slow = tail && this.#isSlow(p, best)
    const picks: number[] = []
    let obtainable = 0
    if (tail || this.#scan) {
      this.#wanted.forEach(c => {
        if (this.#holders[c]! > 0) obtainable++
        if (this.#eligible(peer, p, c, now, tail, slow, best)) insertBounded(picks, c, max, this.#rarer)
      })
      // In order, priority first: whatever lies past the allowance of others goes.
      let others = 0
      for (let k = 0; k < picks.length; k++) {
        if (this.#priority[picks[k]!]! > 0) continue
        if (++others > maxUnprioritized) picks.length = k
      }
    } else {
      // Outside the tail a peer is eligible for what it holds and is not blocked on, and a seeder only
      // where its last-resort rule holds (#eligible with tail = slow = false): bits the walk ANDs in.
      const lastResort = p.seeder ? this.#lastResort : undefined
      // Keys come in order, priority first, so the allowance of others is used after every prioritized one.
      let done = false
      let others = 0
      const take = (c: number): boolean => {
        const other = !(this.#priority[c]! > 0)
        if (other && others >= maxUnprioritized) done = true
        else if ((p.blocked.get(c) ?? -Infinity) <= now) {
          picks.push(c)
          if (other) others++
        }
        if (picks.length >= max) done = true
        return !done
      }
      for (const key of this.#wanted.keys) {
        this.#wanted.visit(key, p.bits, lastResort, take)
        if (done) break
      }
    }
    for (const c of picks) this.#addRequest(peer, p, c, now)
    if (picks.length < max && tail && !slow && maxUnprioritized === Infinity && obtainable === picks.length) {
      for (const c of this.#endgame(peer, p, max - picks.length, now, best)) {
        this.#addRequest(peer, p, c, now)
        picks.push(c)
      }
    }
    if (picks.length < max && this.#prioritized.size > 0) {
      for (const c of this.#hedges(peer, p, max - picks.length, now)) {
        this.#addRequest(peer, p, c, now)
        picks.push(c)
      }
    }
    return picks
  }

  /** `peer` delivered chunk `index` (`bytes` long); it stays out of the pool until markHave or requestFailed. */
  requestDone (peer: string, index: number, bytes: number, now: number): void {
    const p = this.#peers.get(peer)
    const startedAt = this.#requests.get(index)?.get(peer)
    if (p !== undefined && startedAt !== undefined) {
      // Requests are pipelined: time since the later of the request and the previous delivery measures
      // this transfer alone, not the queue ahead of it.
      const sample = bytes / Math.max(1, now - Math.max(startedAt, p.lastDoneAt))
      p.rate = p.rate === undefined ? sample : p.rate + RATE_ALPHA * (sample - p.rate)
      p.lastDoneAt = now
      this.#dropRequest(peer, p, index)
    }
    if (!this.#have.has(index)) this.#verifying.add(index)
    this.#refresh(index)
  }

  /**
   * A request ended without usable data: timed out, errored, or delivered bytes that failed verification
   * (call after requestDone in that case). The peer is not asked for the chunk again for `retryAfterMs`.
   * A refusal (a seeder pointing elsewhere, or a peer busy with other uploads) blocks the same way, for
   * `retryAfterMs` when given, but does not count against the peer.
   */
  requestFailed (peer: string, index: number, now: number, opts: { refused?: boolean, retryAfterMs?: number } = {}): void {
    const p = this.#peers.get(peer)
    const wasInflight = p !== undefined && this.#dropRequest(peer, p, index)
    const badData = !wasInflight && this.#verifying.delete(index)
    if (p !== undefined && (wasInflight || badData)) {
      p.blocked.set(index, now + (opts.retryAfterMs ?? this.#retryAfterMs))
      if (opts.refused !== true) {
        p.failures++
        // Halving makes a failing peer look slow to the tail rules; a peer that never delivered starts at 0.
        p.rate = p.rate === undefined ? 0 : p.rate / 2
        if (!p.seeder && hasBit(p.bits, this.#rank[index]!)) this.#failures[index]!++
      }
    }
    this.#refresh(index)
  }

  /** `peer` may be asked for `index` again at once (what it pointed to instead turned out unreachable). */
  unblock (peer: string, index: number): void {
    this.#peers.get(peer)?.blocked.delete(index)
  }

  /** The chunk is verified and written. Returns the requests still in flight for it, to cancel. */
  markHave (index: number): PeerRequest[] {
    this.#have.set(index)
    this.#verifying.delete(index)
    this.#failures[index] = 0
    const cancel: PeerRequest[] = []
    for (const peer of this.#requests.get(index)?.keys() ?? []) {
      cancel.push({ peer, index })
      this.#peers.get(peer)?.inflight.delete(index)
    }
    this.#requests.delete(index)
    this.#refresh(index)
    return cancel
  }

  /**
   * The chunk is no longer held: its copy on disk failed a re-check and was dropped (ChunkStore.verifyHeld).
   * It is wanted again, like any chunk never held (libtorrent's piece_picker::we_dont_have).
   */
  lost (index: number): void {
    this.#have.clear(index)
    this.#refresh(index)
  }

  /**
   * Requests without progress for longer than `timeoutFor(peer)` ms. Progress is the later of the request
   * and the peer's last delivery, an idle timeout: a busy peer's queued requests are not stuck. The caller
   * cancels them and calls requestFailed.
   */
  timedOut (now: number, timeoutFor: (peer: string) => number): PeerRequest[] {
    const out: PeerRequest[] = []
    for (const [index, reqs] of this.#requests) {
      for (const [peer, startedAt] of reqs) {
        const lastDoneAt = this.#peers.get(peer)?.lastDoneAt ?? -Infinity
        if (now - Math.max(startedAt, lastDoneAt) > timeoutFor(peer)) out.push({ peer, index })
      }
    }
    return out
  }

  /** Requests in flight to `peer` (0 for a peer not connected). */
  inflightOf (peer: string): number {
    return this.#peers.get(peer)?.inflight.size ?? 0
  }

  peerStats (peer: string): PeerStats | undefined {
    const p = this.#peers.get(peer)
    if (p === undefined) return undefined
    return { rate: p.rate === undefined ? undefined : p.rate * 1000, failures: p.failures, inflight: p.inflight.size }
  }

  /**
   * The order's key: higher priority first, then fewer non-seeder copies. Smaller keys are picked first; the
   * rank breaks ties. Copies stay below 2^20 (a swarm of a million), so priority classes never mix.
   */
  #keyOf (c: number): number {
    return -this.#priority[c]! * 2 ** 20 + this.#copies[c]!
  }

  readonly #rarer = (a: number, b: number): boolean => {
    const ka = this.#keyOf(a)
    const kb = this.#keyOf(b)
    return ka !== kb ? ka < kb : this.#rank[a]! < this.#rank[b]!
  }

  #eligible (peer: string, p: PeerState, c: number, now: number, tail: boolean, slow: boolean, best: number): boolean {
    if (!hasBit(p.bits, this.#rank[c]!) || (p.blocked.get(c) ?? -Infinity) > now) return false
    if (p.seeder) return this.#copies[c]! <= this.#failures[c]! || (tail && !this.#fastHolder(c, peer, now, best, false))
    return !slow || !this.#fastHolder(c, peer, now, best, true)
  }

  /**
   * Whether a peer other than `except` holds c, may be asked for it, and is not slow. A seeder counts only
   * if `seedersCount` and no such non-seeder exists, for then its last-resort rule lets it take c. O(peers),
   * so only used in the tail, where few chunks remain.
   */
  #fastHolder (c: number, except: string, now: number, best: number, seedersCount: boolean): boolean {
    let fastSeeder = false
    for (const [peer, q] of this.#peers) {
      if (peer === except || !hasBit(q.bits, this.#rank[c]!) || (q.blocked.get(c) ?? -Infinity) > now || this.#isSlow(q, best)) continue
      if (!q.seeder) return true
      fastSeeder = true
    }
    return seedersCount && fastSeeder
  }

  #endgame (peer: string, p: PeerState, slots: number, now: number, best: number): number[] {
    const candidates: { index: number, oldest: number, slowest: number }[] = []
    for (const [c, reqs] of this.#requests) {
      if (reqs.has(peer) || reqs.size > this.#maxDuplicates || this.#verifying.has(c)) continue
      if (!this.#eligible(peer, p, c, now, true, false, best)) continue
      let oldest = Infinity
      let slowest = Infinity
      for (const [q, startedAt] of reqs) {
        oldest = Math.min(oldest, startedAt)
        slowest = Math.min(slowest, this.#peers.get(q)?.rate ?? Infinity)
      }
      candidates.push({ index: c, oldest, slowest })
    }
    candidates.sort((a, b) => a.oldest - b.oldest || a.slowest - b.slowest || this.#rank[a.index]! - this.#rank[b.index]!)
    return candidates.slice(0, slots).map(x => x.index)
  }

  /**
   * Prioritized chunks whose latest request is at least hedgeAfterMs old that `peer` may also be asked for,
   * longest in flight first: up to maxDuplicatesInEndgame extra requests a chunk, or READER_TAIL_HEDGES
   * once a reader waits on READER_TAIL chunks or fewer (see Hedging).
   */
  #hedges (peer: string, p: PeerState, slots: number, now: number): number[] {
    let waiting = 0
    for (const c of this.#prioritized) if (!this.#have.has(c)) waiting++
    const extra = waiting <= READER_TAIL ? Math.max(this.#maxDuplicates, READER_TAIL_HEDGES) : this.#maxDuplicates
    const candidates: { index: number, oldest: number }[] = []
    for (const c of this.#prioritized) {
      const reqs = this.#requests.get(c)
      if (reqs === undefined || reqs.has(peer) || reqs.size > extra || this.#verifying.has(c)) continue
      let oldest = Infinity
      let latest = -Infinity
      for (const startedAt of reqs.values()) {
        oldest = Math.min(oldest, startedAt)
        latest = Math.max(latest, startedAt)
      }
      if (now - latest < this.#hedgeAfterMs || !this.#eligible(peer, p, c, now, false, false, 0)) continue
      candidates.push({ index: c, oldest })
    }
    candidates.sort((a, b) => a.oldest - b.oldest || this.#rank[a.index]! - this.#rank[b.index]!)
    return candidates.slice(0, slots).map(x => x.index)
  }

  #bestRate (): number {
    let best = 0
    for (const q of this.#peers.values()) best = Math.max(best, q.rate ?? 0)
    return best
  }

  /** A peer with no estimate yet gets the benefit of the doubt; timeouts will give it one. */
  #isSlow (q: PeerState, best: number): boolean {
    return q.rate !== undefined && q.rate < this.#slowRatio * best
  }

  #count (p: PeerState, index: number, delta: number): void {
    this.#holders[index]! += delta
    if (!p.seeder) {
      this.#copies[index]! += delta
      this.#refresh(index)
    }
  }

  #addRequest (peer: string, p: PeerState, index: number, now: number): void {
    let reqs = this.#requests.get(index)
    if (reqs === undefined) this.#requests.set(index, reqs = new Map())
    reqs.set(peer, now)
    p.inflight.add(index)
    this.#wanted.delete(index)
  }

  /** Returns false when `peer` had no request for `index` in flight. */
  #dropRequest (peer: string, p: PeerState, index: number): boolean {
    if (!p.inflight.delete(index)) return false
    const reqs = this.#requests.get(index)
    reqs?.delete(peer)
    if (reqs?.size === 0) this.#requests.delete(index)
    this.#refresh(index)
    return true
  }

  /**
   * Restores the invariants after anything about c changed: c ∈ wanted (under its key) ⇔ available ∧ ¬have
   * ∧ ¬verifying ∧ no request in flight; c ∈ lastResort ⇔ copies ≤ failures.
   */
  #refresh (c: number): void {
    if (this.#available.has(c) && !this.#have.has(c) && !this.#verifying.has(c) && !this.#requests.has(c)) this.#wanted.set(c, this.#keyOf(c))
    else this.#wanted.delete(c)
    putBit(this.#lastResort, this.#rank[c]!, this.#copies[c]! <= this.#failures[c]!)
  }
}

/** Inserts `item` into `list`, kept sorted by `less` and at most `k` long. O(log k) to reject, O(k) to insert. */
function insertBounded (list: number[], item: number, k: number, less: (a: number, b: number) => boolean): void {
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (less(list[mid]!, item)) lo = mid + 1
    else hi = mid
  }
  if (lo >= k) return
  list.splice(lo, 0, item)
  if (list.length > k) list.pop()
}
