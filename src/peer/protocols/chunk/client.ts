/** Requesting a chunk over a libp2p stream (CHUNK_PROTOCOL): one stream per request. */
import type { PeerId } from '@libp2p/interface'
import type { SwarmComponents } from '../../swarm-components.ts'
import { send, streamReader } from '../stream-io.ts'
import { readResponse, writeRequest, type ChunkRequest, type ChunkResponse } from './codec.ts'
import { CHUNK_PROTOCOL } from './constants.ts'

/** Asks `peer` for one chunk; aborts when no byte arrives for `idleMs` or `signal` fires. */
export async function requestChunk (components: SwarmComponents, peer: PeerId, req: ChunkRequest, idleMs: number, signal: AbortSignal): Promise<ChunkResponse> {
  const stream = await components.dialProtocol(peer, CHUNK_PROTOCOL, { signal })
  const onAbort = (): void => stream.abort(signal.reason as Error)
  signal.addEventListener('abort', onAbort)
  const reader = streamReader(stream, idleMs)
  try {
    // No held count: a node that predates it would fail the request, and a stream has no grant to say (codec.ts).
    await writeRequest(data => send(stream, data, signal), { ...req, held: undefined })
    const res = await readResponse(reader, req)
    await stream.close().catch(() => {})
    return res
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    reader.dispose()
    signal.removeEventListener('abort', onAbort)
  }
}
