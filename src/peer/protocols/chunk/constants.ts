/**
 * The chunk protocol: one request, one response (status, then the chunk's bytes or a refusal naming
 * holders), over a libp2p stream per request or a persistent TLS-PSK bulk connection (see codec.ts).
 */
import { PROTOCOL_PREFIX } from '../prefix.ts'

export const CHUNK_PROTOCOL = `${PROTOCOL_PREFIX}/chunk/1.0.0`
export const CHUNK_STATUS = { ok: 0, missing: 1, refused: 2, busy: 3 } as const
/** Largest JSON peer list in a request (failed holders) or a refusal (holders). */
export const MAX_PEER_LIST_BYTES = 4096
/** Peers named in one list. */
export const MAX_PEERS_NAMED = 64
/** Upload slices: few syscalls, little memory per upload. */
export const UPLOAD_SLICE = 1024 * 1024
/** A served chunk stream with no byte moving for this long is aborted. */
export const CHUNK_STREAM_IDLE_MS = 30_000
/**
 * An upload whose requester has not sent its receipt this long after the last byte was handed to the
 * kernel ends anyway (its slot frees; the connection still takes the receipt before its next request):
 * that requester stopped reading, and must not hold the slot as long as the connection may stay idle.
 */
export const RECEIPT_WAIT_MS = CHUNK_STREAM_IDLE_MS
/** Concurrent inbound chunk streams per connection. */
export const MAX_INBOUND_CHUNK_STREAMS = 256
