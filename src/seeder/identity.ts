/** The seeder's persistent libp2p key: created on first start, reused after, never leaves the host. */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { InvalidInputError } from '../errors.ts'

export async function loadOrCreateKey (path: string): Promise<{ key: PrivateKey, created: boolean }> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const key = await generateKeyPair('Ed25519')
    await mkdir(dirname(path), { recursive: true })
    await writeFile(path, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' })
    return { key, created: true }
  }
  try {
    return { key: privateKeyFromProtobuf(bytes), created: false }
  } catch (err) {
    throw new InvalidInputError(`${path} is not a libp2p private key — remove it to create a new identity (peers must then trust the new key)`, { cause: err })
  }
}
