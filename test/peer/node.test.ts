/**
 * The libp2p node every process runs (src/peer/node.ts), with real nodes on loopback: a burst of hosts
 * from one address — a fleet behind one NAT gateway, or starting at once — is let in. libp2p's defaults
 * drop more than 5 connections a second from one address and more than 10 handshakes in progress, and a
 * host whose dials to every seeder are dropped three rounds running concludes it is no member (exit 3).
 */
import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { refusalReason } from '../../src/peer/membership.ts'
import { errorOf } from '../support/errors.ts'
import { loopbackNodes } from '../support/loopback-nodes.ts'
import { until } from '../support/poll.ts'

const node = loopbackNodes()

describe('libp2p node', () => {
  it('accepts 24 hosts dialling at once from one address', async () => {
    const seeder = await node()
    const hosts = await Promise.all(Array.from({ length: 24 }, () => node()))
    const results = await Promise.allSettled(hosts.map(h => h.dial(seeder.getMultiaddrs()[0]!)))
    const failed = results.filter(r => r.status === 'rejected').map(r => String((r as PromiseRejectedResult).reason))
    expect(failed).toEqual([])
    // The seeder's side registers each connection once its upgrade completes.
    const all = new Set(hosts.map(h => h.peerId.toString()))
    expect(await until(async () => seeder.getPeers().filter(p => all.has(p.toString())).length === 24, 5000)).toBe(true)
  }, 60_000)

  it('ends a handshake that stalls past libp2p\'s per-address limit (6 s) as the caller\'s time-out, not as a refusal', async () => {
    // A listener that accepts and never answers: a seeder too starved of CPU to finish the handshake. libp2p
    // cut such a dial at 6 s as EncryptionFailedError, which reads as the seeder dropping this host.
    const sockets: Socket[] = []
    const blackHole = createServer(s => { sockets.push(s) }).listen(0, '127.0.0.1')
    await once(blackHole, 'listening')
    try {
      const host = await node()
      const { port } = blackHole.address() as { port: number }
      const err = await errorOf(host.dial(multiaddr(`/ip4/127.0.0.1/tcp/${port}`), { signal: AbortSignal.timeout(8000) }))
      expect((err as Error).name).toBe('TimeoutError')
      expect(refusalReason(err)).toBeUndefined()
    } finally {
      for (const s of sockets) s.destroy()
      blackHole.close()
    }
  }, 30_000)
})
