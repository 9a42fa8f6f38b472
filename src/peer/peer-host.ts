/**
 * What a fetching process runs on the network: its libp2p node, its SwarmHost and its TLS bulk endpoint.
 * One per process however many versions it fetches and seeds over its life (follow mode, the read
 * gateway): every version's swarm then runs on the same listen addresses and bulk port — fixed ones where a
 * NetworkPolicy opens only known ports (deploy/helm) — under one peer id, and each fetch only adds and
 * removes its own VersionSwarm (issue #15: a node per version failed every later one with EADDRINUSE).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Logger } from '../log.ts'
import { parseBootstrap, type FetchOptions } from './fetch.ts'
import { Membership } from './membership.ts'
import { bulkHostsFor, createNode, type SwarmNode } from './node.ts'
import { SwarmHost } from './swarm-host.ts'

/** What the node and host are made from: fetch's options of the same names. */
export type PeerHostOptions = Pick<FetchOptions, 'bootstrap' | 'trust' | 'listen' | 'bulk' | 'bulkPort' | 'privateKey' | 'swarmKey' | 'allow' | 'log'>

export interface PeerHost {
  node: SwarmNode
  host: SwarmHost
  /** Closes the bulk endpoint and stops the node. */
  stop: () => Promise<void>
}

/**
 * Starts the node (listening on `listen`), the host's protocol handlers and, unless `bulk` is false, the
 * bulk endpoint on `bulkPort`. The bootstrap and trusted seeders are always admitted by the allow-list. The
 * host answers resolve requests for every version it holds a swarm of (so peers can relay signed headers).
 * @throws InvalidInputError for a bad bootstrap address; what libp2p or the bulk endpoint throws when it
 *   cannot listen (EADDRINUSE), after stopping what it started
 */
export async function startPeerHost (opts: PeerHostOptions): Promise<PeerHost> {
  const membership = new Membership({
    swarmKey: opts.swarmKey,
    allow: opts.allow?.withPeers([...opts.bootstrap.map(a => parseBootstrap(a).peer.toString()), ...opts.trust]),
    log: opts.log.child({ component: 'membership' })
  })
  const node = await createNode({ privateKey: opts.privateKey ?? await generateKeyPair('Ed25519'), listen: opts.listen, membership })
  const log: Logger = opts.log.child({ component: 'fetch', peer: node.peerId.toString() })
  const host = new SwarmHost(node, log)
  const stop = async (): Promise<void> => {
    await host.stop()
    await node.stop()
  }
  try {
    const admit = (ip: string | undefined): boolean => membership.admitsBulk(ip)
    await host.start({ bulk: opts.bulk === false ? undefined : { hosts: bulkHostsFor(opts.listen), port: opts.bulkPort ?? 0, admit } })
  } catch (err) {
    await stop()
    throw err
  }
  host.setResolver(ref => host.find(s => s.meta.header.name === ref.name && s.meta.header.version === ref.version)?.meta.signedItems())
  return { node, host, stop }
}
