/**
 * Neighbour hints with in-memory components: a member is hinted at addresses it listens on, never at the
 * source port of a connection it opened (hosts dialed `10.77.0.12:51440` and were refused), and one with
 * no known listen address is not hinted at all. Ties are ordered by the swarm's seeded Rng.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, Stream } from '@libp2p/interface'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { haveFor } from '../../src/peer/neighbours.ts'
import { testNeighbours } from '../support/test-neighbours.ts'
import { decodeSessionMessage } from '../../src/peer/protocols/session/codec.ts'
import { ByteReader } from '../../src/peer/protocols/byte-reader.ts'
import { Session } from '../../src/peer/protocols/session/session.ts'
import type { SwarmComponents } from '../../src/peer/swarm-components.ts'

const newPeer = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** A session over a stream that accepts writes (kept in `sent`, if given) and never delivers a frame. */
function idleSession (peer: PeerId, role: 'seeder' | 'peer', sent?: Uint8Array[]): Session {
  const stream = {
    send: (data: Uint8Array) => { sent?.push(data); return true },
    writableNeedsDrain: false, close: async () => {}, abort: () => {}, addEventListener: () => {}, removeEventListener: () => {}
  } as unknown as Stream
  const never: AsyncIterable<Uint8Array> = { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) }
  const reader = new ByteReader(never, { idleMs: 3_600_000, abort: () => {}, what: 'test' })
  return new Session(stream, reader, peer, role, 8)
}

describe('Neighbours.hintsFor', () => {
  it('hints listen addresses, those on the IP the member is reached at first; never a source port, loopback only over loopback', async () => {
    const self = await newPeer()
    const a = await newPeer()
    const b = await newPeer()
    const c = await newPeer()
    const conns = new Map<string, Array<{ remoteAddr: Multiaddr, direction: 'inbound' | 'outbound' }>>([
      [a.toString(), [{ remoteAddr: multiaddr('/ip4/10.77.1.5/tcp/51440'), direction: 'inbound' }]],
      [b.toString(), [{ remoteAddr: multiaddr('/ip4/10.77.1.6/tcp/4001'), direction: 'outbound' }]],
      [c.toString(), [{ remoteAddr: multiaddr('/ip4/10.77.1.7/tcp/40000'), direction: 'inbound' }]]
    ])
    const announced = new Map<string, string[]>([
      [a.toString(), ['/ip4/127.0.0.1/tcp/4001', '/ip4/172.17.0.1/tcp/4001', '/ip4/10.77.1.5/tcp/4001']],
      [b.toString(), ['/ip4/10.77.1.6/tcp/4001']]
      // c: identify has not answered yet
    ])
    const components: SwarmComponents = {
      peerId: self,
      dialProtocol: async () => { throw new Error('no dialing in this test') },
      getConnections: peer => conns.get(peer!.toString()) ?? [],
      hangUp: async () => {},
      peerStore: {
        merge: async () => {},
        get: async peer => {
          const addrs = announced.get(peer.toString())
          if (addrs === undefined) throw new Error('not found')
          return { addresses: addrs.map(m => ({ multiaddr: multiaddr(m) })) }
        }
      }
    }
    const neighbours = testNeighbours(components, { role: 'seeder' })
    const newcomer = await newPeer()
    for (const p of [a, b, c, newcomer]) neighbours.attach(idleSession(p, 'peer'))
    const hints = await neighbours.hintsFor(newcomer.toString())
    expect(hints).toEqual(expect.arrayContaining([
      { id: a.toString(), addrs: ['/ip4/10.77.1.5/tcp/4001', '/ip4/172.17.0.1/tcp/4001'] },
      { id: b.toString(), addrs: ['/ip4/10.77.1.6/tcp/4001'] }
    ]))
    expect(hints).toHaveLength(2)
    expect(JSON.stringify(hints)).not.toMatch(/51440|40000/)
    neighbours.close()
  })
})

describe('Neighbours.announce', () => {
  it('tells a peer only of chunks it has not announced, a seeder of all; no frame when a peer needs none', async () => {
    const components = {
      peerId: await newPeer(),
      dialProtocol: async () => { throw new Error('no dialing in this test') },
      getConnections: () => [],
      hangUp: async () => {},
      peerStore: { merge: async () => {}, get: async () => { throw new Error('not found') } }
    } as SwarmComponents
    const neighbours = testNeighbours(components)
    const frames = { lacking: [] as Uint8Array[], holding: [] as Uint8Array[], full: [] as Uint8Array[], seeder: [] as Uint8Array[] }
    const lacking = idleSession(await newPeer(), 'peer', frames.lacking)
    const holding = idleSession(await newPeer(), 'peer', frames.holding)
    const full = idleSession(await newPeer(), 'peer', frames.full)
    const seeder = idleSession(await newPeer(), 'seeder', frames.seeder)
    holding.bits.set(2)
    for (let i = 0; i < 8; i++) { full.bits.set(i); seeder.bits.set(i) }
    for (const s of [lacking, holding, full, seeder]) neighbours.attach(s)

    neighbours.announce([2, 5])
    // Session#send queues each frame behind the previous write.
    await new Promise(resolve => setTimeout(resolve, 10))
    const haves = (sent: Uint8Array[]): unknown[] => sent.map(f => decodeSessionMessage(f.subarray(4)))
    expect(haves(frames.lacking)).toEqual([{ type: 'have', indexes: [2, 5] }])
    expect(haves(frames.holding)).toEqual([{ type: 'have', indexes: [5] }])
    expect(haves(frames.full)).toEqual([])
    expect(haves(frames.seeder)).toEqual([{ type: 'have', indexes: [2, 5] }])
    neighbours.close()
  })

  it('a hint naming no valid peer id (a faulty or hostile neighbour) is dropped: connect resolves, nothing is dialed', async () => {
    let dials = 0
    const components = {
      peerId: await newPeer(),
      dialProtocol: async () => { dials++; throw new Error('no dialing in this test') },
      getConnections: () => [],
      hangUp: async () => {},
      peerStore: { merge: async () => {}, get: async () => { throw new Error('not found') } }
    } as unknown as SwarmComponents
    const failed: string[] = []
    const neighbours = testNeighbours(components, { onDialFailed: p => failed.push(p) })
    // Callers do not await connect (a hint, a refusal's holders): a rejection here ended the process.
    await expect(neighbours.connect({ id: 'not-a-peer-id', addrs: [] })).resolves.toBeUndefined()
    await expect(neighbours.connect({ id: 'xyz', addrs: ['/ip4/10.0.0.1/tcp/1'] })).resolves.toBeUndefined()
    expect(dials).toBe(0)
    // Reported like a holder that cannot be dialed, so a seeder that named it serves the chunk itself.
    expect(failed).toEqual(['not-a-peer-id', 'xyz'])
    neighbours.close()
  })

  it('haveFor keeps the order of what it is given and never drops a chunk the peer lacks (property)', () => {
    fc.assert(fc.property(fc.uniqueArray(fc.nat(63)), fc.uniqueArray(fc.nat(63)), fc.boolean(), (held, indexes, isSeeder) => {
      const bits = new Bitfield(64)
      for (const i of held) bits.set(i)
      const out = haveFor({ remoteRole: isSeeder ? 'seeder' : 'peer', bits }, indexes)
      expect(out).toEqual(isSeeder ? indexes : indexes.filter(i => !held.includes(i)))
    }))
  })
})
