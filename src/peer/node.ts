/**
 * One libp2p node per process: TCP, Noise, yamux, identify, ping (the DHT needs it) and a Kad-DHT under a private protocol
 * prefix. Seeders run the DHT in server mode and are the bootstrap addresses; peers are DHT clients.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Membership } from './membership.ts'
import { PROTOCOL_PREFIX } from './protocols/prefix.ts'

/** Kad-DHT under a private prefix, so modelswarm nodes never join or pollute the public DHT. */
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`

/**
 * How often a host's libp2p pings each connection to find dead ones (libp2p's default: 10 s). A ping opens a
 * stream, so it costs a multistream negotiation and a peer-store write at each end: 1.0–1.2 ms of CPU in all
 * (`npm run bench:control`); a lab host of 16 sent 168 in a 110 s run. A host needs no quicker verdict: a
 * neighbour that stops answering is routed around by its chunk requests' own timeouts.
 */
export const HOST_PING_INTERVAL_MS = 60_000
/**
 * A seeder's: libp2p's default. The seeder is where a frozen or unreachable host shows as `unresponsive`
 * (`status`, host-state.ts) before its reports are 30 s old, and where HA takeover sees a dead owner. With
 * 10,000 hosts that is 1,000 pings a second, about half a core.
 */
export const SEEDER_PING_INTERVAL_MS = 10_000

/** How long a host gives one dial to a seeder when it resolves a version (resolveFromSeeders), in ms. */
export const SEEDER_DIAL_TIMEOUT_MS = 10_000

/** libp2p's per-address dial limit: above every dial's own, so a slow handshake ends as the dial's time-out. */
const ADDRESS_DIAL_TIMEOUT_MS = 3 * SEEDER_DIAL_TIMEOUT_MS

/** Every interface, a port the kernel picks. */
export const DEFAULT_LISTEN: readonly string[] = ['/ip4/0.0.0.0/tcp/0']

export interface NodeOptions {
  privateKey: PrivateKey
  /** Multiaddrs to listen on. @default DEFAULT_LISTEN */
  listen?: string[]
  /** Serve the DHT (seeders) rather than only query it (peers). @default false */
  dhtServer?: boolean
  /** How often to ping each connection, in ms. @default HOST_PING_INTERVAL_MS */
  pingIntervalMs?: number
  /** Swarm key and allow-list (membership.ts). @default an open swarm */
  membership?: Membership
}

export type SwarmNode = Libp2p<{ dht: KadDHT, identify: Identify, ping: Ping }>

export async function createNode (opts: NodeOptions): Promise<SwarmNode> {
  const node = await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen ?? [...DEFAULT_LISTEN] },
    transports: [opts.membership?.watchInbound(tcp()) ?? tcp()],
    connectionProtector: opts.membership?.connectionProtector(),
    connectionGater: opts.membership?.connectionGater(),
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: {
      maxConnections: 512,
      // libp2p's defaults (5 connections a second from one address, 10 handshakes in progress) are for the
      // public network. Here a fleet behind one NAT gateway, or a rollout starting hundreds of hosts at once,
      // dials a seeder in a burst: with them 19 of 24 hosts dialling at once from one address were dropped
      // (test/peer/node.test.ts), and a host dropped by every seeder three rounds running exits as no member.
      // Outsiders are kept out by the swarm key and allow-list (membership.ts), not by these.
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 256,
      // A dial is bounded by its caller's signal or dialTimeout (10 s), which end it as a TimeoutError. libp2p
      // also gives each address 6 s, and a handshake that limit cuts short fails as EncryptionFailedError —
      // what a seeder dropping this host looks like (refusalReason): in the lab, 32 hosts starting at once
      // on two cores, 7 took over 6 s to finish a handshake three rounds running and exited as no members.
      addressDialTimeout: ADDRESS_DIAL_TIMEOUT_MS
    },
    connectionMonitor: { pingInterval: opts.pingIntervalMs ?? HOST_PING_INTERVAL_MS },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: opts.dhtServer !== true,
        // Inference hosts and seeders live on private networks: keep their addresses in DHT records.
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true
      })
    }
  })
  return node as unknown as SwarmNode
}

/** The IP address in a multiaddr, if it has one. */
export function ipOf (addr: Multiaddr): string | undefined {
  return addr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
}

/** Whether an IP is a loopback address (127.0.0.0/8 or ::1). */
export function isLoopback (ip: string | undefined): boolean {
  return ip !== undefined && (ip.startsWith('127.') || ip === '::1')
}

/**
 * The IPs the bulk endpoint listens on: those libp2p listens on, wildcards included, one of each
 * (`0.0.0.0` when libp2p's addresses name none, e.g. DNS names).
 */
export function bulkHostsFor (listen: readonly string[] | undefined): string[] {
  const ips = new Set((listen ?? DEFAULT_LISTEN).map(a => ipOf(multiaddr(a))).filter((ip): ip is string => ip !== undefined))
  // A wildcard takes every address of its family: specific ones beside it would collide on the port.
  const covered = (ip: string): boolean => ip !== '::' && ip !== '0.0.0.0' && ips.has(ip.includes(':') ? '::' : '0.0.0.0')
  const hosts = [...ips].filter(ip => !covered(ip))
  return hosts.length > 0 ? hosts : ['0.0.0.0']
}
