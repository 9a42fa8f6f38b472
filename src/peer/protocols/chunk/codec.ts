/**
 * The chunk exchange, independent of transport (a libp2p stream, or a TLS bulk connection).
 * Request: header id (32 bytes) + u32 chunk index + u16 length + JSON list of peers that failed the
 * requester for this chunk (so a seeder stops naming them), then, when the length's HELD_BIT is set, a u32:
 * the chunks the requester holds (to endpoints whose grant offers it).
 * Response: u8 status; for OK a u32 length and the bytes; for REFUSED a u32 length and a JSON list of
 * peers that hold the chunk (a seeder redirecting load to the swarm).
 * Receipt (bulk connections whose grant offers it): a request with the receipt bit set is answered as
 * above, and after an OK response's last byte the requester sends the byte RECEIPT on the same
 * connection, before its next request there.
 */
import { createHash, type Hash } from 'node:crypto'
import { HASH_BYTES } from '../../../chunker/manifest.ts'
import { IntegrityError, ProtocolError } from '../../../errors.ts'
import { BufferPool } from '../../../util/buffer-pool.ts'
import { settledWithin } from '../../../util/sleep.ts'
import type { ByteReader } from '../byte-reader.ts'
import { CHUNK_STATUS, MAX_PEER_LIST_BYTES, MAX_PEERS_NAMED, RECEIPT_WAIT_MS, UPLOAD_SLICE } from './constants.ts'

/**
 * Sends bytes with backpressure. A transport that can tell when it no longer needs `data` calls
 * `release`, so upload buffers can be reused; one that cannot simply never calls it.
 */
export type Send = (data: Uint8Array, release?: () => void) => Promise<void>

export type ChunkResponse =
  | { status: 'ok', data: Buffer, digest: Uint8Array }
  | { status: 'missing' } | { status: 'busy' }
  | { status: 'refused', holders: string[] }

export interface ChunkRequest {
  headerId: string
  index: number
  /** Exact expected length: anything else is a protocol violation. */
  length: number
  /** Peers that failed us for this chunk. */
  failedHolders?: readonly string[]
  /** A reader waits on this chunk (read during fetch): served ahead of queued requests, never refused by a seeder. */
  urgent?: boolean
  /** The requester sends RECEIPT once an OK response has arrived whole (bulk connections only). */
  receipt?: boolean
  /** Chunks of the version the requester holds (bulk connections whose grant reads it; see HELD_BIT). */
  held?: number
  /** Called with each received piece's size. */
  onBytes?: (n: number) => void
  /** Supplies the buffer the chunk is received into (a pool), so big chunks do not churn the GC. */
  alloc?: (n: number) => Buffer
}

/** A request as the serving side reads it. */
export interface IncomingRequest { headerId: string, index: number, failedHolders: string[], urgent: boolean, receipt: boolean, held?: number }

/**
 * What the serving side decides for one request. `read` gives the bytes at `offset`, at most `length` of
 * them (it may give fewer, as a short read; never none), into `into` or a buffer of its own.
 */
export type ServeDecision =
  | {
    status: 'ok'
    length: number
    read: (offset: number, length: number, into: Buffer) => Promise<Uint8Array>
    /** Bytes handed to the transport. */
    onSent?: (bytes: number) => void
    /** The upload is over: delivered (the receipt came, or none was asked for and the last byte was handed over), or failed. */
    onEnd?: () => void
  }
  | { status: 'missing' } | { status: 'busy' }
  | { status: 'refused', holders: string[] }

/** The serving side's answer to `peer` asking for chunk `index` of version `headerId` (later, when it waits for an upload slot). */
export type ChunkLookup = (peer: string, request: IncomingRequest) => ServeDecision | Promise<ServeDecision>

/**
 * The top bit of a request's u16 failed-list length marks it urgent (the list is at most
 * MAX_PEER_LIST_BYTES, far below it); a node that predates the bit reads an over-long list and fails the
 * request, which the requester then asks of another peer.
 */
const URGENT_BIT = 0x8000
/** The next bit asks to send a receipt; it goes only to an endpoint whose grant offers receipts. */
const RECEIPT_BIT = 0x4000
/**
 * The next bit: a u32 follows the failed list, the chunks the requester holds, which the uploader's
 * admission orders its waiting requests by (upload-admission.ts). It goes only to an endpoint whose grant
 * says it reads it (a node that predates it would fail every request), so never over a libp2p stream.
 */
const HELD_BIT = 0x2000
/** The byte a requester sends once a chunk has arrived whole (ASCII ACK). */
export const RECEIPT = 0x06

export async function writeRequest (send: Send, req: ChunkRequest): Promise<void> {
  const failed = Buffer.from(JSON.stringify((req.failedHolders ?? []).slice(0, MAX_PEERS_NAMED)))
  // Longer, it would run into the flag bits: a peer reading it would take the wrong bytes as the list.
  if (failed.length > MAX_PEER_LIST_BYTES) throw new ProtocolError(`failed-holder list of ${failed.length} bytes`)
  const head = Buffer.allocUnsafe(HASH_BYTES + 6)
  Buffer.from(req.headerId, 'hex').copy(head, 0)
  head.writeUInt32BE(req.index, HASH_BYTES)
  const held = req.held === undefined ? undefined : Buffer.allocUnsafe(4)
  held?.writeUInt32BE(req.held!)
  const flags = (req.urgent === true ? URGENT_BIT : 0) | (req.receipt === true ? RECEIPT_BIT : 0) | (held !== undefined ? HELD_BIT : 0)
  head.writeUInt16BE(failed.length | flags, HASH_BYTES + 4)
  await send(Buffer.concat(held === undefined ? [head, failed] : [head, failed, held]))
}

/** Reads one request; undefined at a clean end of stream (a persistent connection being closed). */
export async function readRequest (reader: ByteReader): Promise<IncomingRequest | undefined> {
  if (await reader.atEnd()) return undefined
  const head = await reader.readExactly(HASH_BYTES + 6)
  const word = head.readUInt16BE(HASH_BYTES + 4)
  const failedLength = word & ~(URGENT_BIT | RECEIPT_BIT | HELD_BIT)
  if (failedLength > MAX_PEER_LIST_BYTES) throw new ProtocolError('failed-holder list too long')
  const failedHolders = parsePeerList(await reader.readExactly(failedLength))
  const held = (word & HELD_BIT) !== 0 ? (await reader.readExactly(4)).readUInt32BE(0) : undefined
  return {
    headerId: head.subarray(0, HASH_BYTES).toString('hex'),
    index: head.readUInt32BE(HASH_BYTES),
    failedHolders,
    urgent: (word & URGENT_BIT) !== 0,
    receipt: (word & RECEIPT_BIT) !== 0,
    ...(held === undefined ? {} : { held })
  }
}

/** Response head size for a status: u8 status, plus a u32 length for OK and REFUSED. */
export function headLength (status: number): 1 | 5 {
  return status === CHUNK_STATUS.ok || status === CHUNK_STATUS.refused ? 5 : 1
}

/**
 * Validates a response head. Returns the response when it is complete as it is (missing, busy), else
 * the body length to read. Throws ProtocolError for an unknown status or an oversized refusal, and
 * IntegrityError when a chunk's announced length is not the one the manifest gives.
 */
export function checkHead (status: number, length: number, req: ChunkRequest): ChunkResponse | number {
  if (status === CHUNK_STATUS.missing) return { status: 'missing' }
  if (status === CHUNK_STATUS.busy) return { status: 'busy' }
  if (status === CHUNK_STATUS.refused) {
    if (length > MAX_PEER_LIST_BYTES) throw new ProtocolError('refusal too large')
    return length
  }
  if (status !== CHUNK_STATUS.ok) throw new ProtocolError(`unknown chunk status ${status}`)
  if (length !== req.length) throw new IntegrityError(`chunk ${req.index}: peer announced ${length} bytes, expected ${req.length}`)
  return length
}

/** Receives a chunk's bytes into one buffer, hashing them on the way so the digest is ready with the last byte. */
export class ChunkReceiver {
  readonly data: Buffer
  readonly #hash: Hash = createHash('sha256')
  readonly #onBytes: ((n: number) => void) | undefined
  #filled = 0

  constructor (req: ChunkRequest, length: number) {
    this.data = req.alloc?.(length) ?? Buffer.allocUnsafe(length)
    this.#onBytes = req.onBytes
  }

  /** Bytes still expected. */
  get missing (): number { return this.data.length - this.#filled }

  push (piece: Uint8Array): void {
    this.data.set(piece, this.#filled)
    this.#filled += piece.length
    this.#hash.update(piece)
    this.#onBytes?.(piece.length)
  }

  response (): ChunkResponse {
    return { status: 'ok', data: this.data, digest: this.#hash.digest() }
  }
}

/** Reads one response from a pull-based reader (a libp2p stream). */
export async function readResponse (reader: ByteReader, req: ChunkRequest): Promise<ChunkResponse> {
  const status = (await reader.readExactly(1))[0]!
  const length = headLength(status) === 5 ? (await reader.readExactly(4)).readUInt32BE(0) : 0
  const head = checkHead(status, length, req)
  if (typeof head !== 'number') return head
  if (status === CHUNK_STATUS.refused) return { status: 'refused', holders: parsePeerList(await reader.readExactly(length)) }
  const body = new ChunkReceiver(req, length)
  await reader.readInto(length, p => body.push(p))
  return body.response()
}

/** Upload slice buffers, reused once a transport has released them (a fresh 1 MiB each cost GC time). */
const slices = new BufferPool(UPLOAD_SLICE, 8)

/**
 * Writes the response for one decision. `delivered`, for a request that asked to send a receipt, settles
 * when the requester's receipt has come: an OK upload ends (decision.onEnd, which frees its upload slot)
 * only then, or RECEIPT_WAIT_MS after its last byte was handed to the transport, whichever is first.
 * Without it an upload ends once its last byte is handed over, which is when the kernel has taken it:
 * with the default socket buffers (up to 4 MiB) that is at once for a 128 KiB chunk, so a node admitted
 * request after request and its uplink carried them all at once (lab, N = 16, quarter rates: a chunk's
 * transfer took 4 s (p50) from the busiest hosts, whose queues held the requesters' budgets, while other
 * hosts' uplinks idled; they ran at 0.92–0.95 of their rate).
 */
export async function writeResponse (send: Send, decision: ServeDecision, delivered?: Promise<void>): Promise<void> {
  if (decision.status === 'missing' || decision.status === 'busy') {
    await send(Uint8Array.of(CHUNK_STATUS[decision.status]))
    return
  }
  const head = Buffer.allocUnsafe(5)
  if (decision.status === 'refused') {
    const body = Buffer.from(JSON.stringify(decision.holders))
    head[0] = CHUNK_STATUS.refused
    head.writeUInt32BE(body.length, 1)
    await send(Buffer.concat([head, body]))
    return
  }
  try {
    head[0] = CHUNK_STATUS.ok
    head.writeUInt32BE(decision.length, 1)
    await send(head)
    // The next slice is read from disk while the current one is sent, so the connection never waits on I/O.
    const read = (off: number): Promise<Uint8Array> | undefined => {
      if (off >= decision.length) return undefined
      const p = decision.read(off, Math.min(UPLOAD_SLICE, decision.length - off), slices.take(UPLOAD_SLICE))
      // It may fail (the chunk dropped as rotten, the version evicted, EIO) while a send waits to drain:
      // observed here, its error surfaces when awaited, not as an unhandled rejection ending the process.
      p.catch(() => {})
      return p
    }
    let next = read(0)
    for (let off = 0; next !== undefined;) {
      const slice = await next
      if (slice.length === 0) throw new ProtocolError(`chunk read gave no bytes at ${off} of ${decision.length}`)
      off += slice.length
      next = read(off)
      await send(slice, () => slices.give(slice))
      decision.onSent?.(slice.length)
    }
    if (delivered !== undefined) await settledWithin(delivered, RECEIPT_WAIT_MS)
  } finally {
    decision.onEnd?.()
  }
}

/** Reads a requester's receipt (see writeResponse). Throws ProtocolError for any other byte. */
export async function readReceipt (reader: ByteReader): Promise<void> {
  const b = (await reader.readExactly(1))[0]
  if (b !== RECEIPT) throw new ProtocolError(`expected a chunk receipt, got byte ${b}`)
}

/** A JSON list of peer ids from a peer: strings only, at most MAX_PEERS_NAMED; garbage reads as none. */
export function parsePeerList (b: Buffer): string[] {
  if (b.length === 0) return []
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, MAX_PEERS_NAMED) : []
  } catch {
    return []
  }
}
