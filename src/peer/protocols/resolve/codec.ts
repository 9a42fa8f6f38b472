/**
 * Resolve protocol codec. Request: one frame of JSON `{"name","version"}` (version null for the newest).
 * Answer: one frame of JSON `{"found":false}` or `{"found":true,"count":N}`, then N frames, each a signed
 * item (latest pointer first when the newest was asked for, then the header, hash batches, completion).
 */
import { ProtocolError } from '../../../errors.ts'
import { isValidName, isValidVersion, type ModelRef } from '../../../model-version.ts'
import { MAX_RESOLVE_ITEMS } from './constants.ts'

export function encodeResolveRequest (ref: ModelRef): Uint8Array {
  return Buffer.from(JSON.stringify({ name: ref.name, version: ref.version ?? null }))
}

/** Throws ProtocolError unless the request names a valid model (and version, if any). */
export function decodeResolveRequest (bytes: Uint8Array): ModelRef {
  const o = parse(bytes) as { name?: unknown, version?: unknown } | null
  if (!isValidName(o?.name) || !(o.version === undefined || o.version === null || isValidVersion(o.version))) throw new ProtocolError('malformed resolve request')
  return { name: o.name, version: o.version ?? undefined }
}

export function encodeResolveHead (count: number | undefined): Uint8Array {
  return Buffer.from(JSON.stringify(count === undefined ? { found: false } : { found: true, count }))
}

/** The number of signed items that follow, or undefined when the peer does not know the version. */
export function decodeResolveHead (bytes: Uint8Array): number | undefined {
  const o = parse(bytes) as { found?: unknown, count?: unknown } | null
  if (o?.found === false) return undefined
  if (o?.found !== true || !Number.isSafeInteger(o.count) || (o.count as number) < 0 || (o.count as number) > MAX_RESOLVE_ITEMS) throw new ProtocolError('malformed resolve answer')
  return o.count as number
}

function parse (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw new ProtocolError('resolve message is not JSON', { cause: err })
  }
}
