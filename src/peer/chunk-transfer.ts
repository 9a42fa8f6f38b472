/**
 * The chunk protocol: one stream per request. Request: header id (32 bytes) + u32 chunk index + u16
 * length + JSON list of peers that failed the requester for this chunk (lets a seeder stop naming them).
 * Response: u8 status, then for OK a u32 length and the bytes, for REFUSED a u32 length and a JSON
 * list of peers that hold the chunk (the seeder redirecting load to the swarm).
 */
import { createHash } from 'node:crypto'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { IntegrityError, InvalidInputError } from '../errors.ts'
import { HASH_BYTES } from '../chunker/manifest.ts'
import { CHUNK_PROTOCOL } from './protocols.ts'
import { closeGracefully, send, StreamReader } from './stream-io.ts'
import type { SwarmNode } from './node.ts'

export const CHUNK_STATUS = { ok: 0, missing: 1, refused: 2, busy: 3 } as const
/** Upload slices: large enough for few syscalls, small enough to keep many uploads in little memory. */
const UPLOAD_SLICE = 1024 * 1024

export type ChunkResponse =
  | { status: 'ok', data: Buffer, digest: Uint8Array }
  | { status: 'missing' } | { status: 'busy' }
  | { status: 'refused', holders: string[] }

export interface RequestChunkOptions {
  headerId: string
  index: number
  /** Exact expected length: anything else is a protocol violation. */
  length: number
  /** Abort if no byte arrives for this long. */
  idleMs: number
  signal?: AbortSignal
  /** Called with each received piece's size, for progress and rate estimates. */
  onBytes?: (n: number) => void
  /** Peers that failed us for this chunk (sent so a seeder stops pointing at them). */
  failedHolders?: readonly string[]
}

const MAX_FAILED_LIST = 4096

/** Requests one chunk from `peer`; hashes while receiving so the digest is ready with the last byte. */
export async function requestChunk (node: SwarmNode, peer: PeerId, opts: RequestChunkOptions): Promise<ChunkResponse> {
  const stream = await node.dialProtocol(peer, CHUNK_PROTOCOL, { signal: opts.signal })
  const onAbort = (): void => stream.abort(opts.signal?.reason as Error)
  opts.signal?.addEventListener('abort', onAbort)
  try {
    const failed = Buffer.from(JSON.stringify(opts.failedHolders ?? []).slice(0, MAX_FAILED_LIST))
    const req = Buffer.allocUnsafe(HASH_BYTES + 6)
    Buffer.from(opts.headerId, 'hex').copy(req, 0)
    req.writeUInt32BE(opts.index, HASH_BYTES)
    req.writeUInt16BE(failed.length, HASH_BYTES + 4)
    await send(stream, Buffer.concat([req, failed]), opts.signal)
    const reader = new StreamReader(stream, opts.idleMs)
    let status = -1
    await reader.readInto(1, b => { status = b[0]! })
    if (status === CHUNK_STATUS.missing) return { status: 'missing' }
    if (status === CHUNK_STATUS.busy) return { status: 'busy' }
    const length = await readU32(reader)
    if (status === CHUNK_STATUS.refused) {
      if (length > MAX_FAILED_LIST) throw new InvalidInputError('refusal too large')
      return { status: 'refused', holders: parseFailed(await readExactly(reader, length)) }
    }
    if (status !== CHUNK_STATUS.ok) throw new InvalidInputError(`unknown chunk status ${status}`)
    if (length !== opts.length) throw new IntegrityError(`chunk ${opts.index}: peer announced ${length} bytes, expected ${opts.length}`)
    const data = Buffer.allocUnsafe(length)
    const hash = createHash('sha256')
    let o = 0
    await reader.readInto(length, p => {
      data.set(p, o)
      o += p.length
      hash.update(p)
      opts.onBytes?.(p.length)
    })
    await stream.close().catch(() => {})
    return { status: 'ok', data, digest: hash.digest() }
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    opts.signal?.removeEventListener('abort', onAbort)
  }
}

async function readExactly (reader: StreamReader, n: number): Promise<Buffer> {
  const b = Buffer.allocUnsafe(n)
  let o = 0
  await reader.readInto(n, p => { b.set(p, o); o += p.length })
  return b
}

async function readU32 (reader: StreamReader): Promise<number> {
  return (await readExactly(reader, 4)).readUInt32BE(0)
}

function parseFailed (b: Buffer): string[] {
  if (b.length === 0) return []
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string').slice(0, 64) : []
  } catch {
    return []
  }
}

/** What the serving side decides for one request. */
export type ServeDecision =
  | { status: 'ok', length: number, read: (offset: number, length: number) => Promise<Uint8Array>, onSent?: (bytes: number) => void, onEnd?: () => void }
  | { status: 'missing' } | { status: 'busy' }
  | { status: 'refused', holders: string[] }

export type ChunkLookup = (peer: PeerId, headerId: string, index: number, failedHolders: string[]) => ServeDecision

/** Handles one inbound chunk request stream. */
export async function serveChunkRequest (stream: Stream, connection: Connection, lookup: ChunkLookup, idleMs: number): Promise<void> {
  let decision: ServeDecision | undefined
  try {
    const reader = new StreamReader(stream, idleMs)
    const req = await readExactly(reader, HASH_BYTES + 6)
    const failedLength = req.readUInt16BE(HASH_BYTES + 4)
    if (failedLength > MAX_FAILED_LIST) throw new InvalidInputError('failed-holder list too long')
    decision = lookup(connection.remotePeer, req.subarray(0, HASH_BYTES).toString('hex'), req.readUInt32BE(HASH_BYTES), parseFailed(await readExactly(reader, failedLength)))
    if (decision.status === 'missing' || decision.status === 'busy') {
      await send(stream, Uint8Array.of(CHUNK_STATUS[decision.status]))
    } else if (decision.status === 'refused') {
      const body = Buffer.from(JSON.stringify(decision.holders))
      const head = Buffer.allocUnsafe(5)
      head[0] = CHUNK_STATUS.refused
      head.writeUInt32BE(body.length, 1)
      await send(stream, Buffer.concat([head, body]))
    } else {
      const head = Buffer.allocUnsafe(5)
      head[0] = CHUNK_STATUS.ok
      head.writeUInt32BE(decision.length, 1)
      await send(stream, head)
      for (let off = 0; off < decision.length; off += UPLOAD_SLICE) {
        const n = Math.min(UPLOAD_SLICE, decision.length - off)
        await send(stream, await decision.read(off, n))
        decision.onSent?.(n)
      }
    }
    await closeGracefully(stream)
  } catch (err) {
    stream.abort(err as Error)
  } finally {
    if (decision?.status === 'ok') decision.onEnd?.()
  }
}
