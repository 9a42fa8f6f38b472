/** Accepting a session: read the hello, answer for the version if this node takes part in it. */
import type { Connection, Stream } from '@libp2p/interface'
import type { Logger } from '../../../log.ts'
import type { Role } from './codec.ts'
import { readHello, sendHello, Session } from './session.ts'

/** What the handler needs of a version this node takes part in. */
export interface SessionTarget {
  role: Role
  chunkCount: number
  attach: (session: Session) => void
  /** Whether to take a session `peer` (its peer id) opened; one declined is closed before any hello. @default always */
  accepts?: (peer: string) => boolean
}

/** Handles one inbound session stream; an unknown version is answered by closing the stream. */
export async function acceptSession (stream: Stream, conn: Connection, find: (headerId: string) => SessionTarget | undefined, log: Logger): Promise<void> {
  try {
    const hello = await readHello(stream)
    const target = find(hello.headerId)
    if (target === undefined) {
      await stream.close()
      return
    }
    if (target.accepts?.(conn.remotePeer.toString()) === false) {
      log.debug({ peer: conn.remotePeer.toString() }, 'inbound session declined: ours with this peer wins')
      await stream.close()
      return
    }
    await sendHello(stream, hello.headerId, target.role)
    target.attach(new Session(stream, hello.reader, conn.remotePeer, hello.role, target.chunkCount))
  } catch (err) {
    log.debug({ peer: conn.remotePeer.toString(), err: (err as Error).message }, 'inbound session failed')
    stream.abort(err as Error)
  }
}
