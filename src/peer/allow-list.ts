/**
 * Who may be a member, by peer id and by address: `--allow-peers` and `--allow-cidr`. Pure decisions; the
 * connection gater (membership.ts) and the bulk endpoint ask them.
 *
 * Each list that is given must admit a node: with both, a node needs a listed peer id AND an address in a
 * listed range. A list not given admits everyone.
 */
import { BlockList, isIP } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidInputError } from '../errors.ts'

export interface AllowListInit {
  /** Peer ids (12D3KooW…). Undefined or empty: any peer id. */
  peers?: readonly string[]
  /** CIDR ranges (10.0.0.0/8, fd00::/8) or single addresses. Undefined or empty: any address. */
  cidrs?: readonly string[]
}

export class AllowList {
  readonly #peers: ReadonlySet<string> | undefined
  readonly #ranges: BlockList | undefined
  readonly cidrs: readonly string[]

  /** @throws InvalidInputError naming the flag and the value that is not a peer id or a CIDR */
  constructor (init: AllowListInit = {}) {
    const peers = init.peers ?? []
    this.#peers = peers.length === 0 ? undefined : new Set(peers.map(checkPeerId))
    this.cidrs = init.cidrs ?? []
    if (this.cidrs.length > 0) {
      const ranges = new BlockList()
      for (const c of this.cidrs) {
        const { address, prefix, family } = parseCidr(c)
        ranges.addSubnet(address, prefix, family)
      }
      this.#ranges = ranges
    }
  }

  /** Whether any list is given (otherwise everyone is admitted and no gater is needed). */
  get restricted (): boolean { return this.#peers !== undefined || this.#ranges !== undefined }

  get peerCount (): number { return this.#peers?.size ?? 0 }

  /** Whether the peer id is admitted. */
  allowsPeer (peerId: string): boolean {
    return this.#peers === undefined || this.#peers.has(peerId)
  }

  /**
   * Whether the IP is admitted. An address that is not an IP (undefined: a DNS name not resolved yet) is
   * admitted here; its connection is checked again once it has an IP.
   */
  allowsIp (ip: string | undefined): boolean {
    if (this.#ranges === undefined || ip === undefined) return true
    const family = isIP(ip)
    if (family === 0) return false
    return this.#ranges.check(ip, family === 6 ? 'ipv6' : 'ipv4')
  }

  /** The same lists with more peers admitted (a fetch always admits the seeders it bootstraps from). */
  withPeers (extra: readonly string[]): AllowList {
    return this.#peers === undefined ? this : new AllowList({ peers: [...this.#peers, ...extra], cidrs: this.cidrs })
  }
}

function checkPeerId (s: string): string {
  try {
    return peerIdFromString(s).toString()
  } catch (err) {
    throw new InvalidInputError(`--allow-peers ${JSON.stringify(s)} is not a peer id (e.g. 12D3KooW…, as \`modelswarm keygen --identity-file\` prints)`, { cause: err })
  }
}

/**
 * `10.0.0.0/8`, `fd00::/8`, or one address (`10.1.2.3` = /32, `fd00::1` = /128).
 * @throws InvalidInputError when it is neither
 */
export function parseCidr (s: string): { address: string, prefix: number, family: 'ipv4' | 'ipv6' } {
  const [address = '', prefixText, ...rest] = s.trim().split('/')
  const v = isIP(address)
  const max = v === 6 ? 128 : 32
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (v === 0 || rest.length > 0 || !Number.isInteger(prefix) || prefix < 0 || prefix > max || prefixText?.trim() === '') {
    throw new InvalidInputError(`--allow-cidr ${JSON.stringify(s)} is not an address range (e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8)`)
  }
  return { address, prefix, family: v === 6 ? 'ipv6' : 'ipv4' }
}
