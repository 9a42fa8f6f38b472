/** `modelswarm keygen`: a swarm key and/or an identity key, each written once with mode 0600. */
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { InvalidInputError } from '../errors.ts'
import { createSwarmKeyFile, swarmKeyFingerprint } from '../peer/swarm-key.ts'
import { loadOrCreateKey } from '../seeder/identity.ts'

export interface KeygenCommandOptions {
  swarmKeyFile?: string
  identityFile?: string
  json: boolean
}

/**
 * Creates each file asked for unless it exists (an existing file is kept, checked and described: keygen
 * never replaces a key members rely on). Prints the swarm key's fingerprint and the identity's peer id.
 * @throws InvalidInputError when neither file is named or an existing identity is not a key; SwarmKeyError for a bad swarm key file
 */
export async function runKeygen (opts: KeygenCommandOptions): Promise<void> {
  if (opts.swarmKeyFile === undefined && opts.identityFile === undefined) throw new InvalidInputError('name what to create: --swarm-key-file FILE and/or --identity-file FILE')
  const out: Record<string, unknown> = {}
  if (opts.swarmKeyFile !== undefined) {
    await mkdir(dirname(opts.swarmKeyFile), { recursive: true })
    const { key, created } = await createSwarmKeyFile(opts.swarmKeyFile)
    out.swarmKey = { file: opts.swarmKeyFile, created, fingerprint: swarmKeyFingerprint(key) }
  }
  if (opts.identityFile !== undefined) {
    const { key, created } = await loadOrCreateKey(opts.identityFile)
    out.identity = { file: opts.identityFile, created, peerId: peerIdFromPrivateKey(key).toString() }
  }
  if (opts.json) {
    process.stdout.write(JSON.stringify(out) + '\n')
    return
  }
  const swarmKey = out.swarmKey as { file: string, created: boolean, fingerprint: string } | undefined
  const identity = out.identity as { file: string, created: boolean, peerId: string } | undefined
  if (swarmKey !== undefined) process.stdout.write(`swarm key ${swarmKey.created ? 'written to' : 'kept at'} ${swarmKey.file} (fingerprint ${swarmKey.fingerprint}); give every member this file (--swarm-key-file)\n`)
  if (identity !== undefined) process.stdout.write(`identity ${identity.created ? 'written to' : 'kept at'} ${identity.file}: peer id ${identity.peerId} (for --trust if it seeds, --allow-peers elsewhere)\n`)
}
