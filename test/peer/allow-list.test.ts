// The allow-list's decisions, the connection gater built from it, the refusal log's rate limit, and how a
// client reads libp2p's errors as "that node refused us".
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { MultiaddrConnection } from '@libp2p/interface'
import { InvalidInputError } from '../../src/errors.ts'
import { AllowList, parseCidr } from '../../src/peer/allow-list.ts'
import { Membership, MEMBERSHIP_MSG, refusalReason } from '../../src/peer/membership.ts'
import { captureLog as capture } from '../support/log-capture.ts'

const A = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const B = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

const conn = (addr: string): MultiaddrConnection => ({ remoteAddr: multiaddr(addr) }) as unknown as MultiaddrConnection

describe('AllowList', () => {
  it('admits everyone when no list is given', () => {
    const all = new AllowList()
    expect(all.restricted).toBe(false)
    expect(all.allowsPeer(A.toString())).toBe(true)
    expect(all.allowsIp('203.0.113.9')).toBe(true)
  })

  it('admits listed peer ids only', () => {
    const l = new AllowList({ peers: [A.toString()] })
    expect(l.restricted).toBe(true)
    expect(l.allowsPeer(A.toString())).toBe(true)
    expect(l.allowsPeer(B.toString())).toBe(false)
    expect(l.allowsIp('203.0.113.9')).toBe(true)
    expect(l.withPeers([B.toString()]).allowsPeer(B.toString())).toBe(true)
    // Adding peers to a list that admits every peer id must not start restricting them.
    expect(new AllowList({ cidrs: ['10.0.0.0/8'] }).withPeers([A.toString()]).allowsPeer(B.toString())).toBe(true)
  })

  it('admits addresses in the ranges, IPv4, IPv6 and IPv4-mapped IPv6', () => {
    const l = new AllowList({ cidrs: ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'] })
    expect(l.allowsIp('10.200.0.1')).toBe(true)
    expect(l.allowsIp('11.0.0.1')).toBe(false)
    expect(l.allowsIp('192.168.1.7')).toBe(true)
    expect(l.allowsIp('192.168.1.8')).toBe(false)
    expect(l.allowsIp('fd12::1')).toBe(true)
    expect(l.allowsIp('fe80::1')).toBe(false)
    expect(l.allowsIp('::ffff:10.1.2.3')).toBe(true)
    expect(l.allowsIp('not-an-ip')).toBe(false)
    // A DNS address has no IP yet: it is checked once connected.
    expect(l.allowsIp(undefined)).toBe(true)
  })

  it.each(['10.0.0.0/33', '10.0.0/8', 'fd00::/129', '10.0.0.0/', '10.0.0.0/8/1', 'example.com/8', ''])('refuses the range %j', bad => {
    expect(() => parseCidr(bad)).toThrow(InvalidInputError)
    expect(() => parseCidr(bad)).toThrow(/--allow-cidr/)
  })

  it('refuses a peer id that is not one', () => {
    expect(() => new AllowList({ peers: ['12D3KooWnope'] })).toThrow(/--allow-peers "12D3KooWnope" is not a peer id/)
  })
})

describe('Membership connection gater', () => {
  it('drops inbound connections outside --allow-cidr at once, and peers outside --allow-peers after Noise; logs each', async () => {
    const { log, lines } = capture()
    const m = new Membership({ allow: new AllowList({ peers: [A.toString()], cidrs: ['10.0.0.0/8'] }), log })
    const g = m.connectionGater()
    expect(await g.denyInboundConnection!(conn('/ip4/10.1.1.1/tcp/5000'))).toBe(false)
    expect(await g.denyInboundConnection!(conn('/ip4/192.0.2.1/tcp/5000'))).toBe(true)
    expect(await g.denyInboundEncryptedConnection!(A, conn('/ip4/10.1.1.1/tcp/5000'))).toBe(false)
    expect(await g.denyInboundEncryptedConnection!(B, conn('/ip4/10.1.1.2/tcp/5000'))).toBe(true)
    expect(lines.filter(l => l.msg === MEMBERSHIP_MSG.refused).map(l => [l.remote, l.reason, l.peer])).toEqual([
      ['192.0.2.1', 'its address is outside --allow-cidr', undefined],
      ['10.1.1.2', 'its peer id is not in --allow-peers', B.toString()]
    ])
  })

  it('never dials outsiders', async () => {
    const m = new Membership({ allow: new AllowList({ peers: [A.toString()], cidrs: ['10.0.0.0/8'] }), log: capture().log })
    const g = m.connectionGater()
    expect(await g.denyDialPeer!(A)).toBe(false)
    expect(await g.denyDialPeer!(B)).toBe(true)
    expect(await g.denyDialMultiaddr!(multiaddr('/ip4/10.0.0.5/tcp/4001'))).toBe(false)
    expect(await g.denyDialMultiaddr!(multiaddr('/ip4/192.0.2.5/tcp/4001'))).toBe(true)
    expect(await g.denyDialMultiaddr!(multiaddr('/dns4/seeder.example/tcp/4001'))).toBe(false)
    expect(await g.denyOutboundConnection!(A, conn('/ip4/192.0.2.5/tcp/4001'))).toBe(true)
    expect(await g.denyOutboundEncryptedConnection!(B, conn('/ip4/10.0.0.5/tcp/4001'))).toBe(true)
  })

  it('an open swarm has no gater rules', () => {
    const m = new Membership({ log: capture().log })
    expect(m.connectionGater()).toEqual({})
    expect(m.admitsBulk('192.0.2.1')).toBe(true)
  })

  it('logs one refusal a minute per address and reason, then how many it left out', () => {
    const { log, lines } = capture()
    let now = 0
    const m = new Membership({ allow: new AllowList({ cidrs: ['10.0.0.0/8'] }), log, now: () => now })
    for (let i = 0; i < 5; i++) expect(m.admitsBulk('192.0.2.1')).toBe(false)
    m.refused('192.0.2.1', 'another reason')
    now = 61_000
    expect(m.admitsBulk('192.0.2.1')).toBe(false)
    const refused = lines.filter(l => l.msg === MEMBERSHIP_MSG.refused)
    expect(refused.map(l => [l.reason, l.notLogged])).toEqual([
      ['its address is outside --allow-cidr (bulk endpoint)', undefined],
      ['another reason', undefined],
      ['its address is outside --allow-cidr (bulk endpoint)', 4]
    ])
  })
})

describe('refusalReason', () => {
  it('reads a failed handshake, a reset connection and a connection closed after Noise as refusals', () => {
    expect(refusalReason(Object.assign(new Error('Missing newline'), { name: 'EncryptionFailedError' }))).toMatch(/swarm key/)
    expect(refusalReason(Object.assign(new Error('connect ECONNRESET 127.0.0.1:4001'), { code: 'ECONNRESET' }))).toMatch(/--allow-cidr/)
    expect(refusalReason(Object.assign(new Error('closed'), { name: 'ConnectionClosedError' }))).toMatch(/--allow-peers/)
    expect(refusalReason(new Event('close'))).toMatch(/--allow-peers/)
    expect(refusalReason(new AggregateError([new Error('x'), Object.assign(new Error('y'), { name: 'EncryptionFailedError' })]))).toMatch(/swarm key/)
  })

  it('does not read a node that is down, unreachable or slow as a refusal', () => {
    expect(refusalReason(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBeUndefined()
    expect(refusalReason(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }))).toBeUndefined()
    expect(refusalReason(new Error('something else'))).toBeUndefined()
    expect(refusalReason(undefined)).toBeUndefined()
  })
})
