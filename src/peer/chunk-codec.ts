/**
 * The chunk exchange, independent of transport (a libp2p stream, or a TLS bulk connection).
 * Request: header id (32 bytes) + u32 chunk index + u16 length + JSON list of peers that failed the
 * requester for this chunk (so a seeder stops naming them).
 * Response: u8 status; for OK a u32 length and the bytes; for REFUSED a u32 length and a JSON list of
 * peers that hold the chunk (a seeder redirecting load to the swarm).
 */
import { createHash } from 'node:crypto'
import { IntegrityError, InvalidInputError } from '../errors.ts'
import { HASH_BYTES } from '../chunker/manifest.ts'
import type { ByteReader } from './byte-reader.ts'

export const CHUNK_STATUS = { ok: 0, missing: 1, refused: 2, busy: 3 } as const
export const MAX_REFUSAL = 4096
/** Upload slices: few syscalls, little memory per upload. */
const UPLOAD_SLICE = 1024 * 1024

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
  /** Called with each received piece's size. */
  onBytes?: (n: number) => void
  /** Supplies the buffer the chunk is received into (a pool), so big chunks do not churn the GC. */
  alloc?: (n: number) => Buffer
}

export async function writeRequest (send: Send, req: ChunkRequest): Promise<void> {
  const failed = Buffer.from(JSON.stringify((req.failedHolders ?? []).slice(0, 64)))
  const head = Buffer.allocUnsafe(HASH_BYTES + 6)
  Buffer.from(req.headerId, 'hex').copy(head, 0)
  head.writeUInt32BE(req.index, HASH_BYTES)
  head.writeUInt16BE(failed.length, HASH_BYTES + 4)
  await send(Buffer.concat([head, failed]))
}

/** Reads the response, hashing while receiving so the digest is ready with the last byte. */
export async function readResponse (reader: ByteReader, req: ChunkRequest): Promise<ChunkResponse> {
  const status = (await reader.readExactly(1))[0]
  if (status === CHUNK_STATUS.missing) return { status: 'missing' }
  if (status === CHUNK_STATUS.busy) return { status: 'busy' }
  const length = (await reader.readExactly(4)).readUInt32BE(0)
  if (status === CHUNK_STATUS.refused) {
    if (length > MAX_REFUSAL) throw new InvalidInputError('refusal too large')
    return { status: 'refused', holders: parsePeerList(await reader.readExactly(length)) }
  }
  if (status !== CHUNK_STATUS.ok) throw new InvalidInputError(`unknown chunk status ${status}`)
  if (length !== req.length) throw new IntegrityError(`chunk ${req.index}: peer announced ${length} bytes, expected ${req.length}`)
  const data = req.alloc?.(length) ?? Buffer.allocUnsafe(length)
  const hash = createHash('sha256')
  let o = 0
  await reader.readInto(length, p => {
    data.set(p, o)
    o += p.length
    hash.update(p)
    req.onBytes?.(p.length)
  })
  return { status: 'ok', data, digest: hash.digest() }
}

/** What the serving side decides for one request. */
export type ServeDecision =
  | { status: 'ok', length: number, read: (offset: number, length: number, into: Buffer) => Promise<Uint8Array>, onSent?: (bytes: number) => void, onEnd?: () => void }
  | { status: 'missing' } | { status: 'busy' }
  | { status: 'refused', holders: string[] }

export type ChunkLookup = (headerId: string, index: number, failedHolders: string[]) => ServeDecision

/** Reads one request; undefined at a clean end of stream (a persistent connection being closed). */
export async function readRequest (reader: ByteReader): Promise<{ headerId: string, index: number, failedHolders: string[] } | undefined> {
  if (await reader.atEnd()) return undefined
  const head = await reader.readExactly(HASH_BYTES + 6)
  const failedLength = head.readUInt16BE(HASH_BYTES + 4)
  if (failedLength > MAX_REFUSAL) throw new InvalidInputError('failed-holder list too long')
  return { headerId: head.subarray(0, HASH_BYTES).toString('hex'), index: head.readUInt32BE(HASH_BYTES), failedHolders: parsePeerList(await reader.readExactly(failedLength)) }
}

/** Writes the response for one decision. */
export async function writeResponse (send: Send, decision: ServeDecision): Promise<void> {
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
    const read = (off: number): Promise<Uint8Array> | undefined => off < decision.length ? decision.read(off, Math.min(UPLOAD_SLICE, decision.length - off), takeSlice()) : undefined
    let next = read(0)
    try {
      for (let off = 0; next !== undefined; off += UPLOAD_SLICE) {
        const slice = await next
        next = read(off + UPLOAD_SLICE)
        await send(slice, () => giveSlice(slice))
        decision.onSent?.(slice.length)
      }
    } finally {
      next?.catch(() => {})
    }
  } finally {
    decision.onEnd?.()
  }
}

/** Upload slice buffers, reused once a transport has released them (a fresh 1 MiB each cost GC time). */
const freeSlices: ArrayBuffer[] = []
const MAX_FREE_SLICES = 8

function takeSlice (): Buffer {
  return Buffer.from(freeSlices.pop() ?? new ArrayBuffer(UPLOAD_SLICE))
}

function giveSlice (b: Uint8Array): void {
  if (b.buffer instanceof ArrayBuffer && b.buffer.byteLength === UPLOAD_SLICE && freeSlices.length < MAX_FREE_SLICES) freeSlices.push(b.buffer)
}

export function parsePeerList (b: Buffer): string[] {
  if (b.length === 0) return []
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 64) : []
  } catch {
    return []
  }
}
