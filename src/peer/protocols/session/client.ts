/** Opening a session with a neighbour: dial, exchange hellos, check it speaks for the same version. */
import type { PeerId } from '@libp2p/interface'
import { ProtocolError } from '../../../errors.ts'
import type { SwarmComponents } from '../../swarm-components.ts'
import type { Role } from './codec.ts'
import { SESSION_DIAL_TIMEOUT_MS, SESSION_PROTOCOL } from './constants.ts'
import { readHello, sendHello, Session } from './session.ts'

/**
 * Dials `peer` and opens a session for version `headerId`. Throws what dialing throws, or ProtocolError
 * when the peer answers for another version or not with a hello.
 */
export async function openSession (components: SwarmComponents, peer: PeerId, headerId: string, role: Role, chunkCount: number): Promise<Session> {
  const stream = await components.dialProtocol(peer, SESSION_PROTOCOL, { signal: AbortSignal.timeout(SESSION_DIAL_TIMEOUT_MS) })
  try {
    await sendHello(stream, headerId, role)
    const hello = await readHello(stream)
    if (hello.headerId !== headerId) throw new ProtocolError('peer answered for another version')
    return new Session(stream, hello.reader, peer, hello.role, chunkCount)
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}
