/**
 * Asking a seeder's DHT who provides a version, as any node would: a libp2p node in this process (with the
 * swarm key or without) dials the seeder and looks the version up until `enough` accepts what it found
 * (by default: anyone), for up to 10 s.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { silentLogger } from '../../src/log.ts'
import { Membership } from '../../src/peer/membership.ts'
import { createNode } from '../../src/peer/node.ts'
import { versionCid } from '../../src/peer/swarm-host.ts'

export async function dhtLookup (
  seeder: { addr: string }, headerId: string, swarmKey: Uint8Array | undefined, enough: (providers: string[]) => boolean = p => p.length > 0
): Promise<{ dialed: boolean, providers: string[] }> {
  const node = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'], membership: new Membership({ swarmKey, log: silentLogger }) })
  try {
    const dialed = await node.dial(multiaddr(seeder.addr), { signal: AbortSignal.timeout(10_000) }).then(() => true, () => false)
    const cid = await versionCid(headerId)
    let providers: string[] = []
    for (const end = Date.now() + 10_000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 250))) {
      providers = []
      try {
        for await (const p of node.contentRouting.findProviders(cid, { signal: AbortSignal.timeout(3000) })) providers.push(p.id.toString())
      } catch {
        // no route: nothing found this round
      }
      if (enough(providers) || !dialed) return { dialed, providers }
    }
    return { dialed, providers }
  } finally {
    await node.stop()
  }
}
