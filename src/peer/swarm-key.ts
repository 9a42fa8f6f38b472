/**
 * The swarm key of a libp2p private network: a 32-byte secret every member holds, in the file format of
 * go-libp2p and IPFS (`swarm.key`), so one key file serves modelswarm and any go-libp2p tooling:
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits>
 *
 * go-libp2p (core/pnet/codec.go DecodeV1PSK) also reads the encodings `/base64/` and `/bin/` (the 32 raw
 * bytes); so does this parser. @libp2p/pnet reads only base16, so the key is handed to it re-encoded.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { SwarmKeyError } from '../errors.ts'
import { createExclusive } from '../util/files.ts'

const HEADER = '/key/swarm/psk/1.0.0/'
export const SWARM_KEY_BYTES = 32

/**
 * The 32-byte key in a swarm key file's bytes. `file` names the file in errors.
 * @throws SwarmKeyError naming what is wrong (header, encoding, length) and how to make a good one
 */
export function parseSwarmKey (bytes: Uint8Array, file: string): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bad = (why: string): SwarmKeyError => new SwarmKeyError(`swarm key ${file}: ${why}; expected the lines ${HEADER}, /base16/ and 64 hex digits (as \`modelswarm keygen --swarm-key-file\` writes)`)
  const lineEnd = (from: number): number => { const i = buf.indexOf(0x0a, from); return i < 0 ? buf.length : i }
  const header = buf.subarray(0, lineEnd(0))
  if (trimCr(header.toString('latin1')) !== HEADER) throw bad(`first line is ${JSON.stringify(trimCr(header.toString('latin1')).slice(0, 40))}, not ${HEADER}`)
  const codecStart = header.length + 1
  const codecEnd = lineEnd(codecStart)
  const codec = trimCr(buf.subarray(codecStart, codecEnd).toString('latin1'))
  const body = buf.subarray(Math.min(codecEnd + 1, buf.length))
  let key: Buffer
  switch (codec) {
    case '/base16/': {
      const text = body.toString('latin1').trim()
      if (!/^[0-9a-fA-F]*$/.test(text)) throw bad('the key is not hex')
      key = Buffer.from(text, 'hex')
      break
    }
    case '/base64/': {
      const text = body.toString('latin1').trim()
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw bad('the key is not base64')
      key = Buffer.from(text, 'base64')
      break
    }
    case '/bin/':
      // Raw bytes may end in what looks like a newline: take exactly the key's length, as go-libp2p does.
      key = body.subarray(0, SWARM_KEY_BYTES)
      if (body.subarray(SWARM_KEY_BYTES).toString('latin1').trim() !== '') throw bad('bytes follow the 32-byte key')
      break
    default:
      throw bad(`unknown encoding ${JSON.stringify(codec.slice(0, 40))} (go-libp2p knows /base16/, /base64/ and /bin/)`)
  }
  if (key.length !== SWARM_KEY_BYTES) throw bad(`the key is ${key.length} bytes, not ${SWARM_KEY_BYTES}`)
  return new Uint8Array(key)
}

/** The canonical file text of a key: header, /base16/, hex, newline (what @libp2p/pnet reads). */
export function formatSwarmKey (key: Uint8Array): string {
  if (key.length !== SWARM_KEY_BYTES) throw new SwarmKeyError(`a swarm key is ${SWARM_KEY_BYTES} bytes, not ${key.length}`)
  return `${HEADER}\n/base16/\n${Buffer.from(key).toString('hex')}\n`
}

/**
 * A short public name of a key (16 hex digits of a SHA-256 under a domain tag), for logs and status: two
 * members with the same fingerprint hold the same key, and the fingerprint tells nothing about the key.
 */
export function swarmKeyFingerprint (key: Uint8Array): string {
  return createHash('sha256').update('modelswarm/swarm-key/1\0').update(key).digest('hex').slice(0, 16)
}

/**
 * Reads and parses a swarm key file.
 * @throws SwarmKeyError when it cannot be read or is malformed
 */
export async function loadSwarmKey (file: string): Promise<Uint8Array> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new SwarmKeyError(`swarm key ${file}: ${(err as Error).message}`, { cause: err })
  }
  return parseSwarmKey(bytes, file)
}

/**
 * Writes a new random swarm key to `file` with mode 0600, unless a file is already there (then that file's
 * key is kept, and must parse). Returns the key and whether it was created.
 * @throws SwarmKeyError when an existing file is not a swarm key
 */
export async function createSwarmKeyFile (file: string): Promise<{ key: Uint8Array, created: boolean }> {
  const key = new Uint8Array(randomBytes(SWARM_KEY_BYTES))
  if (await createExclusive(file, Buffer.from(formatSwarmKey(key)), 0o600)) return { key, created: true }
  return { key: await loadSwarmKey(file), created: false }
}

function trimCr (s: string): string {
  return s.endsWith('\r') ? s.slice(0, -1) : s
}
