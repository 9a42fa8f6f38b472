/**
 * A host announces itself in the seeders' DHT as a member of the version's swarm once it holds chunks to give
 * (fetch.ts): a real seeder, a real fetch process, and a node of this process asking the seeder's DHT.
 */
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { dhtLookup } from '../support/dht-lookup.ts'
import { makeModel, seederVersions, startFetch, startSeeder, track } from '../support/cli.ts'

describe('DHT membership', () => {
  it('a host that holds chunks is found in the DHT beside the seeder', async () => {
    const model = await makeModel(4 * 1024 * 1024)
    const seeder = track(await startSeeder(model))
    const host = track(startFetch(seeder, join(model.root, 'out'), ['--linger', '1m']))
    const hostId = (await host.waitFor(m => m.msg === 'fetching')).peer as string
    await host.waitFor(m => m.ok === true)
    const { headerId } = (await seederVersions(seeder.admin))[0]!
    const found = await dhtLookup(seeder, headerId as string, undefined, p => p.includes(hostId) && p.includes(seeder.peerId))
    expect({ ...found, providers: found.providers.sort() }).toEqual({ dialed: true, providers: [hostId, seeder.peerId].sort() })
  })
})
