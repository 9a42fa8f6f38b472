/** Serving chunk requests that arrive on libp2p streams (CHUNK_PROTOCOL). */
import type { Connection, Stream } from '@libp2p/interface'
import { closeGracefully, send, streamReader } from '../stream-io.ts'
import { readRequest, writeResponse, type ChunkLookup } from './codec.ts'
import { CHUNK_STREAM_IDLE_MS } from './constants.ts'

/** Handles one inbound chunk request stream. */
export async function serveChunkStream (stream: Stream, connection: Connection, lookup: ChunkLookup): Promise<void> {
  const reader = streamReader(stream, CHUNK_STREAM_IDLE_MS)
  try {
    const req = await readRequest(reader)
    if (req === undefined) return
    await writeResponse(data => send(stream, data), await lookup(connection.remotePeer.toString(), req))
    await closeGracefully(stream)
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    reader.dispose()
  }
}
