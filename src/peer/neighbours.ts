/**
 * A version's neighbours as seen from one node: the open sessions, the dials under way, who is banned,
 * and which members to hint to a newcomer. Sessions are opened (dial) or adopted (accepted by the
 * session handler) here; what flows over them is the swarm shell's business (version-swarm.ts).
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { randomSample, type Rng } from '../util/random.ts'
import { ipOf, isLoopback } from './node.ts'
import { openSession } from './protocols/session/client.ts'
import type { PeerHint, Role, SessionMessage } from './protocols/session/codec.ts'
import { SessionDeclinedError, type Session } from './protocols/session/session.ts'
import { SESSION_HELLO_TIMEOUT_MS } from './protocols/session/constants.ts'
import type { SwarmComponents } from './swarm-components.ts'
import type { SwarmLog } from './swarm-log.ts'

export interface NeighboursInit {
  components: SwarmComponents
  headerId: string
  role: Role
  chunkCount: number
  /** Neighbours to keep sessions with (seeders excluded). */
  maxNeighbours: number
  rng: Rng
  log: SwarmLog
  /** A session was adopted: send it what we know. */
  onJoin: (session: Session) => void
  /** A message arrived on a session. A rejection ends that session. */
  onMessage: (session: Session, m: SessionMessage) => Promise<void>
  /** A session ended; `err` is what ended it, when it did not end cleanly. */
  onLeave: (session: Session, err?: Error) => void
  /** A peer could not be dialed (a hint or a refusal named it): whoever pointed us there should know. */
  onDialFailed?: (peer: string) => void
}

/**
 * The chunks of `indexes` worth a HAVE to `session`: all of them for a seeder, whose upload policy and HA pull
 * count holders from HAVEs; for a peer, those it has not announced itself. A peer picks only chunks it lacks,
 * so a HAVE for one it holds decides nothing (the redundant HAVEs of the BEP 46 draft); in the lab (16 hosts,
 * 512 chunks) they were about half of a host's 8,000 HAVE frames, and each frame costs ~50 µs of CPU between the two
 * ends (Noise and yamux; ~96 µs before the patch that stopped yamux answering each frame with a window update;
 * `npm run bench:control`).
 */
export function haveFor (session: Pick<Session, 'remoteRole' | 'bits'>, indexes: readonly number[]): number[] {
  if (session.remoteRole === 'seeder') return [...indexes]
  return indexes.filter(i => !session.bits.has(i))
}

export class Neighbours {
  readonly #init: NeighboursInit
  readonly #sessions = new Map<string, Session>()
  readonly #dialing = new Set<string>()
  /** Dials declined by a peer whose own session is awaited (#adoptedInstead): called when it is adopted. */
  readonly #adopted = new Map<string, () => void>()
  readonly #banned = new Set<string>()
  #closed = false

  constructor (init: NeighboursInit) {
    this.#init = init
  }

  get size (): number { return this.#sessions.size }
  get banned (): ReadonlySet<string> { return this.#banned }

  all (): Session[] { return [...this.#sessions.values()] }
  /** The session with `peer` (its peer id as a string), if any. */
  get (peer: string): Session | undefined { return this.#sessions.get(peer) }
  isBanned (peer: string): boolean { return this.#banned.has(peer) }

  /** Whether to open more sessions with peers (seeders do not count against the limit), `extra` above it. */
  wantMore (extra = 0): boolean {
    let peers = 0
    for (const s of this.#sessions.values()) if (s.remoteRole === 'peer') peers++
    return peers + this.#dialing.size < this.#init.maxNeighbours + extra
  }

  /** Dials a peer and opens a session (no-op when one exists, is being dialed, or the peer is banned). */
  async connect (hint: PeerHint | PeerId): Promise<void> {
    const { components, headerId, role, chunkCount, log } = this.#init
    let id: PeerId
    if ('toMultihash' in hint) id = hint
    else {
      try {
        id = peerIdFromString(hint.id)
      } catch (err) {
        // A hint or a refusal naming something that is no peer id (a faulty or hostile neighbour): callers
        // do not await this, so a throw would end the process.
        log.sessionDialFailed(hint.id, err as Error)
        this.#init.onDialFailed?.(hint.id)
        return
      }
    }
    const key = id.toString()
    if (this.#closed || key === this.#selfKey || this.#sessions.has(key) || this.#dialing.has(key) || this.#banned.has(key)) return
    this.#dialing.add(key)
    try {
      if (!('toMultihash' in hint) && hint.addrs.length > 0) await components.peerStore.merge(id, { multiaddrs: hint.addrs.map(a => multiaddr(a)) })
      this.attach(await openSession(components, id, headerId, role, chunkCount))
    } catch (err) {
      // The peer dialed us at the same moment and its session won (acceptsInbound): nothing failed.
      if (await this.#adoptedInstead(key, err)) return
      log.sessionDialFailed(key, err as Error)
      this.#init.onDialFailed?.(key)
    } finally {
      this.#dialing.delete(key)
    }
  }

  /**
   * Whether a session `peer` opened stands in for our failed dial to it. A peer whose id sorts first
   * declines ours while its own dial to us is under way (acceptsInbound), and its session may arrive just
   * after the decline: it is awaited for up to a hello's deadline rather than reported as a failed dial,
   * which would free the seeder of chunks it named that peer for.
   */
  async #adoptedInstead (peer: string, err: unknown): Promise<boolean> {
    if (this.#sessions.has(peer)) return true
    if (!(err instanceof SessionDeclinedError) || peer > this.#selfKey || this.#closed) return false
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, SESSION_HELLO_TIMEOUT_MS)
      this.#adopted.set(peer, () => { clearTimeout(timer); resolve() })
    })
    this.#adopted.delete(peer)
    return this.#sessions.has(peer)
  }

  /**
   * Whether to take a session `peer` opened, before answering its hello: not when it would lose to ours
   * (#wins) — our dial to it is under way, or our session with it is open, and our peer id sorts first.
   */
  acceptsInbound (peer: string): boolean {
    if (this.#selfKey > peer) return true
    const old = this.#sessions.get(peer)
    return !this.#dialing.has(peer) && (old === undefined || old.closed)
  }

  /**
   * Which of two open sessions with one peer to keep: the one the lower peer id dialed, so that when two
   * hosts dial each other at once both keep the same one. Keeping whichever each side adopted first made
   * each close the other's when the hellos crossed: on loopback (4 hosts) two pairs of 6 ended with no
   * session, their requests aborted, until a later re-dial. Two dialed by the same side: the older stays.
   */
  #wins (session: Session, old: Session): boolean {
    const dialer = (s: Session): string => s.outbound ? this.#selfKey : s.peerKey
    const lower = this.#selfKey < session.peerKey ? this.#selfKey : session.peerKey
    return dialer(session) === lower && dialer(old) !== lower
  }

  get #selfKey (): string { return this.#init.components.peerId.toString() }

  /** Adopts a handshaken session: announces it, then reads the neighbour's messages until it ends. */
  attach (session: Session): void {
    const key = session.peerKey
    if (this.#closed || this.#banned.has(key)) {
      session.close()
      return
    }
    const old = this.#sessions.get(key)
    const open = old !== undefined && !old.closed ? old : undefined
    if (open !== undefined && !this.#wins(session, open)) {
      session.close()
      return
    }
    this.#sessions.set(key, session)
    // Replaced, not left: the neighbour stays (old's end finds another session in its place).
    open?.close()
    this.#adopted.get(key)?.()
    this.#init.log.neighbourJoined(key, session.remoteRole)
    this.#init.onJoin(session)
    let ended: Error | undefined
    session.run(m => this.#init.onMessage(session, m))
      .catch(err => {
        ended = err as Error
        this.#init.log.sessionEnded(key, ended)
      })
      .finally(() => {
        if (this.#sessions.get(key) !== session) return
        this.#sessions.delete(key)
        this.#init.onLeave(session, ended)
      })
  }

  /** Sends `m` to every neighbour but `except`. */
  broadcast (m: SessionMessage, except?: Session): void {
    for (const s of this.#sessions.values()) if (s !== except) s.send(m)
  }

  /** Tells every neighbour this node now holds `indexes`, each only what it needs to hear (haveFor). */
  announce (indexes: readonly number[]): void {
    for (const s of this.#sessions.values()) {
      const news = haveFor(s, indexes)
      if (news.length > 0) s.send({ type: 'have', indexes: news })
    }
  }

  /** Bans the peer for the rest of this process's life in this swarm and hangs up on it. Returns false if it already was. */
  ban (session: Session, err: Error): boolean {
    const key = session.peerKey
    if (this.#banned.has(key)) return false
    this.#banned.add(key)
    this.#init.log.peerBanned(key, err.message)
    session.close(err)
    void this.#init.components.hangUp(session.peer).catch(() => {})
    return true
  }

  /**
   * A random sample of members for a newcomer, drawn from the swarm's Rng (the seeder sees everyone, so
   * this spreads newcomers over the swarm). Not those holding the most: the simulator (npm run simulate,
   * 30 % late joiners at N = 100) finished at 3.00 × the bound with them and 1.42 × with a random sample,
   * since every newcomer then queued on the same few full hosts. A member is hinted only with addresses
   * it can be dialed at; one with none known yet is left out.
   */
  async hintsFor (exclude: string): Promise<PeerHint[]> {
    const members = randomSample([...this.#sessions.values()], this.#init.maxNeighbours, this.#init.rng, s => s.peerKey !== exclude && s.remoteRole === 'peer')
    const hints = await Promise.all(members.map(async s => ({ id: s.peerKey, addrs: await this.dialable(s.peer) })))
    return hints.filter(h => h.addrs.length > 0)
  }

  /**
   * Where others can dial `peer`. The address we see on a connection it opened is its source port, where
   * nothing listens (hosts dialed `10.77.0.12:51440` and were refused): its announced listen addresses
   * (identify) are used instead, those on an IP we reach it at first; loopback ones only for a peer we
   * reach over loopback. A connection we opened shows an address it listens on, so that one is kept.
   */
  async dialable (peer: PeerId): Promise<string[]> {
    const { components } = this.#init
    const conns = components.getConnections(peer)
    const seenIps = new Set(conns.map(c => ipOf(c.remoteAddr)))
    const loopback = [...seenIps].some(isLoopback)
    const announced = await components.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), () => [])
    const usable = announced.filter(a => !a.toString().includes('/p2p-circuit') && (loopback || !isLoopback(ipOf(a))))
    usable.sort((a, b) => Number(seenIps.has(ipOf(b))) - Number(seenIps.has(ipOf(a))))
    const dialed = conns.filter(c => c.direction === 'outbound').map(c => c.remoteAddr)
    return [...new Set([...dialed, ...usable].map(a => a.toString()))]
  }

  close (): void {
    this.#closed = true
    for (const adopted of this.#adopted.values()) adopted()
    for (const s of this.#sessions.values()) s.close()
  }
}
