/**
 * Signed publications. The seeder signs each thing it publishes with its libp2p key; peers accept only
 * what a key they were told to trust signed, and may relay the signed bytes unchanged to others.
 *
 * Wire form: u8 kind | u16 signer length | signer peer-id bytes | u16 signature length | signature | payload.
 * The signature covers a domain tag, the kind and the payload, so a signature over one kind can never be
 * replayed as another.
 */
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import * as Digest from 'multiformats/hashes/digest'
import { IntegrityError, InvalidInputError, UntrustedSignerError } from '../errors.ts'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

export const SIGNED_KIND = { header: 1, hashes: 2, complete: 3, latest: 4 } as const
export type SignedKind = keyof typeof SIGNED_KIND
const KIND_NAMES = new Map<number, SignedKind>(Object.entries(SIGNED_KIND).map(([k, v]) => [v, k as SignedKind]))
const DOMAIN = Buffer.from('modelswarm/signed/1\0')

export interface Signed {
  readonly kind: SignedKind
  readonly signer: string
  readonly payload: Uint8Array
  /** The exact bytes received, kept for relaying. */
  readonly bytes: Uint8Array
}

export async function sign (kind: SignedKind, payload: Uint8Array, key: PrivateKey): Promise<Signed> {
  const signerBytes = peerIdFromPrivateKey(key).toMultihash().bytes
  const sig = await key.sign(signedData(SIGNED_KIND[kind], payload))
  const out = Buffer.alloc(1 + 2 + signerBytes.length + 2 + sig.length + payload.length)
  let o = out.writeUInt8(SIGNED_KIND[kind], 0)
  o = out.writeUInt16BE(signerBytes.length, o)
  out.set(signerBytes, o)
  o = out.writeUInt16BE(sig.length, o + signerBytes.length)
  out.set(sig, o)
  out.set(payload, o + sig.length)
  return { kind, signer: peerIdFromPrivateKey(key).toString(), payload, bytes: out }
}

/** The set of seeder keys a peer accepts publications from, given as peer ids (12D3KooW…). */
export class TrustList {
  readonly #keys = new Map<string, PeerId>()

  constructor (peerIds: readonly string[]) {
    for (const s of peerIds) {
      let id: PeerId
      try {
        id = peerIdFromString(s)
      } catch (err) {
        throw new InvalidInputError(`--trust ${JSON.stringify(s)} is not a peer id (expected the seeder's public key as printed by \`modelswarm seed\`, e.g. 12D3KooW…)`, { cause: err })
      }
      if (id.publicKey === undefined) throw new InvalidInputError(`--trust ${s}: peer id does not embed a public key (use an Ed25519 key)`)
      this.#keys.set(id.toString(), id)
    }
  }

  get size (): number { return this.#keys.size }
  has (peerId: string): boolean { return this.#keys.has(peerId) }

  /** Decodes and verifies signed bytes; throws IntegrityError or UntrustedSignerError. */
  async verify (bytes: Uint8Array, expected?: SignedKind): Promise<Signed> {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (buf.length < 5) throw new IntegrityError('signed message truncated')
    const kind = KIND_NAMES.get(buf.readUInt8(0))
    if (kind === undefined) throw new IntegrityError(`unknown signed kind ${buf.readUInt8(0)}`)
    if (expected !== undefined && kind !== expected) throw new IntegrityError(`expected a signed ${expected}, got ${kind}`)
    const signerLen = buf.readUInt16BE(1)
    if (buf.length < 3 + signerLen + 2) throw new IntegrityError('signed message truncated')
    let signer: PeerId
    try {
      signer = peerIdFromMultihash(Digest.decode(buf.subarray(3, 3 + signerLen)))
    } catch (err) {
      throw new IntegrityError('signed message has an invalid signer', { cause: err })
    }
    const trusted = this.#keys.get(signer.toString())
    if (trusted?.publicKey === undefined) throw new UntrustedSignerError(`${kind} signed by ${signer.toString()}, which is not a trusted seeder key (--trust)`)
    const sigLen = buf.readUInt16BE(3 + signerLen)
    const sigStart = 3 + signerLen + 2
    if (buf.length < sigStart + sigLen) throw new IntegrityError('signed message truncated')
    const sig = buf.subarray(sigStart, sigStart + sigLen)
    const payload = buf.subarray(sigStart + sigLen)
    let valid: boolean
    try {
      valid = await trusted.publicKey.verify(signedData(SIGNED_KIND[kind], payload), sig)
    } catch (err) {
      // A malformed signature (wrong length) is as bad as a wrong one, whoever relayed it.
      throw new IntegrityError(`${kind} from ${signer.toString()}: malformed signature`, { cause: err })
    }
    if (!valid) {
      throw new IntegrityError(`${kind} from ${signer.toString()}: signature does not verify`)
    }
    return { kind, signer: signer.toString(), payload, bytes }
  }
}

function signedData (kind: number, payload: Uint8Array): Uint8Array {
  return Buffer.concat([DOMAIN, Uint8Array.of(kind), payload])
}
