/** Persistent libp2p keys: the seeder's, created on first start and reused after; a host's, made ahead by keygen. Never leave the host. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { InvalidInputError } from '../errors.ts'
import { createExclusive, readOptional } from '../util/files.ts'

/**
 * The key at `path`, created (mode 0600) when missing. Creation is all or nothing, so a full disk or a crash
 * cannot leave a cut-short key that fails every later start; if another process creates it first, its key is used.
 * @throws InvalidInputError when the file is not a libp2p private key
 */
export async function loadOrCreateKey (path: string): Promise<{ key: PrivateKey, created: boolean }> {
  let bytes = await readOptional(path)
  if (bytes === undefined) {
    const key = await generateKeyPair('Ed25519')
    await mkdir(dirname(path), { recursive: true })
    if (await createExclusive(path, privateKeyToProtobuf(key), 0o600)) return { key, created: true }
    bytes = (await readOptional(path))!
  }
  return { key: decodeKey(bytes, path, 'remove it to create a new identity (peers must then trust the new key)'), created: false }
}

/**
 * The key at `path`, which must exist (a host's identity that allow-lists name is made ahead, by
 * `modelswarm keygen --identity-file`).
 * @throws InvalidInputError when the file is missing or not a libp2p private key
 */
export async function loadKey (path: string): Promise<PrivateKey> {
  const bytes = await readOptional(path)
  if (bytes === undefined) throw new InvalidInputError(`--identity-file ${path} does not exist — create it with \`modelswarm keygen --identity-file ${path}\` (it prints the peer id to allow)`)
  return decodeKey(bytes, path, `create one with \`modelswarm keygen --identity-file FILE\``)
}

function decodeKey (bytes: Uint8Array, path: string, fix: string): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidInputError(`${path} is not a libp2p private key — ${fix}`, { cause: err })
  }
}
