/**
 * One neighbour in one version's swarm: a long-lived session stream carrying hello, signed metadata,
 * bitfield, HAVEs, neighbour hints and progress reports. Writes are queued in order; any error ends
 * the session (the swarm forgets the neighbour and may dial it again later).
 */
import type { PeerId, Stream } from '@libp2p/interface'
import { Bitfield } from '../../../chunker/bitfield.ts'
import { ProtocolError, TimeoutError } from '../../../errors.ts'
import type { BulkClient } from '../chunk/bulk-client.ts'
import type { ByteReader } from '../byte-reader.ts'
import { sendFrame, streamReader } from '../stream-io.ts'
import { decodeSessionMessage, encodeSessionMessage, type Role, type SessionMessage } from './codec.ts'
import { MAX_SESSION_FRAME, SESSION_HELLO_TIMEOUT_MS, SESSION_IDLE_MS } from './constants.ts'

export class Session {
  readonly peer: PeerId
  readonly peerKey: string
  readonly remoteRole: Role
  readonly bits: Bitfield
  /** The neighbour's TLS bulk endpoint, once it granted us access. */
  bulk: BulkClient | undefined
  readonly #stream: Stream
  readonly #reader: ByteReader
  #writes: Promise<void> = Promise.resolve()
  #closed = false

  constructor (stream: Stream, reader: ByteReader, peer: PeerId, remoteRole: Role, chunkCount: number) {
    this.#stream = stream
    this.#reader = reader
    this.peer = peer
    this.peerKey = peer.toString()
    this.remoteRole = remoteRole
    this.bits = new Bitfield(chunkCount)
  }

  get closed (): boolean { return this.#closed }
  /** Whether this node dialed the session (false: the neighbour did). */
  get outbound (): boolean { return this.#stream.direction === 'outbound' }

  send (m: SessionMessage): void {
    if (this.#closed) return
    const frame = encodeSessionMessage(m)
    this.#writes = this.#writes.then(() => sendFrame(this.#stream, frame)).catch(err => this.close(err as Error))
  }

  /** Reads messages until the stream ends; resolves then (or rejects on a protocol error). */
  async run (onMessage: (m: SessionMessage) => Promise<void>): Promise<void> {
    try {
      while (!this.#closed) {
        const frame = await this.#reader.readFrame(MAX_SESSION_FRAME)
        if (frame === undefined) break
        await onMessage(decodeSessionMessage(frame))
      }
    } finally {
      this.close()
    }
  }

  close (err?: Error): void {
    if (this.#closed) return
    this.#closed = true
    this.bulk?.close()
    if (err !== undefined) this.#stream.abort(err)
    else void this.#writes.then(() => this.#stream.close()).catch(() => {})
  }
}

/**
 * The peer closed the session stream without a hello: it takes no part in the version, or declined the
 * session because its own dial to us wins (Neighbours#acceptsInbound).
 */
export class SessionDeclinedError extends ProtocolError {}

/**
 * Reads the first frame of a session stream, which must be a hello, within `timeoutMs`.
 * @throws SessionDeclinedError when the stream ends first; ProtocolError when the frame is not a hello;
 *   TimeoutError when none came in time (the stream is aborted)
 */
export async function readHello (stream: Stream, timeoutMs = SESSION_HELLO_TIMEOUT_MS): Promise<{ reader: ByteReader, headerId: string, role: Role }> {
  const reader = streamReader(stream, SESSION_IDLE_MS)
  const timer = setTimeout(() => { stream.abort(new TimeoutError(`no session hello within ${timeoutMs} ms`)) }, timeoutMs)
  try {
    const frame = await reader.readFrame(MAX_SESSION_FRAME)
    if (frame === undefined) throw new SessionDeclinedError('session closed before a hello (the peer takes no part in this version, or its own dial to us won)')
    const m = decodeSessionMessage(frame)
    if (m.type !== 'hello') throw new ProtocolError('session did not start with hello')
    return { reader, headerId: m.headerId, role: m.role }
  } finally {
    clearTimeout(timer)
  }
}

export function sendHello (stream: Stream, headerId: string, role: Role): Promise<void> {
  return sendFrame(stream, encodeSessionMessage({ type: 'hello', headerId, role }))
}
