/**
 * The few parts of a libp2p node a version's swarm uses, declared as an interface in the way js-libp2p
 * services declare their components (`PingComponents` is just `{ registrar, connectionManager }`), so the
 * swarm's shells run in unit tests and in the simulator with in-memory parts. A libp2p node (SwarmNode)
 * satisfies it as it is.
 */
import type { AbortOptions, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface SwarmComponents {
  readonly peerId: PeerId
  /** Opens a stream of `protocol` to `peer`, dialing it first if needed. */
  dialProtocol: (peer: PeerId, protocol: string, options?: AbortOptions) => Promise<Stream>
  /**
   * Open connections to `peer`: where it is reached. On a connection the peer opened (inbound) that is
   * its source address, whose port nothing listens on; on one we opened, an address it listens on.
   */
  getConnections: (peer?: PeerId) => ReadonlyArray<{ readonly remoteAddr: Multiaddr, readonly direction: 'inbound' | 'outbound' }>
  /** Closes every connection to `peer`. */
  hangUp: (peer: PeerId) => Promise<void>
  /** Where to dial peers (neighbour hints add addresses). */
  readonly peerStore: {
    merge: (peer: PeerId, data: { multiaddrs: Multiaddr[] }) => Promise<unknown>
    /** What is known of a peer, its announced listen addresses (identify) among it; rejects for an unknown peer. */
    get: (peer: PeerId) => Promise<{ addresses: ReadonlyArray<{ multiaddr: Multiaddr }> }>
  }
}
