/**
 * Reading and writing libp2p v3 streams with bounded memory.
 *
 * Writes wait for the stream's 'drain' event rather than `stream.onDrain()`: in @libp2p/utils 7.4.1
 * onDrain's promise is never reset after the first drain, so a loop on it queues a whole file in memory
 * (FACTS.md; test/peer/stream-io.test.ts keeps a sender's memory bounded).
 */
import type { Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { InvalidInputError, TimeoutError } from '../errors.ts'

/** The remote side closed or reset before sending what the protocol requires. */
export class StreamEndedError extends InvalidInputError {}

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

/** Pulls bytes from a stream on demand, with an idle timeout that aborts the stream when no byte arrives. */
export class StreamReader {
  readonly #stream: Stream
  readonly #it: AsyncIterator<Uint8Array | Uint8ArrayList>
  readonly #buf = new Uint8ArrayList()
  readonly #idleMs: number

  constructor (stream: Stream, idleMs = 30_000) {
    this.#stream = stream
    this.#it = stream[Symbol.asyncIterator]()
    this.#idleMs = idleMs
  }

  /** Reads one u32-length-prefixed frame, or undefined at a clean end of stream between frames. */
  async readFrame (maxLength: number): Promise<Uint8Array | undefined> {
    if (!await this.#ensure(4, true)) return undefined
    const length = this.#buf.getUint32(0)
    if (length > maxLength) {
      const err = new InvalidInputError(`frame of ${length} bytes exceeds the ${maxLength}-byte limit`)
      this.#stream.abort(err)
      throw err
    }
    await this.#ensure(4 + length, false)
    const frame = this.#buf.subarray(4, 4 + length)
    this.#buf.consume(4 + length)
    return frame
  }

  /** Reads exactly `n` bytes, handing each piece to `onData` as it arrives (no copy). */
  async readInto (n: number, onData: (piece: Uint8Array) => void): Promise<void> {
    let left = n
    while (left > 0) {
      if (this.#buf.byteLength === 0 && !await this.#pull()) throw new StreamEndedError(`stream ended with ${left} of ${n} bytes missing`)
      let used = 0
      for (const piece of this.#buf) {
        const take = Math.min(piece.length, left - used)
        onData(take === piece.length ? piece : piece.subarray(0, take))
        used += take
        if (used === left) break
      }
      this.#buf.consume(used)
      left -= used
    }
  }

  async #ensure (n: number, allowCleanEnd: boolean): Promise<boolean> {
    while (this.#buf.byteLength < n) {
      if (!await this.#pull()) {
        if (allowCleanEnd && this.#buf.byteLength === 0) return false
        throw new StreamEndedError(`stream ended mid-message (${this.#buf.byteLength} of ${n} bytes)`)
      }
    }
    return true
  }

  async #pull (): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const idle = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new TimeoutError(`no data from ${this.#stream.protocol ?? 'stream'} for ${this.#idleMs} ms`)
        this.#stream.abort(err)
        reject(err)
      }, this.#idleMs)
    })
    try {
      const r = await Promise.race([this.#it.next(), idle])
      if (r.done === true) return false
      this.#buf.append(r.value)
      return true
    } finally {
      clearTimeout(timer)
    }
  }
}
