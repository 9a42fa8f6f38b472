/** The seeder's persistent libp2p key: created on first start, reused after, never leaves the host. */
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
  try {
    return { key: privateKeyFromProtobuf(bytes), created: false }
  } catch (err) {
    throw new InvalidInputError(`${path} is not a libp2p private key — remove it to create a new identity (peers must then trust the new key)`, { cause: err })
  }
}
