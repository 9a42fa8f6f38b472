/**
 * Session protocol codec. A frame is u8 type + payload; small structured messages are JSON, bulk
 * ones (bitfields, HAVE lists, signed blobs) are raw bytes.
 */
import { ProtocolError } from '../../../errors.ts'
import { MAX_HINTS } from './constants.ts'

export type SessionMessage =
  | { type: 'hello', headerId: string, role: Role }
  /** Signed header, hash batch or completion, relayed as received. */
  | { type: 'signed', bytes: Uint8Array }
  | { type: 'bitfield', bytes: Uint8Array }
  | { type: 'have', indexes: number[] }
  /** Neighbours worth dialing: peer id and multiaddrs. */
  | { type: 'peers', peers: PeerHint[] }
  /** A peer's progress, sent to seeders so operators see who holds what and who is stalled. */
  | { type: 'report', report: ProgressReport }
  /** Access to the sender's TLS-PSK bulk endpoint (see BulkGrant). */
  | { type: 'bulk', grant: BulkGrant }
  /** Chunks the receiver sent us that failed verification: it should check its own copy. */
  | { type: 'corrupt', indexes: number[] }

export type Role = 'seeder' | 'peer'
/**
 * Access to a node's TLS-PSK bulk endpoint: port, PSK identity and 32-byte key (base64). `receipts`: the
 * endpoint takes a receipt after each chunk it sends (chunk/codec.ts, RECEIPT); absent from nodes that
 * predate receipts, whose requesters then never ask to send one. `held`: the endpoint reads the count of
 * chunks a requester holds in each request (chunk/codec.ts, HELD_BIT); likewise absent from older nodes.
 */
export interface BulkGrant { port: number, identity: string, key: string, receipts?: boolean, held?: boolean }
export interface PeerHint { id: string, addrs: string[] }
export interface ProgressReport {
  have: number
  total: number
  bytesDown: number
  bytesUp: number
  /** Bytes per second over the last interval. */
  rateDown: number
  state: 'downloading' | 'seeding' | 'stalled'
  /** Why it is stalled, when it is. */
  reason?: string
  /** The host's name, so an operator sees more than a peer id. */
  hostname?: string
}

const STATES = new Set(['downloading', 'seeding', 'stalled'])
const MAX_REPORT_TEXT = 512

const TYPES = { hello: 1, signed: 2, bitfield: 3, have: 4, peers: 5, report: 6, bulk: 7, corrupt: 8 } as const

export function encodeSessionMessage (m: SessionMessage): Uint8Array {
  switch (m.type) {
    case 'hello': return json(TYPES.hello, { headerId: m.headerId, role: m.role })
    case 'signed': return raw(TYPES.signed, m.bytes)
    case 'bitfield': return raw(TYPES.bitfield, m.bytes)
    case 'have':
    case 'corrupt': return indexList(TYPES[m.type], m.indexes)
    case 'peers': return json(TYPES.peers, m.peers)
    case 'report': return json(TYPES.report, m.report)
    case 'bulk': return json(TYPES.bulk, m.grant)
  }
}

export function decodeSessionMessage (frame: Uint8Array): SessionMessage {
  if (frame.length === 0) throw new ProtocolError('empty session frame')
  const body = Buffer.from(frame.buffer, frame.byteOffset + 1, frame.byteLength - 1)
  switch (frame[0]) {
    case TYPES.hello: {
      const o = parse(body)
      if (typeof o?.headerId !== 'string' || !/^[0-9a-f]{64}$/.test(o.headerId) || (o.role !== 'seeder' && o.role !== 'peer')) throw new ProtocolError('bad hello')
      return { type: 'hello', headerId: o.headerId, role: o.role }
    }
    case TYPES.signed: return { type: 'signed', bytes: body }
    case TYPES.bitfield: return { type: 'bitfield', bytes: body }
    case TYPES.have: return { type: 'have', indexes: readIndexList(body, 'have') }
    case TYPES.corrupt: return { type: 'corrupt', indexes: readIndexList(body, 'corrupt') }
    case TYPES.peers: {
      const o = parse(body)
      if (!Array.isArray(o) || !o.every(p => typeof p?.id === 'string' && Array.isArray(p.addrs) && p.addrs.every((a: unknown) => typeof a === 'string'))) throw new ProtocolError('bad peers')
      return { type: 'peers', peers: o.slice(0, MAX_HINTS) }
    }
    case TYPES.report: {
      // Reports end up in the seeder's API: only the known fields, bounded, pass.
      const o = parse(body)
      const nums = ['have', 'total', 'bytesDown', 'bytesUp', 'rateDown'] as const
      if (!nums.every(k => typeof o?.[k] === 'number' && Number.isFinite(o[k]) && o[k] >= 0) || !STATES.has(o.state)) throw new ProtocolError('bad report')
      const text = (v: unknown): string | undefined => typeof v === 'string' ? v.slice(0, MAX_REPORT_TEXT) : undefined
      const report: ProgressReport = { have: o.have, total: o.total, bytesDown: o.bytesDown, bytesUp: o.bytesUp, rateDown: o.rateDown, state: o.state }
      const reason = text(o.reason)
      const hostname = text(o.hostname)
      return { type: 'report', report: { ...report, ...(reason === undefined ? {} : { reason }), ...(hostname === undefined ? {} : { hostname }) } }
    }
    case TYPES.bulk: {
      const o = parse(body)
      if (!Number.isInteger(o?.port) || o.port <= 0 || o.port > 65535 || typeof o.identity !== 'string' || typeof o.key !== 'string' || Buffer.from(o.key, 'base64').length !== 32) throw new ProtocolError('bad bulk grant')
      return { type: 'bulk', grant: { port: o.port, identity: o.identity, key: o.key, ...(o.receipts === true ? { receipts: true } : {}), ...(o.held === true ? { held: true } : {}) } }
    }
    default: throw new ProtocolError(`unknown session message type ${frame[0]}`)
  }
}

function indexList (type: number, indexes: readonly number[]): Uint8Array {
  const out = Buffer.allocUnsafe(1 + 4 * indexes.length)
  out[0] = type
  indexes.forEach((i, k) => out.writeUInt32BE(i, 1 + 4 * k))
  return out
}

function readIndexList (body: Buffer, what: string): number[] {
  if (body.length % 4 !== 0) throw new ProtocolError(`bad ${what}`)
  const indexes: number[] = []
  for (let o = 0; o < body.length; o += 4) indexes.push(body.readUInt32BE(o))
  return indexes
}

function json (type: number, value: unknown): Uint8Array {
  return Buffer.concat([Uint8Array.of(type), Buffer.from(JSON.stringify(value))])
}

function raw (type: number, bytes: Uint8Array): Uint8Array {
  return Buffer.concat([Uint8Array.of(type), bytes])
}

function parse (body: Buffer): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw new ProtocolError('malformed session message', { cause: err })
  }
}
