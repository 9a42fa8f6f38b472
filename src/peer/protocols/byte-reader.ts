/**
 * Pulls bytes from any async byte source (a libp2p stream, a TLS socket) on demand: frames, exact
 * counts, or pieces handed over without copying. An idle timer, refreshed rather than recreated on each
 * read, aborts the source when no byte arrives for `idleMs`.
 */
import { Uint8ArrayList } from 'uint8arraylist'
import { ProtocolError, TimeoutError } from '../../errors.ts'

/** The remote side closed or reset before sending what the protocol requires. */
export class StreamEndedError extends ProtocolError {}

export interface ByteReaderOptions {
  /** Abort when no byte arrives for this long while a read is waiting. */
  idleMs: number
  /** Must make the pending read fail (abort the stream, destroy the socket). */
  abort: (err: Error) => void
  /** Named in timeout messages. */
  what: string
}

export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array | Uint8ArrayList>
  readonly #buf = new Uint8ArrayList()
  readonly #opts: ByteReaderOptions
  readonly #timer: NodeJS.Timeout
  #waiting = false

  constructor (source: AsyncIterable<Uint8Array | Uint8ArrayList>, opts: ByteReaderOptions) {
    this.#it = source[Symbol.asyncIterator]()
    this.#opts = opts
    this.#timer = setTimeout(() => { this.#onIdle() }, opts.idleMs)
    this.#timer.unref()
  }

  /** Reads one u32-length-prefixed frame, or undefined at a clean end of stream between frames. */
  async readFrame (maxLength: number): Promise<Uint8Array | undefined> {
    if (!await this.#ensure(4, true)) return undefined
    const length = this.#buf.getUint32(0)
    if (length > maxLength) {
      const err = new ProtocolError(`frame of ${length} bytes exceeds the ${maxLength}-byte limit`)
      this.#opts.abort(err)
      throw err
    }
    await this.#ensure(4 + length, false)
    const frame = this.#buf.subarray(4, 4 + length)
    this.#buf.consume(4 + length)
    return frame
  }

  /** Reads exactly `n` bytes into one buffer (for small headers). */
  async readExactly (n: number): Promise<Buffer> {
    await this.#ensure(n, false)
    const out = Buffer.from(this.#buf.subarray(0, n))
    this.#buf.consume(n)
    return out
  }

  /** True at a clean end of stream (no byte pending), after waiting for the next byte if needed. */
  async atEnd (): Promise<boolean> {
    return !await this.#ensure(1, true)
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

  /** Stops the idle timer; call when done with a reader that may outlive its last read. */
  dispose (): void {
    clearTimeout(this.#timer)
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
    this.#waiting = true
    this.#timer.refresh()
    try {
      const r = await this.#it.next()
      if (r.done === true) return false
      this.#buf.append(r.value)
      return true
    } finally {
      this.#waiting = false
    }
  }

  #onIdle (): void {
    if (!this.#waiting) return
    this.#opts.abort(new TimeoutError(`no data from ${this.#opts.what} for ${this.#opts.idleMs} ms`))
  }
}
