/**
 * A swarm key that does not match, seen on the first bytes instead of at a time-out.
 *
 * A private network (@libp2p/pnet) carries no proof of its key: under another key (or none on one side)
 * the other side's bytes decrypt to noise. Often the noise fails at once (a length prefix above
 * multistream-select's 1,024 bytes), but about half the time it reads as a length prefix the bytes that
 * came do not fill, and multistream-select waits for the rest, which never comes: both sides wait until a
 * time-out (measured: 5 of 8 dials with another key).
 * A dial that times out is not a refusal (a seeder busy with a rollout's handshakes is slow, not closed),
 * so a host with the wrong key would retry until its --timeout instead of exiting with "lacks its swarm
 * key".
 *
 * The same happens between a node with a key and one without (whose plaintext reads the other's nonce as
 * a length prefix), whichever of the two dials.
 *
 * Every libp2p connection over TCP (the one transport here; QUIC and WebRTC skip the protector) starts, in
 * each direction, with multistream-select's header (a varint
 * length 19, then "/multistream/1.0.0\n": github.com/multiformats/multistream-select), which negotiates
 * the encryption. So the first 20 bytes a node receives (decrypted, in a private swarm) are known, and a
 * mismatch shows on the first byte that differs (after 1 byte with probability 255/256): the connection
 * is aborted then, the other side sees it closed during the handshake, and both read it as a refusal at
 * once (membership.ts refusalReason). Every node checks, with a key or without.
 */
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'

/** multistream-select 1.0.0's header as sent on the wire: varint length, then the protocol id and "\n". */
const MULTISTREAM_HEADER = new Uint8Array([19, ...new TextEncoder().encode('/multistream/1.0.0\n')])

export class SwarmKeyMismatchError extends Error {
  override readonly name = 'SwarmKeyMismatchError'
}

/**
 * The stream @libp2p/pnet returns, or @libp2p/tcp's connection: an AbstractMessageStream, fed (decrypted)
 * bytes through `onData`, which holds in `readBuffer` what arrived before anyone listened (pnet's remote
 * nonce and the first bytes after it often come in one segment, and are decrypted before `protect`
 * returns).
 */
type FedStream = MessageStream & { onData?: (data: Uint8Array | Uint8ArrayList) => void, readBuffer?: Uint8ArrayList }

/**
 * libp2p's `connectionProtector` for every node: `pnet` (the swarm key's) or none, and a connection whose
 * first bytes received (after `pnet`'s decryption) are not multistream-select's header aborted, after
 * `onMismatch` is told of it (the connection given to `protect`). The upgrade then fails as
 * EncryptionFailedError: on this side with the abort's SwarmKeyMismatchError or an end-of-stream, on the
 * other as the connection closed during the handshake.
 * Throws on every connection if the stream is not the one described above (a @libp2p/pnet, @libp2p/tcp
 * or @libp2p/utils that changed; read against pnet 3.0.27, tcp 11.0.28): members then cannot connect at
 * all, which every test with two nodes shows at once.
 */
export function checkSwarmKey (pnet: (() => ConnectionProtector) | undefined, onMismatch: (connection: MessageStream) => void): () => ConnectionProtector {
  return () => {
    const inner = pnet?.()
    return {
      protect: async (connection, options) => {
        const stream = (inner === undefined ? connection : await inner.protect(connection, options)) as FedStream
        const feed = stream.onData?.bind(stream)
        if (feed === undefined || stream.readBuffer === undefined) throw new Error('the connection\'s stream has no onData or readBuffer: swarm-key-check.ts needs updating')
        let checked = 0
        /**
         * Whether `data` (the next bytes received) agrees with the header: on the first byte that differs the
         * stream is aborted and takes nothing more; once all 20 agree, `onData` is the stream's own again.
         */
        const agrees = (data: Uint8Array | Uint8ArrayList): boolean => {
          const bytes = data.subarray(0, Math.min(data.byteLength, MULTISTREAM_HEADER.length - checked))
          for (let i = 0; i < bytes.length; i++) {
            if (bytes[i] !== MULTISTREAM_HEADER[checked + i]) {
              stream.onData = () => {}
              onMismatch(connection)
              stream.abort(new SwarmKeyMismatchError('the first bytes received are not multistream-select\'s header: one side holds a swarm key and the other another one, or none'))
              return false
            }
          }
          checked += bytes.length
          if (checked === MULTISTREAM_HEADER.length) stream.onData = feed
          return true
        }
        // Installed before the bytes already held are checked, which may replace it.
        stream.onData = data => { if (agrees(data)) feed(data) }
        agrees(stream.readBuffer)
        return stream
      }
    }
  }
}
