/** The session protocol: one long-lived stream per neighbour and version (hello, signed metadata, bitfield, HAVEs, neighbours, reports). */
import { PROTOCOL_PREFIX } from '../prefix.ts'

export const SESSION_PROTOCOL = `${PROTOCOL_PREFIX}/session/1.0.0`
/** Session frames carry at most a full signed manifest's worth of hashes plus headers. */
export const MAX_SESSION_FRAME = 8 * 1024 * 1024
/** Sessions are long-lived and may be quiet for hours; a dead one is detected by the connection's keepalive. */
export const SESSION_IDLE_MS = 24 * 3600_000
/** Deadline for dialing a neighbour and opening its session. */
export const SESSION_DIAL_TIMEOUT_MS = 10_000
/**
 * Deadline for a session's hello, on both sides: a peer that takes the stream and says nothing is given up
 * (SESSION_IDLE_MS is for a live session's quiet hours; with it, such a peer held a dial, and the dialer's
 * discovery round, for a day).
 */
export const SESSION_HELLO_TIMEOUT_MS = 10_000
/** Concurrent inbound sessions per connection: one per version the two nodes share. */
export const MAX_INBOUND_SESSIONS = 1024
/** Neighbour hints in one `peers` message. */
export const MAX_HINTS = 64
