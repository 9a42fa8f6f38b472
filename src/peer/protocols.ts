/** Wire protocol ids and message-size caps, in one place. */
export const PROTOCOL_PREFIX = '/modelswarm'
/** Kad-DHT under a private prefix, so modelswarm nodes never join or pollute the public DHT. */
export const DHT_PROTOCOL = `${PROTOCOL_PREFIX}/kad/1.0.0`
/** Long-lived per-version control stream: hello, signed metadata, bitfields, HAVEs, neighbours, reports. */
export const SESSION_PROTOCOL = `${PROTOCOL_PREFIX}/session/1.0.0`
/** One stream per chunk request. */
export const CHUNK_PROTOCOL = `${PROTOCOL_PREFIX}/chunk/1.0.0`
/** Resolves NAME@VERSION (or @latest) to signed metadata. */
export const RESOLVE_PROTOCOL = `${PROTOCOL_PREFIX}/resolve/1.0.0`

/** Session frames carry at most a full signed manifest's worth of hashes plus headers. */
export const MAX_SESSION_FRAME = 8 * 1024 * 1024
export const MAX_RESOLVE_FRAME = 64 * 1024 * 1024
export const MAX_CHUNK_REQUEST = 1024
