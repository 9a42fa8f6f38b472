/**
 * Two hosts that dial each other at the same moment keep one session between them, the same on both sides,
 * over real libp2p nodes (TCP loopback, Noise, yamux) with the real session handler. Keeping whichever
 * each side adopted first made each close the other's: on loopback (4 hosts) two pairs of 6 were left with
 * no session and their chunk requests aborted, until a later re-dial.
 */
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../../../src/log.ts'
import type { Neighbours } from '../../../../src/peer/neighbours.ts'
import { acceptSession } from '../../../../src/peer/protocols/session/handler.ts'
import { SESSION_PROTOCOL } from '../../../../src/peer/protocols/session/constants.ts'
import type { Session } from '../../../../src/peer/protocols/session/session.ts'
import type { SwarmNode } from '../../../../src/peer/node.ts'
import type { SwarmComponents } from '../../../../src/peer/swarm-components.ts'
import { until } from '../../../support/poll.ts'
import { sleep } from '../../../../src/util/sleep.ts'
import { loopbackNodes } from '../../../support/loopback-nodes.ts'
import { testNeighbours } from '../../../support/test-neighbours.ts'

const node = loopbackNodes()
/** A version's header id: 32 bytes, hex (the hello carries it). */
const HEADER = 'cd'.repeat(32)
const REPLY_DELAY_MS = 150

/**
 * The node's dials, each reading what comes back REPLY_DELAY_MS late, as over a link with latency: each side
 * adopts the other's session before its own dial's hello is answered, as when two hosts dial at once.
 */
function lateReplies (n: SwarmNode): SwarmComponents['dialProtocol'] {
  return async (peer, protocol, options) => {
    const stream = await n.dialProtocol(peer, protocol, options)
    return new Proxy(stream, {
      get (target, prop) {
        if (prop === Symbol.asyncIterator) {
          return () => {
            const it = target[Symbol.asyncIterator]()
            // Asked for at once (a stream's end is only seen by a read waiting for it), handed over late.
            return { next: async () => { const next = it.next(); await sleep(REPLY_DELAY_MS); return await next }, return: it.return?.bind(it) }
          }
        }
        const v = Reflect.get(target, prop, target) as unknown
        return typeof v === 'function' ? v.bind(target) : v
      }
    })
  }
}

/** A node's neighbours for one version, its session handler registered as the swarm host registers it. */
async function member (n: SwarmNode): Promise<{ neighbours: Neighbours, left: Session[], dialFailed: string[] }> {
  const left: Session[] = []
  const dialFailed: string[] = []
  const components: SwarmComponents = {
    peerId: n.peerId,
    dialProtocol: lateReplies(n),
    getConnections: peer => n.getConnections(peer),
    hangUp: async peer => { await n.hangUp(peer) },
    peerStore: n.peerStore
  }
  const neighbours = testNeighbours(components, { headerId: HEADER, onLeave: s => { left.push(s) }, onDialFailed: p => { dialFailed.push(p) } })
  await n.handle(SESSION_PROTOCOL, (stream, conn) => acceptSession(stream, conn, () => ({
    role: 'peer', chunkCount: 8, attach: s => neighbours.attach(s), accepts: p => neighbours.acceptsInbound(p)
  }), silentLogger))
  return { neighbours, left, dialFailed }
}

describe('session simultaneous open', () => {
  it('both sides dial at once: one session survives on each side, the one the lower peer id dialed; no dial counts as failed', async () => {
    for (let round = 0; round < 5; round++) {
      const a = await node()
      const b = await node()
      const ma = await member(a)
      const mb = await member(b)
      // Connected already, so both session streams open at once over one connection.
      await a.dial(b.getMultiaddrs()[0]!)
      await until(async () => b.getConnections(a.peerId).length > 0, 5_000)
      await Promise.all([ma.neighbours.connect(b.peerId), mb.neighbours.connect(a.peerId)])
      await until(async () => ma.neighbours.size === 1 && mb.neighbours.size === 1, 5_000)
      // Settled: nothing closes afterwards.
      await sleep(300)
      const sa = ma.neighbours.get(b.peerId.toString())
      const sb = mb.neighbours.get(a.peerId.toString())
      expect(sa?.closed).toBe(false)
      expect(sb?.closed).toBe(false)
      expect([ma.left.length, mb.left.length]).toEqual([0, 0])
      expect([...ma.dialFailed, ...mb.dialFailed]).toEqual([])
      await Promise.all([a.stop(), b.stop()])
    }
  }, 30_000)
})
