/** The chunk exchange over libp2p streams (CHUNK_PROTOCOL): one stream per request. */
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { readRequest, readResponse, writeRequest, writeResponse, type ChunkRequest, type ChunkResponse, type ServeDecision } from './chunk-codec.ts'
import { CHUNK_PROTOCOL } from './protocols.ts'
import { closeGracefully, send, streamReader } from './stream-io.ts'
import type { SwarmNode } from './node.ts'

export type PeerChunkLookup = (peer: PeerId, headerId: string, index: number, failedHolders: string[]) => ServeDecision

export async function requestChunk (node: SwarmNode, peer: PeerId, req: ChunkRequest, idleMs: number, signal: AbortSignal): Promise<ChunkResponse> {
  const stream = await node.dialProtocol(peer, CHUNK_PROTOCOL, { signal })
  const onAbort = (): void => stream.abort(signal.reason as Error)
  signal.addEventListener('abort', onAbort)
  const reader = streamReader(stream, idleMs)
  try {
    await writeRequest(data => send(stream, data, signal), req)
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

/** Handles one inbound chunk request stream. */
export async function serveChunkStream (stream: Stream, connection: Connection, lookup: PeerChunkLookup, idleMs: number): Promise<void> {
  const reader = streamReader(stream, idleMs)
  try {
    const req = await readRequest(reader)
    if (req === undefined) return
    await writeResponse(data => send(stream, data), lookup(connection.remotePeer, req.headerId, req.index, req.failedHolders))
    await closeGracefully(stream)
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    reader.dispose()
  }
}
