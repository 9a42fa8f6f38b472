/**
 * The seeder's upload policy (super-seeding): spend the scarce seeder upload on chunks the swarm does not
 * hold yet, and point requesters at peers for the rest, so seeder egress stays near one copy of the model
 * (1·F) whatever the swarm size. Pure: the clock is an argument and hint order comes from a seeded Rng.
 *
 * State: each peer's bitfield as reported (bitfields and HAVEs), the live copy count per chunk, the chunk
 * last served and to whom ("pending": on its way there, not yet announced), failure reports against
 * holders ("strikes"), refusals per (peer, chunk), and bytes served per chunk.
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
 */
import { Bitfield } from '../chunker/bitfield.ts'
import { InvalidInputError } from '../errors.ts'
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
  /** How long a chunk just served counts as on its way to that peer. @default 10_000 */
  pendingMs?: number
  /** Failure reports within `windowMs` after which a holder is neither named nor counted. @default 2 */
  maxStrikes?: number
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
  strikes: number
  struckAt: number
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
  readonly #pending = new Map<number, { peer: string, at: number }>()
  readonly #refusals = new Map<string, Map<number, Refusal>>()
  readonly #servedBytes: Float64Array
  #totalServed = 0
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
    this.#copies = new Int32Array(init.numChunks)
    this.#servedBytes = new Float64Array(init.numChunks)
  }

  /** Whether to serve chunk `index` to `peer`. `failedHolders` are peers that `peer` tried for it in vain. */
  decide (peer: string, index: number, now: number, failedHolders: readonly string[] = []): UploadDecision {
    this.#check(index)
    for (const h of failedHolders) this.#strike(h, now)
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
      if (pending === undefined || pending.peer === peer || now - pending.at > this.#pendingMs || failedHolders.includes(pending.peer)) return this.#serve(peer, index, now, 'unheld')
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

  peerHas (peer: string, index: number): void {
    const state = this.#peerState(peer)
    if (state.bits.set(index)) this.#copies[index]!++
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
      if (this.#pending.get(i)?.peer === peer) this.#pending.delete(i)
      this.#refusals.get(peer)?.delete(i)
    }
  }

  /** The peer left (disconnected, or stopped reporting): its copies no longer count. */
  peerGone (peer: string): void {
    const state = this.#peers.get(peer)
    if (state === undefined) return
    for (const i of state.bits.setIndexes()) this.#copies[i]!--
    this.#peers.delete(peer)
    const slot = this.#slot.get(peer)!
    const last = this.#order.pop()!
    if (last !== peer) {
      this.#order[slot] = last
      this.#slot.set(last, slot)
    }
    this.#slot.delete(peer)
    this.#refusals.delete(peer)
    for (const [i, pending] of this.#pending) if (pending.peer === peer) this.#pending.delete(i)
  }

  #serve (peer: string, index: number, now: number, reason: ServeReason): UploadDecision {
    this.#refusals.get(peer)?.delete(index)
    this.#pending.set(index, { peer, at: now })
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
      if (q.strikes >= this.#maxStrikes && now - q.struckAt <= this.#windowMs) continue
      out.push(peer)
    }
    return out
  }

  #strike (peer: string, now: number): void {
    const q = this.#peers.get(peer)
    if (q === undefined) return
    if (now - q.struckAt > this.#windowMs) q.strikes = 0
    q.strikes++
    q.struckAt = now
  }

  #peerState (peer: string): PeerState {
    let state = this.#peers.get(peer)
    if (state === undefined) {
      state = { bits: new Bitfield(this.numChunks), strikes: 0, struckAt: -Infinity }
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
