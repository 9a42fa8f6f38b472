/** The resolve protocol: NAME@VERSION (or NAME@latest) → the signed metadata a node holds for it. */
import { PROTOCOL_PREFIX } from '../prefix.ts'

export const RESOLVE_PROTOCOL = `${PROTOCOL_PREFIX}/resolve/1.0.0`
/** The request and the answer's head are small JSON objects. */
export const MAX_RESOLVE_REQUEST = 4096
export const MAX_RESOLVE_HEAD = 4096
/** One signed item: a header, a batch of hashes, a completion or a latest pointer. */
export const MAX_RESOLVE_ITEM = 64 * 1024 * 1024
/** Signed items in one answer (the header, up to one batch per chunk, the completion, the latest pointer). */
export const MAX_RESOLVE_ITEMS = 1_000_003
/** Both sides give up when no byte moves for this long. */
export const RESOLVE_IDLE_MS = 30_000
/** Concurrent inbound resolve streams per connection. */
export const MAX_INBOUND_RESOLVES = 64
