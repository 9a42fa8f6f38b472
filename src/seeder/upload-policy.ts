/**
 * The seeder's upload policy (super-seeding): spend the scarce seeder upload on chunks the swarm does not
 * hold yet, and point requesters at peers for the rest, so seeder egress stays near one copy of the model
 * (1·F) whatever the swarm size. Pure: the clock is an argument and hint order comes from a seeded Rng.
 *
 * State: each peer's bitfield as reported (bitfields and HAVEs), the live copy count per chunk, the chunk
 * last served and to whom ("pending": on its way there, not yet announced), the peers reporting each
 * holder failed them ("strikes"), refusals per (peer, chunk), and bytes served per chunk.
 *
 * decide(P, c), in order:
 *  1. P reports that every holder we named last time failed it → serve.
 *  2. Usable holders of c (other peers, not struck out, not reported failed by P) → refuse, naming up to
 *     `maxHints` of them, starting at a random one to spread the load.
 *  3. No usable holder, but c was just served to another live peer → refuse, naming that peer: a second
 *     seeder copy now would be the costliest duplicate.
 *  4. Otherwise (nobody holds c, or only gone/failing peers do) → serve.
 * Escape hatch against stalls: a refusal in 2 or 3 is turned into service once P has been refused for c
 * `maxRefusals` times within `windowMs`.
 *
 * Reveal (BEP 16's super-seeding, for chunks pulled while peers wait): a chunk just pulled is announced
 * (HAVE) to `revealTo` peers lacking it, not to all; the others hear of it from those peers' HAVEs.
 * Peers ask seeders only for what no other neighbour holds (piece-picker.ts), so a chunk announced to all
 * was asked of the seeder by all at once, and all but one were refused: in the lab (follow, 16 hosts,
 * 128 KiB chunks) 6,670 refusals for 512 chunks, 13 a chunk; in the simulator at 10,000 hosts, 55,000
 * requests a second, nearly none moving data. The peers told take turns, fewest such chunks outstanding
 * first, at most `maxRevealing` chunks out at once. A chunk no told peer took within `revealAfterMs` (or
 * whose told peers are all gone, or whose only holder left) is told to the next; a peer joining is not
 * sent what is held back (`bitfieldFor`); once the seeder holds the whole version and each chunk held
 * back has been taken by a peer, every peer is told everything (`whole`, `allDue`).
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { InvalidInputError } from '../errors.ts'
import type { Reveal } from '../peer/version-swarm.ts'
import { randomInt, type Rng } from '../util/random.ts'

export interface UploadPolicyInit {
  numChunks: number
  rng: Rng
  /** Holders named in one refusal. @default 4 */
  maxHints?: number
  /** Refusals of one peer for one chunk within `windowMs` after which it is served anyway. @default 2 */
  maxRefusals?: number
  /** Window for counting refusals and strikes. @default 30_000 */
  windowMs?: number
  /**
   * How long a chunk served counts as on its way to that peer once its upload has ended whole (`uploadEnded`),
   * for the peer's HAVE to come. While the upload runs it counts as on its way however long that takes (an
   * upload always ends: the requester gives up an idle one, and one refused too often is served anyway);
   * once it has failed, not at all. @default 10_000
   */
  pendingMs?: number
  /**
   * Peers reporting a holder failed them, within `windowMs`, after which it is neither named nor counted.
   * Each reporter counts once: a requester names its failed holders on every request for the chunk (and
   * the peers it paused as slow on all of them), so counting reports let one requester's one failed request
   * strike a holder for every requester. @default 2
   */
  maxStrikes?: number
  /** Peers told of a chunk just pulled; Infinity tells every peer lacking it (still at most maxRevealing out). @default 1 (one seeder copy per chunk) */
  revealTo?: number
  /** A chunk revealed to peers none of which took it within this long is told to the next. @default pendingMs */
  revealAfterMs?: number
  /** Revealed chunks a peer may have outstanding (not yet held by anyone) before others are preferred. @default 2 */
  maxOutstanding?: number
  /**
   * Chunks revealed and not yet taken, at most; the others wait. About the seeder's upload slots: more
   * are asked of it at once than it serves, and the rest are answered busy, again and again. Counting only
   * those not yet asked for instead (so the ones being served do not hold the next back) sent more sooner
   * when the line is no faster than the seeder's uplink (simulated, 200 hosts, 64 MiB chunks: 1.20–1.23 ×
   * against 1.21–1.24 ×) but brought the busy answers back where it is (16 hosts at the quarter rates: 616–642
   * busy for 512 chunks against 1; 1.15–1.20 × against 1.11–1.16 ×). @default 8
   */
  maxRevealing?: number
}


export type ServeReason = 'unheld' | 'holders-failed' | 'refused-too-often'
export type RefuseReason = 'held' | 'pending'
/** Decisions taken, by outcome and reason (an operator's answer to "why does the seeder send so much?"). */
export type DecisionCounts = Record<`served-${ServeReason}` | `refused-${RefuseReason}`, number>

export type UploadDecision =
  | { serve: true, reason: ServeReason }
  | { serve: false, reason: RefuseReason, holders: string[] }

interface PeerState {
  bits: Bitfield
  /** Peers that reported it failed them → when they last did. */
  strikes: Map<string, number>
}

interface Pending {
  peer: string
  at: number
  uploads: number
  delivered: boolean
}

interface Refusal {
  count: number
  firstAt: number
  hinted: string[]
}

export class UploadPolicy {
  readonly numChunks: number
  readonly #rng: Rng
  readonly #maxHints: number
  readonly #maxRefusals: number
  readonly #windowMs: number
  readonly #pendingMs: number
  readonly #maxStrikes: number
  readonly #peers = new Map<string, PeerState>()
  /** Peers in an array too, so hint scans can start at a random position; #slot maps a peer to its place. */
  readonly #order: string[] = []
  readonly #slot = new Map<string, number>()
  readonly #copies: Int32Array
  /**
   * Chunk → the peer it was last served to; when (the decision, then the end of an upload that ended whole);
   * its uploads to that peer still running; whether one ended whole.
   */
  readonly #pending = new Map<number, Pending>()
  readonly #refusals = new Map<string, Map<number, Refusal>>()
  readonly #servedBytes: Float64Array
  #totalServed = 0
  readonly #revealTo: number
  readonly #revealAfterMs: number
  readonly #maxOutstanding: number
  readonly #maxRevealing: number
  /** Chunks revealed to some peers and held by none yet (at most maxRevealing): whom they were told to, and when last. */
  readonly #revealing = new Map<number, { to: string[], at: number }>()
  /** Per peer, how many of the chunks in #revealing it was told of. */
  readonly #outstanding = new Map<string, number>()
  /** Chunks pulled and not yet revealed (no room, or no peer lacking them), oldest first; and as a set. */
  readonly #waiting: number[] = []
  #isWaiting: Bitfield
  /** Chunks pulled since the version was last whole and so told to some peers only: told anew when their last holder leaves. */
  #partial: Bitfield
  /** Set by whole(), until allDue() answers true. */
  #whole = false
  /** allDue() has answered true: every peer was told of every chunk. */
  #toldAll = false
  /** Where the next reveal's scan of #order starts: peers take turns. */
  #cursor = 0
  readonly decisions: DecisionCounts = {
    'served-unheld': 0, 'served-holders-failed': 0, 'served-refused-too-often': 0, 'refused-held': 0, 'refused-pending': 0
  }

  constructor (init: UploadPolicyInit) {
    if (!Number.isSafeInteger(init.numChunks) || init.numChunks < 0) throw new InvalidInputError(`invalid chunk count ${init.numChunks}`)
    this.numChunks = init.numChunks
    this.#rng = init.rng
    this.#maxHints = init.maxHints ?? 4
    this.#maxRefusals = init.maxRefusals ?? 2
    this.#windowMs = init.windowMs ?? 30_000
    this.#pendingMs = init.pendingMs ?? 10_000
    this.#maxStrikes = init.maxStrikes ?? 2
    this.#revealTo = init.revealTo ?? 1
    this.#revealAfterMs = init.revealAfterMs ?? this.#pendingMs
    this.#maxOutstanding = init.maxOutstanding ?? 2
    this.#maxRevealing = init.maxRevealing ?? 8
    this.#partial = new Bitfield(init.numChunks)
    this.#isWaiting = new Bitfield(init.numChunks)
    this.#copies = new Int32Array(init.numChunks)
    this.#servedBytes = new Float64Array(init.numChunks)
  }

  /** Whether to serve chunk `index` to `peer`. `failedHolders` are peers that `peer` tried for it in vain. */
  decide (peer: string, index: number, now: number, failedHolders: readonly string[] = []): UploadDecision {
    this.#check(index)
    for (const h of failedHolders) this.#strike(h, peer, now)
    const mine = this.#refusals.get(peer)
    let refusal = mine?.get(index)
    if (refusal !== undefined && now - refusal.firstAt > this.#windowMs) {
      mine!.delete(index)
      refusal = undefined
    }
    if (refusal !== undefined && refusal.hinted.length > 0 && refusal.hinted.every(h => failedHolders.includes(h))) return this.#serve(peer, index, now, 'holders-failed')

    let holders = this.#copies[index]! > 0 ? this.#usableHolders(index, peer, now, failedHolders) : []
    let reason: RefuseReason = 'held'
    if (holders.length === 0) {
      const pending = this.#pending.get(index)
      if (pending === undefined || pending.peer === peer || !this.#onItsWay(pending, now) || failedHolders.includes(pending.peer)) return this.#serve(peer, index, now, 'unheld')
      holders = [pending.peer]
      reason = 'pending'
    }
    if (refusal === undefined) {
      refusal = { count: 0, firstAt: now, hinted: [] }
      if (mine === undefined) this.#refusals.set(peer, new Map([[index, refusal]]))
      else mine.set(index, refusal)
    }
    if (refusal.count >= this.#maxRefusals) return this.#serve(peer, index, now, 'refused-too-often')
    refusal.count++
    refusal.hinted = holders
    this.decisions[`refused-${reason}`]++
    return { serve: false, reason, holders }
  }

  /**
   * The upload of chunk `index` to `peer` ended: `complete`, every byte sent (it stays on its way for
   * `pendingMs`, until the peer's HAVE), or not (it is not on its way: the next peer asking is served). A
   * served chunk counted as on its way for `pendingMs` from the decision, and in the lab (N = 32, a 6.25
   * Mbit/s seeder uplink, 128 KiB chunks) uploads took 2.9 s (p50) to 22.8 s (p90): 118 of 374 served
   * again while the first copy was still under way, the seeder egress 1.72 F.
   */
  uploadEnded (peer: string, index: number, complete: boolean, now: number): void {
    this.#check(index)
    const pending = this.#pending.get(index)
    if (pending?.peer !== peer || pending.uploads === 0) return
    pending.uploads--
    if (complete) {
      pending.delivered = true
      pending.at = now
    } else if (pending.uploads === 0 && !pending.delivered) this.#pending.delete(index)
  }

  /** Records `bytes` of chunk `index` sent by the seeder. */
  served (index: number, bytes: number): void {
    this.#check(index)
    this.#servedBytes[index]! += bytes
    this.#totalServed += bytes
  }

  /** Bytes served for one chunk, or in total. */
  bytesServed (index?: number): number {
    if (index === undefined) return this.#totalServed
    this.#check(index)
    return this.#servedBytes[index]!
  }

  /**
   * The seeder just stored chunk `index`. Returns the HAVEs to send now: this chunk's, to up to
   * `revealTo` peers lacking it, if fewer than `maxRevealing` chunks are out to peers that have not taken
   * them; otherwise it waits its turn (`dueReveals`). A peer joining meanwhile is not sent it either
   * (`bitfieldFor`). Nothing when a peer holds it already, and every peer once all were told everything
   * (`allDue`): a chunk pulled again after it rotted.
   */
  pulled (index: number, now: number): Reveal[] {
    this.#check(index)
    if (this.#copies[index]! > 0 || this.#partial.has(index)) return []
    // Pulled again after every peer was told everything (a repair): nothing is held back any more.
    if (this.#toldAll) return this.#order.length === 0 ? [] : [{ index, peers: [...this.#order] }]
    this.#partial.set(index)
    this.#wait(index, false)
    return this.#revealWaiting(now, [])
  }

  /**
   * HAVEs to send now: chunks told to peers that are all gone, or that none took within `revealAfterMs`
   * while it was not on its way to one (pending), go to the next peers; waiting chunks go out as others
   * are taken. Call after a peer's HAVE and every few seconds.
   */
  dueReveals (now: number): Reveal[] {
    const due: Reveal[] = []
    for (const [index, entry] of this.#revealing) {
      const told = entry.to.some(p => this.#peers.has(p))
      // On its way to a peer (peerGone drops a gone peer's pending chunks).
      const pending = this.#pending.get(index)
      const moving = pending !== undefined && this.#onItsWay(pending, now)
      if (told && (moving || now - entry.at < this.#revealAfterMs)) continue
      const peers = this.#nextPeers(index, entry.to)
      if (peers.length === 0) {
        // Nobody new to tell: look again after revealAfterMs, not on every HAVE.
        entry.at = now
        continue
      }
      this.#tell(index, entry, peers, now)
      due.push({ index, peers })
    }
    return this.#revealWaiting(now, due)
  }

  /**
   * The bitfield to send a peer joining: while the seeder pulls, `have` without the chunks pulled since the
   * version was last whole, which it hears of as the others do (from their holders, or revealed to it in
   * turn), or the peers joining during a pull would all ask the seeder for what it pulled before they came.
   * Once the version is whole, `have`: a reader waiting on a chunk (the gateway) must know who holds it.
   */
  bitfieldFor (have: Bitfield): Bitfield {
    if (this.#whole) return have
    const bytes = have.bytes.slice()
    for (let b = 0; b < bytes.length; b++) bytes[b]! &= ~this.#partial.bytes[b]!
    return new Bitfield(have.length, bytes)
  }

  /** The seeder now holds the whole version: `allDue` says when to stop holding anything back. */
  whole (): void {
    this.#whole = true
  }

  /**
   * True once, when the version is whole and every chunk held back has been taken by a peer: the caller
   * then tells every peer of every chunk, and nothing is held back any more. Not before: with the line
   * faster than the seeder's uplink, a version is whole while many chunks have never left the seeder, and
   * told of them all at once, every peer would ask the seeder for them.
   */
  allDue (): boolean {
    // Pulled with no peer there to tell, nothing was revealed: a peer joining later is sent every chunk.
    const told = this.#order.length > 0 || this.#revealing.size > 0
    if (!this.#whole || (told && (this.#revealing.size > 0 || this.#waiting.some(i => this.#copies[i]! === 0)))) return false
    this.#whole = false
    this.#toldAll = true
    this.#partial = new Bitfield(this.numChunks)
    this.#waiting.length = 0
    this.#isWaiting = new Bitfield(this.numChunks)
    return true
  }

  #wait (index: number, first: boolean): void {
    if (!this.#isWaiting.set(index)) return
    if (first) this.#waiting.unshift(index)
    else this.#waiting.push(index)
  }

  /** Moves waiting chunks out, oldest first, while fewer than maxRevealing are out and peers lack them. */
  #revealWaiting (now: number, out: Reveal[]): Reveal[] {
    let k = 0
    while (k < this.#waiting.length && this.#revealing.size < this.#maxRevealing) {
      const index = this.#waiting[k]!
      if (this.#copies[index]! > 0) {
        this.#waiting.splice(k, 1)
        this.#isWaiting.clear(index)
        continue
      }
      const peers = this.#nextPeers(index, [])
      if (peers.length === 0) {
        k++
        continue
      }
      this.#waiting.splice(k, 1)
      this.#isWaiting.clear(index)
      const entry = { to: [], at: now }
      this.#revealing.set(index, entry)
      this.#tell(index, entry, peers, now)
      out.push({ index, peers })
    }
    return out
  }

  #tell (index: number, entry: { to: string[], at: number }, peers: readonly string[], now: number): void {
    for (const p of peers) this.#outstanding.set(p, (this.#outstanding.get(p) ?? 0) + 1)
    entry.to.push(...peers)
    entry.at = now
  }

  /** Up to `revealTo` live peers lacking `index`, not in `told`, in turn; those with under `maxOutstanding` reveals first. */
  #nextPeers (index: number, told: readonly string[]): string[] {
    const out: string[] = []
    const n = this.#order.length
    if (this.#revealTo >= n) {
      const already = new Set(told)
      return this.#order.filter(p => !this.#peers.get(p)!.bits.has(index) && !already.has(p))
    }
    for (let round = 0; round < this.#revealTo && n > 0; round++) {
      let pick = -1
      let fewest = Infinity
      for (let k = 0; k < n; k++) {
        const slot = (this.#cursor + k) % n
        const peer = this.#order[slot]!
        if (this.#peers.get(peer)!.bits.has(index) || told.includes(peer) || out.includes(peer)) continue
        const outstanding = this.#outstanding.get(peer) ?? 0
        if (outstanding < fewest) {
          pick = slot
          fewest = outstanding
        }
        if (outstanding < this.#maxOutstanding) break
      }
      if (pick < 0) break
      out.push(this.#order[pick]!)
      this.#cursor = (pick + 1) % n
    }
    return out
  }

  /** A peer now holds a revealed chunk: it is out, and its told peers' outstanding counts drop. */
  #revealed (index: number): void {
    const entry = this.#revealing.get(index)
    if (entry === undefined) return
    this.#revealing.delete(index)
    for (const p of entry.to) {
      const left = (this.#outstanding.get(p) ?? 0) - 1
      if (left > 0) this.#outstanding.set(p, left)
      else this.#outstanding.delete(p)
    }
  }

  peerHas (peer: string, index: number): void {
    const state = this.#peerState(peer)
    if (state.bits.set(index)) this.#copies[index]!++
    this.#revealed(index)
    this.#refusals.get(peer)?.delete(index)
    if (this.#pending.get(index)?.peer === peer) this.#pending.delete(index)
  }

  /** A full report from a peer; replaces what was known of it. */
  peerBitfield (peer: string, bits: Bitfield): void {
    if (bits.length !== this.numChunks) throw new InvalidInputError(`peer ${peer} reported ${bits.length} chunks, expected ${this.numChunks}`)
    const state = this.#peerState(peer)
    for (const i of state.bits.setIndexes()) this.#copies[i]!--
    state.bits = bits.clone()
    for (const i of state.bits.setIndexes()) {
      this.#copies[i]!++
      this.#revealed(i)
      if (this.#pending.get(i)?.peer === peer) this.#pending.delete(i)
      this.#refusals.get(peer)?.delete(i)
    }
  }

  /** The peer left (disconnected, or stopped reporting): its copies no longer count. */
  peerGone (peer: string): void {
    const state = this.#peers.get(peer)
    if (state === undefined) return
    for (const i of state.bits.setIndexes()) {
      // Its neighbours may know this chunk only from it: the seeder tells someone else.
      if (--this.#copies[i]! === 0 && this.#partial.has(i) && !this.#revealing.has(i)) this.#wait(i, true)
    }
    this.#peers.delete(peer)
    const slot = this.#slot.get(peer)!
    const last = this.#order.pop()!
    if (last !== peer) {
      this.#order[slot] = last
      this.#slot.set(last, slot)
    }
    this.#slot.delete(peer)
    this.#refusals.delete(peer)
    this.#outstanding.delete(peer)
    // Back under the same id (a reconnect), it is a peer not yet told.
    for (const entry of this.#revealing.values()) {
      const at = entry.to.indexOf(peer)
      if (at >= 0) entry.to.splice(at, 1)
    }
    for (const [i, pending] of this.#pending) if (pending.peer === peer) this.#pending.delete(i)
  }

  #onItsWay (pending: Pending, now: number): boolean {
    return pending.uploads > 0 || now - pending.at <= this.#pendingMs
  }

  #serve (peer: string, index: number, now: number, reason: ServeReason): UploadDecision {
    this.#refusals.get(peer)?.delete(index)
    const pending = this.#pending.get(index)
    // The same peer again (its first request timed out on its side): both uploads are counted.
    if (pending?.peer === peer && pending.uploads > 0) pending.uploads++
    else this.#pending.set(index, { peer, at: now, uploads: 1, delivered: false })
    this.decisions[`served-${reason}`]++
    return { serve: true, reason }
  }

  /** Up to maxHints holders of `index` worth naming, scanning from a random peer. O(peers). */
  #usableHolders (index: number, except: string, now: number, failed: readonly string[]): string[] {
    const out: string[] = []
    const n = this.#order.length
    const start = n === 0 ? 0 : randomInt(this.#rng, n)
    for (let k = 0; k < n && out.length < this.#maxHints; k++) {
      const peer = this.#order[(start + k) % n]!
      const q = this.#peers.get(peer)!
      if (peer === except || !q.bits.has(index) || failed.includes(peer)) continue
      if (this.#struck(q, now)) continue
      out.push(peer)
    }
    return out
  }

  /** `reporter` says `holder` failed it. */
  #strike (holder: string, reporter: string, now: number): void {
    const q = this.#peers.get(holder)
    if (q === undefined || holder === reporter) return
    for (const [p, at] of q.strikes) if (now - at > this.#windowMs) q.strikes.delete(p)
    q.strikes.set(reporter, now)
  }

  /** Enough peers reported it failed them within the window. */
  #struck (q: PeerState, now: number): boolean {
    if (q.strikes.size < this.#maxStrikes) return false
    let recent = 0
    for (const at of q.strikes.values()) if (now - at <= this.#windowMs && ++recent >= this.#maxStrikes) return true
    return false
  }

  #peerState (peer: string): PeerState {
    let state = this.#peers.get(peer)
    if (state === undefined) {
      state = { bits: new Bitfield(this.numChunks), strikes: new Map() }
      this.#peers.set(peer, state)
      this.#slot.set(peer, this.#order.length)
      this.#order.push(peer)
    }
    return state
  }

  #check (index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.numChunks) throw new RangeError(`chunk index ${index} out of range 0..${this.numChunks - 1}`)
  }
}
