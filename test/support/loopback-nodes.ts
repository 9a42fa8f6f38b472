/**
 * Real libp2p nodes (src/peer/node.ts) on loopback for one test file: `const node = loopbackNodes()` at the
 * top, `await node()` in a test; every node a test made is stopped after it.
 */
import { afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createNode, type SwarmNode } from '../../src/peer/node.ts'

export function loopbackNodes (): () => Promise<SwarmNode> {
  const nodes: SwarmNode[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(n => n.stop())) })
  return async () => {
    const n = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(n)
    return n
  }
}
