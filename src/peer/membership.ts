/**
 * Members only: what keeps outsiders out of a swarm, in libp2p's terms.
 *
 * - A **swarm key** makes the swarm a libp2p private network (@libp2p/pnet): every connection is
 *   XSalsa20-encrypted under the key before Noise even starts, so a node without it cannot complete a
 *   handshake with any member — no session, no chunk, no DHT query, no bulk grant. The key carries no proof
 *   of itself, so a mismatch is found on the first bytes received (swarm-key-check.ts), on every node.
 * - An **allow-list** (allow-list.ts) is enforced by the connection gater: an address outside
 *   `--allow-cidr` is dropped as the TCP connection arrives, a peer id outside `--allow-peers` once Noise
 *   has authenticated it; members never dial either, so DHT records naming outsiders lead nowhere.
 * - The TLS bulk path needs a grant, which only a libp2p session hands out; the bulk endpoint also drops
 *   connections from addresses outside `--allow-cidr` before their TLS handshake (bulk-server.ts).
 *
 * Every refusal of an inbound connection is logged at warn (at most once a minute per remote address,
 * with a count of those not logged), so the operator sees who knocked and why.
 */
import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionGater, ConnectionProtector, CreateListenerOptions, Listener, MultiaddrConnection, PeerId, Transport, Upgrader } from '@libp2p/interface'
import type { Logger } from '../log.ts'
import type { AllowList } from './allow-list.ts'
import { ipOf } from './node.ts'
import { formatSwarmKey, swarmKeyFingerprint } from './swarm-key.ts'
import { checkSwarmKey } from './swarm-key-check.ts'

export const MEMBERSHIP_MSG = { refused: 'refused a connection' } as const

const KEY_MISMATCH = 'libp2p handshake failed: the node has no swarm key or another one (or is no libp2p node)'
const OPEN_SWARM_KNOCKED = 'libp2p handshake failed: the node holds a swarm key, and this swarm is open (no --swarm-key-file here), or it is no libp2p node'

/** One remote address's refusals are logged at most this often (a port scan must not flood the log). */
const REFUSAL_LOG_INTERVAL_MS = 60_000
/** Remote addresses remembered for that; the oldest is forgotten beyond this. */
const MAX_REMEMBERED = 4096

export interface MembershipInit {
  /** The 32-byte swarm key (swarm-key.ts); undefined: an open swarm. */
  swarmKey?: Uint8Array
  allow?: AllowList
  log: Logger
  now?: () => number
}

export class Membership {
  readonly swarmKey: Uint8Array | undefined
  readonly allow: AllowList | undefined
  readonly #log: Logger
  readonly #now: () => number
  readonly #logged = new Map<string, { at: number, suppressed: number }>()
  /** Connections whose first bytes showed a swarm key mismatch (their upgrade fails just after). */
  readonly #keyMismatched = new WeakSet<object>()

  constructor (init: MembershipInit) {
    this.swarmKey = init.swarmKey
    this.allow = init.allow?.restricted === true ? init.allow : undefined
    this.#log = init.log
    this.#now = init.now ?? Date.now
  }

  /** What to log at start: whether the swarm is private (and the key's fingerprint), and the lists. */
  describe (): Record<string, unknown> {
    return {
      swarmKey: this.swarmKey === undefined ? 'none (open swarm)' : swarmKeyFingerprint(this.swarmKey),
      ...(this.allow === undefined ? {} : { allowPeers: this.allow.peerCount, allowCidr: this.allow.cidrs })
    }
  }

  /**
   * libp2p's `connectionProtector`: with a swarm key, @libp2p/pnet's; with a key or without, a connection
   * whose first bytes show the other side holds another key (or none, or one in an open swarm) is closed
   * at once and logged as refused (swarm-key-check.ts).
   */
  connectionProtector (): () => ConnectionProtector {
    const pnet = this.swarmKey === undefined ? undefined : preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(this.swarmKey)) })
    return checkSwarmKey(pnet, connection => this.#keyMismatched.add(connection))
  }

  /** libp2p's `connectionGater`: the allow-list at every step a connection passes. */
  connectionGater (): ConnectionGater {
    const allow = this.allow
    if (allow === undefined) return {}
    const peerOk = (id: PeerId): boolean => allow.allowsPeer(id.toString())
    return {
      denyDialPeer: id => !peerOk(id),
      denyDialMultiaddr: ma => !allow.allowsIp(ipOf(ma)),
      denyOutboundConnection: (id, conn) => !peerOk(id) || !allow.allowsIp(ipOf(conn.remoteAddr)),
      denyOutboundEncryptedConnection: id => !peerOk(id),
      denyInboundConnection: conn => {
        const ip = ipOf(conn.remoteAddr)
        if (allow.allowsIp(ip)) return false
        this.refused(ip ?? conn.remoteAddr.toString(), 'its address is outside --allow-cidr')
        return true
      },
      denyInboundEncryptedConnection: (id, conn) => {
        if (peerOk(id)) return false
        this.refused(ipOf(conn.remoteAddr) ?? conn.remoteAddr.toString(), 'its peer id is not in --allow-peers', { peer: id.toString() })
        return true
      }
    }
  }

  /**
   * Wraps a transport so that every inbound connection whose first bytes showed a swarm key mismatch
   * (connectionProtector) is logged as refused, and any other failed upgrade at debug: a dialer that gave
   * up mid-handshake (a host starting on a busy machine) is no outsider. Refusals by the gater are logged
   * by the gater.
   */
  watchInbound<C> (factory: (components: C) => Transport): (components: C) => Transport {
    return components => {
      const transport = factory(components)
      const createListener = transport.createListener.bind(transport)
      transport.createListener = (opts: CreateListenerOptions): Listener => createListener({ ...opts, upgrader: this.#watchUpgrader(opts.upgrader) })
      return transport
    }
  }

  /** Whether the bulk endpoint may talk to a connection from `ip` (logged as refused when not). */
  admitsBulk (ip: string | undefined): boolean {
    if (this.allow === undefined || this.allow.allowsIp(ip)) return true
    this.refused(ip ?? 'unknown', 'its address is outside --allow-cidr (bulk endpoint)')
    return false
  }

  /**
   * Logs a refused inbound connection at warn, at most once a minute per remote address and reason.
   * `reason` is one of a few fixed phrases (it keys the rate limit); `detail` the error, `peer` its id.
   */
  refused (remote: string, reason: string, extra: { peer?: string, detail?: string } = {}): void {
    const now = this.#now()
    const key = `${remote} ${reason}`
    const last = this.#logged.get(key)
    if (last !== undefined && now - last.at < REFUSAL_LOG_INTERVAL_MS) {
      last.suppressed++
      return
    }
    this.#logged.delete(key)
    this.#logged.set(key, { at: now, suppressed: 0 })
    if (this.#logged.size > MAX_REMEMBERED) this.#logged.delete(this.#logged.keys().next().value!)
    this.#log.warn({ remote, reason, ...extra, ...(last === undefined || last.suppressed === 0 ? {} : { notLogged: last.suppressed }) }, MEMBERSHIP_MSG.refused)
  }

  #watchUpgrader (upgrader: Upgrader): Upgrader {
    const upgradeInbound = upgrader.upgradeInbound.bind(upgrader)
    const watched = Object.create(upgrader) as Upgrader
    watched.upgradeInbound = async (maConn: MultiaddrConnection, opts: Parameters<Upgrader['upgradeInbound']>[1]): Promise<void> => {
      try {
        await upgradeInbound(maConn, opts)
      } catch (err) {
        const e = err as Error
        const remote = ipOf(maConn.remoteAddr) ?? maConn.remoteAddr.toString()
        const detail = `${e.name}: ${e.message}`
        if (this.#keyMismatched.has(maConn)) {
          this.refused(remote, this.swarmKey === undefined ? OPEN_SWARM_KNOCKED : KEY_MISMATCH, { detail })
        } else if (e.name !== 'ConnectionInterceptedError' && e.name !== 'AbortError') {
          // The gater already said why; a node shutting down aborts upgrades in flight.
          this.#log.debug({ remote, detail }, 'inbound libp2p handshake failed')
        }
        throw err
      }
    }
    return watched
  }
}

/**
 * Why a failed dial or exchange with a node that is up looks like that node refusing us, or undefined
 * when it looks like anything else (down, unreachable, slow). From what js-libp2p 3 reports, measured
 * against nodes with another swarm key, none, and gaters denying us:
 * - EncryptionFailedError (or ECONNRESET while connecting): the handshake's bytes did not decrypt or the
 *   connection was dropped during it — another swarm key, only one side has one, or the node's gater
 *   dropped our address (outside --allow-cidr); from this side the three look the same;
 * - ConnectionClosedError, MuxerClosedError, UnexpectedEOFError or a bare stream `close` event (what
 *   dialProtocol rejects with when the connection dies under it) after the handshake: dropped once our
 *   peer id was known (not in --allow-peers).
 */
export function refusalReason (err: unknown): string | undefined {
  if (err instanceof Event) {
    const inner = (err as Event & { error?: unknown }).error
    return inner === undefined ? CLOSED_AFTER_HANDSHAKE : refusalReason(inner)
  }
  const e = err as { name?: string, code?: string, message?: string, errors?: unknown[] } | null | undefined
  if (e == null) return undefined
  if (Array.isArray(e.errors)) return e.errors.map(refusalReason).find(r => r !== undefined)
  if (e.name === 'EncryptionFailedError' || e.code === 'ECONNRESET' || /ECONNRESET/.test(e.message ?? '')) return DROPPED_HANDSHAKE
  if (e.name === 'ConnectionClosedError' || e.name === 'MuxerClosedError' || e.name === 'UnexpectedEOFError') return CLOSED_AFTER_HANDSHAKE
  return undefined
}

const DROPPED_HANDSHAKE = 'it dropped the libp2p handshake: this host lacks its swarm key (or holds another), or is outside its --allow-cidr'
const CLOSED_AFTER_HANDSHAKE = 'it closed the connection once it knew this host\'s peer id: not in its --allow-peers'
