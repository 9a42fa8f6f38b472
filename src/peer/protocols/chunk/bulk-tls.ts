/**
 * The bulk data path, shared by its server and client: chunk exchange over TLS 1.2 with a pre-shared key (PSK-AES128-GCM-SHA256).
 *
 * Why: libp2p's Noise + yamux costs ≈ 2.5–3 CPU-s per GiB received (ChaCha20 in JavaScript framing, one
 * cipher object per 64 KiB frame); OpenSSL's AES-GCM through node:tls costs ≈ 0.8 (FACTS.md). libp2p
 * still does everything else — discovery, authentication, metadata — and it is what makes this safe:
 * each node hands every neighbour a fresh random 256-bit key over their Noise-encrypted, peer-id
 * authenticated session, so a bulk connection is as authenticated as the session that granted it, and
 * its key never leaves that channel (forward secrecy comes from Noise's ephemeral keys).
 */
import type { TLSSocket } from 'node:tls'
import { untilDrained } from '../../../util/drain.ts'
import { StreamEndedError } from '../byte-reader.ts'
import type { Send } from './codec.ts'

export const BULK_TLS = { ciphers: 'PSK-AES128-GCM-SHA256', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const
/** A persistent bulk connection may sit idle between requests this long. */
export const BULK_CONNECTION_IDLE_MS = 5 * 60_000
/**
 * A bulk connect (TCP and the TLS handshake) not done after this long has failed. Without it a port a
 * firewall drops (a NetworkPolicy that opens only libp2p's) hung each connect until the request itself was
 * aborted (2 × requestIdleMs), which never counts as the endpoint failing: the host kept trying the bulk
 * path, 40 s a request, and never fell back to libp2p streams. A handshake on a LAN takes milliseconds;
 * 16 processes starting at once on two cores, under a second.
 */
export const BULK_CONNECT_TIMEOUT_MS = 10_000

/**
 * Writes with backpressure. net.Socket's 16 KiB high-water mark would make every 1 MiB write wait for a
 * full flush, leaving the link idle while the next slice is read; queue up to 2 MiB instead.
 */
const MAX_QUEUED = 2 * 1024 * 1024

export function socketSender (socket: TLSSocket): Send {
  return async (data, release) => {
    if (socket.destroyed) throw new StreamEndedError('bulk connection closed')
    // The callback runs once TLS has encrypted the bytes: the buffer may then be reused.
    socket.write(data, release === undefined ? undefined : () => release())
    while (socket.writableLength > MAX_QUEUED) await untilDrained(socket, () => new StreamEndedError('bulk connection closed while sending'))
  }
}
