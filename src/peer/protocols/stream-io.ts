/** Reading and writing libp2p v3 streams with bounded memory (writes wait for 'drain': see util/drain.ts). */
import type { Stream } from '@libp2p/interface'
import { untilDrained } from '../../util/drain.ts'
import { ByteReader, StreamEndedError } from './byte-reader.ts'

/** Sends `data`, then waits while the stream's write buffer is over its limit. */
export async function send (stream: Stream, data: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (stream.send(data) || !stream.writableNeedsDrain) return
  await untilDrained(stream, () => new StreamEndedError('stream closed while waiting to send'), signal)
}

/** Sends a u32-length-prefixed frame. */
export async function sendFrame (stream: Stream, payload: Uint8Array, signal?: AbortSignal): Promise<void> {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(payload.length, 0)
  // One send for small frames keeps messages in one muxer frame.
  await send(stream, payload.length < 65536 ? Buffer.concat([head, payload]) : head, signal)
  if (payload.length >= 65536) await send(stream, payload, signal)
}

/** Closes after the write buffer has emptied: Noise's close() drops frames still queued (FACTS.md). */
export async function closeGracefully (stream: Stream, signal?: AbortSignal): Promise<void> {
  try {
    while (stream.writeBufferLength > 0 && stream.status === 'open') {
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, 50)
        stream.addEventListener('drain', () => { clearTimeout(t); resolve() }, { once: true })
      })
    }
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err as Error)
  }
}

/** A reader over a libp2p stream that aborts the stream when it goes idle. */
export function streamReader (stream: Stream, idleMs: number): ByteReader {
  return new ByteReader(stream, { idleMs, abort: err => stream.abort(err), what: stream.protocol ?? 'stream' })
}
