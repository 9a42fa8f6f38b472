/**
 * A session's hello has a deadline on both sides, over real libp2p nodes (TCP loopback, Noise, yamux): a peer
 * that takes the stream and says nothing is given up, where the session's idle bound (a day) held the dial,
 * and the dialer's discovery round, that long.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { createNode, type SwarmNode } from '../../../../src/peer/node.ts'
import { readHello, sendHello } from '../../../../src/peer/protocols/session/session.ts'
import { TimeoutError } from '../../../../src/errors.ts'
import { errorOf } from '../../../support/errors.ts'

const PROTOCOL = '/modelswarm-test/session-hello/1.0.0'
const HEADER = 'ab'.repeat(32)

let a: SwarmNode
let b: SwarmNode
/** What b does with the next inbound stream. */
let onStream: (stream: Stream) => Promise<void> = async () => {}

beforeAll(async () => {
  a = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  b = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  await b.handle(PROTOCOL, stream => onStream(stream))
})

afterAll(async () => {
  await a?.stop()
  await b?.stop()
})

describe('session hello', () => {
  it('a peer that takes the stream and never says hello is given up at the deadline, with a TimeoutError', async () => {
    onStream = async () => {} // takes the stream, writes nothing
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
    const err = await errorOf(readHello(stream, 300))
    expect(err).toBeInstanceOf(TimeoutError)
    expect((err as Error).message).toMatch(/no session hello within 300 ms/)
    expect(stream.status).not.toBe('open')
  }, 10_000)

  it('a hello that comes in time is read, and the deadline does not fire later', async () => {
    onStream = async stream => { await sendHello(stream, HEADER, 'seeder') }
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
    const hello = await readHello(stream, 300)
    expect(hello).toMatchObject({ headerId: HEADER, role: 'seeder' })
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(stream.status).toBe('open')
    await stream.close()
  }, 10_000)
})
