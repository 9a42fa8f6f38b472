/**
 * Real libp2p nodes (src/peer/node.ts) on loopback for one test file: `const node = loopbackNodes()` at the
 * top, `await node()` (or `node(membership)`, a swarm key or allow-list) in a test; every node a test made is stopped after it.
 */
import { afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Membership } from '../../src/peer/membership.ts'
import { createNode, type SwarmNode } from '../../src/peer/node.ts'

export function loopbackNodes (): (membership?: Membership) => Promise<SwarmNode> {
  const nodes: SwarmNode[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(n => n.stop())) })
  return async membership => {
    const n = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], membership })
    nodes.push(n)
    return n
  }
}
