/** Answering resolve requests from what this node holds. */
import type { Stream } from '@libp2p/interface'
import type { ModelRef } from '../../../model-version.ts'
import { closeGracefully, sendFrame, streamReader } from '../stream-io.ts'
import { decodeResolveRequest, encodeResolveHead } from './codec.ts'
import { MAX_RESOLVE_REQUEST, RESOLVE_IDLE_MS } from './constants.ts'

/** The signed items a node can give for a request (latest pointer first for the newest), or undefined. */
export type Resolver = (ref: ModelRef) => readonly Uint8Array[] | undefined | Promise<readonly Uint8Array[] | undefined>

export async function handleResolve (stream: Stream, resolver: Resolver): Promise<void> {
  const reader = streamReader(stream, RESOLVE_IDLE_MS)
  try {
    const items = await resolver(decodeResolveRequest(await reader.readFrame(MAX_RESOLVE_REQUEST) ?? new Uint8Array()))
    await sendFrame(stream, encodeResolveHead(items?.length))
    for (const item of items ?? []) await sendFrame(stream, item)
    await closeGracefully(stream)
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    reader.dispose()
  }
}
