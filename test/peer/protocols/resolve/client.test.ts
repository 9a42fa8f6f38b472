/**
 * resolveFromSeeders' retry rules (src/peer/protocols/resolve/client.ts) with an injected dial: a dial this
 * host gave up on (its own time-out) is not a seeder's refusal, whatever error it ends in; a refusal every
 * round is.
 */
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { NotMemberError, TimeoutError } from '../../../../src/errors.ts'
import { silentLogger } from '../../../../src/log.ts'
import { refusalReason } from '../../../../src/peer/membership.ts'
import { resolveFromSeeders, type ResolveRetryOptions } from '../../../../src/peer/protocols/resolve/client.ts'
import type { SwarmComponents } from '../../../../src/peer/swarm-components.ts'
import { errorOf } from '../../../support/errors.ts'

/** What libp2p throws for a handshake cut short: read by refusalReason as the seeder dropping this host. */
const handshakeCut = (): Error => Object.assign(new Error('Encryption failed'), { name: 'EncryptionFailedError' })

async function resolveWith (dial: ResolveRetryOptions['dial']): Promise<unknown> {
  const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  // The dial never succeeds, so resolve() never runs: no components are needed.
  return await errorOf(resolveFromSeeders({} as SwarmComponents, [{ peer, addr: '/ip4/10.0.0.1/tcp/4001' }], { name: 'm', version: 'v1' }, async () => 'never', {
    dial,
    timeoutMs: 2500,
    dialTimeoutMs: 50,
    resolveTimeoutMs: 1000,
    isFinal: () => false,
    refusal: refusalReason,
    log: silentLogger
  }))
}

describe('resolveFromSeeders', () => {
  it('does not count a dial this host gave up on as a refusal, though it ended in a handshake error', async () => {
    const err = await resolveWith(async (_addr, signal) => {
      await new Promise(resolve => signal.addEventListener('abort', resolve))
      throw handshakeCut()
    })
    expect(err).toBeInstanceOf(TimeoutError)
  })

  it('concludes it is no member when every seeder drops the handshake three rounds running', async () => {
    const err = await resolveWith(async () => { throw handshakeCut() })
    expect(err).toBeInstanceOf(NotMemberError)
    expect((err as Error).message).toMatch(/dropped the libp2p handshake/)
  })
})
