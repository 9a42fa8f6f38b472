/**
 * A chunk request over a libp2p stream (the path when a neighbour grants no bulk endpoint, or it cannot be
 * reached), between two real libp2p nodes on loopback.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { requestChunk } from '../../../../src/peer/protocols/chunk/client.ts'
import type { IncomingRequest } from '../../../../src/peer/protocols/chunk/codec.ts'
import { CHUNK_PROTOCOL } from '../../../../src/peer/protocols/chunk/constants.ts'
import { serveChunkStream } from '../../../../src/peer/protocols/chunk/handler.ts'
import { loopbackNodes } from '../../../support/loopback-nodes.ts'

const node = loopbackNodes()
const HEADER = createHash('sha256').update('stream request test').digest('hex')

describe('chunk requests over a libp2p stream', () => {
  it('carry no held count, which an endpoint that predates it would read as a failed-holder list too long', async () => {
    const [server, client] = [await node(), await node()]
    const seen: IncomingRequest[] = []
    await server.handle(CHUNK_PROTOCOL, (stream, conn) => serveChunkStream(stream, conn, (_peer, req) => {
      seen.push(req)
      return { status: 'busy' }
    }))
    await client.peerStore.merge(server.peerId, { multiaddrs: server.getMultiaddrs() })
    const req = { headerId: HEADER, index: 3, length: 10, held: 42, urgent: true }
    const res = await requestChunk(client, server.peerId, req, 10_000, AbortSignal.timeout(10_000))
    expect(res).toEqual({ status: 'busy' })
    expect(seen).toEqual([{ headerId: HEADER, index: 3, failedHolders: [], urgent: true, receipt: false }])
    expect('held' in seen[0]!).toBe(false)
  })
})
