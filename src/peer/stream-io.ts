/**
 * Reading and writing libp2p v3 streams with bounded memory.
 *
 * Writes wait for the stream's 'drain' event rather than `stream.onDrain()`: in @libp2p/utils 7.4.1
 * onDrain's promise is never reset after the first drain, so a loop on it queues a whole file in memory
 * (FACTS.md; test/peer/stream-io.test.ts keeps a sender's memory bounded).
 */
import type { Stream } from '@libp2p/interface'
import { ByteReader, StreamEndedError } from './byte-reader.ts'

/** Sends `data`, then waits while the stream's write buffer is over its limit. */
export async function send (stream: Stream, data: Uint8Array, signal?: AbortSignal): Promise<void> {
  if (stream.send(data)) return
  await drained(stream, signal)
}

/** Sends a u32-length-prefixed frame. */
export async function sendFrame (stream: Stream, payload: Uint8Array, signal?: AbortSignal): Promise<void> {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(payload.length, 0)
  // One send for small frames keeps messages in one muxer frame.
  await send(stream, payload.length < 65536 ? Buffer.concat([head, payload]) : head, signal)
  if (payload.length >= 65536) await send(stream, payload, signal)
}

function drained (stream: Stream, signal?: AbortSignal): Promise<void> {
  if (!stream.writableNeedsDrain) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new StreamEndedError('stream closed while waiting to send'))
    const onAbort = (): void => done(signal?.reason as Error)
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
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
