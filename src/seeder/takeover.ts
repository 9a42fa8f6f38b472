/**
 * When a seeder of an HA group pulls a version itself, and which chunks. Pure: the clock is an argument.
 *
 * The version's owner (ownership.ts) pulls from the start. Every other seeder fetches the version from
 * the swarm like a host and watches the seeders ranked above it: one whose held chunk count has not grown
 * for `graceMs` — killed, cut off, or stuck on the origin — is stale, and once every seeder above it is
 * stale a seeder pulls too. Whoever pulls reads from the origin only the chunks no neighbour holds (the
 * rest still comes from the swarm), so a takeover costs the line what died with the owner, not F again.
 */
import type { Bitfield } from '../chunker/bitfield.ts'

/** What one seeder knows of another for one version. */
export interface PeerSeederState {
  /** Chunks it held when last seen (0 before its bitfield arrived). */
  have: number
  /** Whether a session with it is open now. */
  connected: boolean
  /** When (ms) its held count last grew, or when watching began. */
  lastProgressAt: number
}

/** The state after seeing the seeder hold `have` chunks (connected or not) at `now`. */
export function observeSeeder (prev: PeerSeederState | undefined, seen: { have: number | undefined, connected: boolean }, now: number): PeerSeederState {
  if (prev === undefined) return { have: seen.have ?? 0, connected: seen.connected, lastProgressAt: now }
  const have = seen.have ?? prev.have
  return { have, connected: seen.connected, lastProgressAt: have > prev.have ? now : prev.lastProgressAt }
}

export interface TakeoverInput {
  self: string
  /** Seeder ids in rendezvous order, owner first (rankSeeders); `self` among them. */
  ranking: readonly string[]
  /** What is known of the other seeders; one never seen counts as watched since `since`. */
  peers: ReadonlyMap<string, PeerSeederState>
  /** Chunks in the version. */
  total: number
  /** When (ms) this seeder began watching the version. */
  since: number
  now: number
  /** How long a seeder above may go without progress before this one pulls, ms. */
  graceMs: number
}

/** Whether a seeder ranked above `self` may still be pulling: it holds everything and is here, or it progressed within the grace. */
export function isLive (state: PeerSeederState | undefined, input: Pick<TakeoverInput, 'total' | 'since' | 'now' | 'graceMs'>): boolean {
  if (state?.connected === true && state.have >= input.total) return true
  return input.now - (state?.lastProgressAt ?? input.since) < input.graceMs
}

/** Whether `self` should pull from the origin now: it owns the version, or every seeder ranked above it is stale. */
export function shouldPull (input: TakeoverInput): boolean {
  const rank = input.ranking.indexOf(input.self)
  if (rank < 0) throw new RangeError(`${input.self} is not in the ranking`)
  return input.ranking.slice(0, rank).every(id => !isLive(input.peers.get(id), input))
}

/** The chunks `have` lacks that none of `held` (neighbours' bitfields) holds, ascending: what only the origin can give. */
export function chunksNobodyHolds (have: Bitfield, held: Iterable<Bitfield>): number[] {
  const others = [...held]
  return [...have.missingIndexes()].filter(i => !others.some(b => b.has(i)))
}
