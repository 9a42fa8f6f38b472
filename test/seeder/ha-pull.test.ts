import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { chunkLayout, createHeader } from '../../src/chunker/manifest.ts'
import { silentLogger } from '../../src/log.ts'
import type { PeerHint } from '../../src/peer/protocols/session/codec.ts'
import { HaGroup, HA_DEFAULTS, parseSeederPeer, type HaVersion } from '../../src/seeder/ha-pull.ts'
import { InvalidInputError } from '../../src/errors.ts'
import { rankSeeders } from '../../src/seeder/ownership.ts'

const ref = { name: 'm', version: 'v1' }
const COUNT = 40
const layout = chunkLayout(createHeader({ ...ref, chunkSize: 1024, files: [{ path: 'a.bin', size: COUNT * 1024, mode: 0o644 }] }))
const GRACE = 1000

async function twoSeeders (): Promise<{ owner: string, other: string, addr: (id: string) => string }> {
  const ids = await Promise.all([0, 1].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  const [owner, other] = rankSeeders(ids, ref) as [string, string]
  return { owner, other, addr: id => `/ip4/127.0.0.1/tcp/4001/p2p/${id}` }
}

/** A version's store and swarm as the group sees them: held chunks, and the neighbours' bitfields. */
function fakeVersion (): HaVersion & { bits: Map<string, Bitfield>, dialed: string[] } {
  const bits = new Map<string, Bitfield>()
  const dialed: string[] = []
  return {
    ref,
    store: { have: new Bitfield(COUNT), layout },
    swarm: {
      connect: async (hint: PeerHint | PeerId) => { dialed.push('id' in hint ? hint.id : hint.toString()) },
      neighbourBits: () => new Map(bits)
    },
    bits,
    dialed
  }
}

const bitsOf = (set: Iterable<number>): Bitfield => {
  const b = new Bitfield(COUNT)
  for (const i of set) b.set(i)
  return b
}
const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)

async function until (pred: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !pred(); await new Promise(resolve => setTimeout(resolve, 2))) {
    if (Date.now() > end) throw new Error('condition never held')
  }
}

describe('HaGroup.complete', () => {
  it('the owner pulls at once what no neighbour holds, and leaves the rest to the swarm', async () => {
    const { owner, other, addr } = await twoSeeders()
    const group = new HaGroup({ self: owner, peers: [addr(owner), addr(other)], graceMs: GRACE, tickMs: 5, now: () => 0, log: silentLogger })
    expect(group.size).toBe(1)
    const v = fakeVersion()
    v.bits.set('host', bitsOf(range(0, 4)))
    const rounds: number[][] = []
    const done = group.complete(v, {
      pull: async chunks => { rounds.push(chunks); for (const i of chunks) v.store.have.set(i); return true },
      held: () => true
    }, new AbortController().signal)
    await until(() => rounds.length > 0)
    // The swarm's download brings the host's chunks; the run ends once every chunk is held.
    for (const i of range(0, 4)) v.store.have.set(i)
    await done
    expect(rounds).toEqual([range(4, COUNT)])
    expect(v.dialed).toContain(other)
    expect(v.dialed).not.toContain(owner)
  })

  it('the other fetches while the owner progresses; once it is gone for the grace period, pulls in rounds from the end, never what a host holds', async () => {
    const { owner, other, addr } = await twoSeeders()
    let now = 0
    const group = new HaGroup({ self: other, peers: [addr(owner), addr(other)], graceMs: GRACE, tickMs: 5, now: () => now, log: silentLogger })
    const v = fakeVersion()
    v.bits.set(owner, bitsOf(range(0, 10)))
    v.bits.set('host', bitsOf(range(0, 12)))
    for (const i of range(0, 8)) v.store.have.set(i)
    const rounds: number[][] = []
    const done = group.complete(v, {
      pull: async chunks => { rounds.push(chunks); for (const i of chunks) v.store.have.set(i); return true },
      held: () => true
    }, new AbortController().signal)
    // The owner keeps growing: no pull however long it takes.
    for (let k = 11; k <= 20; k++) {
      now += GRACE / 2
      v.bits.set(owner, bitsOf(range(0, k)))
      await new Promise(resolve => setTimeout(resolve, 15))
    }
    expect(rounds).toEqual([])
    // SIGKILL: its session is gone; the host got chunks 0–11 from it before.
    v.bits.delete(owner)
    now += GRACE - 1
    await new Promise(resolve => setTimeout(resolve, 30))
    expect(rounds).toEqual([])
    now += 1
    await until(() => v.store.have.count >= 8 + (COUNT - 12))
    for (const i of range(8, 12)) v.store.have.set(i)
    await done
    const per = Math.ceil(COUNT * HA_DEFAULTS.takeoverRoundShare)
    expect(rounds.flat().sort((a, b) => a - b)).toEqual(range(12, COUNT))
    expect(rounds[0]).toEqual(range(COUNT - per, COUNT))
    for (const r of rounds) expect(r.length).toBeLessThanOrEqual(per)
    // Each round starts where the last one ended: from the end towards the owner's front.
    for (let k = 1; k < rounds.length; k++) expect(rounds[k]!.at(-1)).toBe(rounds[k - 1]![0]! - 1)
  })

  it('stops when a round fails or the version leaves the cache', async () => {
    const { owner, other, addr } = await twoSeeders()
    const group = new HaGroup({ self: owner, peers: [addr(other)], graceMs: GRACE, tickMs: 5, now: () => 0, log: silentLogger })
    const v = fakeVersion()
    let calls = 0
    await group.complete(v, { pull: async () => { calls++; return false }, held: () => true }, new AbortController().signal)
    expect(calls).toBe(1)
    await group.complete(v, { pull: async () => { calls++; return true }, held: () => false }, new AbortController().signal)
    expect(calls).toBe(1)
  })

  it('parses --seeder-peer values, refusing one without a valid /p2p/ id', async () => {
    const { owner } = await twoSeeders()
    expect(parseSeederPeer(`/dns4/seeder-1/tcp/4001/p2p/${owner}`)).toEqual({ id: owner, addrs: [`/dns4/seeder-1/tcp/4001/p2p/${owner}`] })
    expect(() => parseSeederPeer('/ip4/10.0.0.5/tcp/4001')).toThrow(/lacks \/p2p\//)
    expect(() => parseSeederPeer('/ip4/10.0.0.5/tcp/4001/p2p/nope')).toThrow(InvalidInputError)
    expect(() => parseSeederPeer('seeder-1:4001')).toThrow(/not a multiaddr/)
  })
})
