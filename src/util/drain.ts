/**
 * Waiting for a writer's 'drain', for both kinds of writer the data path has: node:net/tls sockets
 * (EventEmitter) and libp2p v3 streams (EventTarget). A 'close' before the drain rejects with
 * `closedError()`, an abort with the signal's reason.
 *
 * libp2p streams are waited on through their 'drain' event rather than `stream.onDrain()`: in
 * @libp2p/utils 7.4.1 onDrain's promise is never reset after the first drain, so a loop on it queues a
 * whole file in memory (FACTS.md; test/peer/protocols/stream-io.test.ts keeps a sender's memory bounded).
 */
import type { EventEmitter } from 'node:events'
import { once } from 'node:events'

type Target = EventTarget | EventEmitter

function listen (target: Target, event: string, fn: () => void): () => void {
  if ('addEventListener' in target) {
    target.addEventListener(event, fn)
    return () => target.removeEventListener(event, fn)
  }
  target.on(event, fn)
  return () => { target.off(event, fn) }
}

export async function untilDrained (target: Target, closedError: () => Error, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  const ac = new AbortController()
  const stopClose = listen(target, 'close', () => ac.abort(closedError()))
  const onAbort = (): void => ac.abort(signal!.reason)
  signal?.addEventListener('abort', onAbort)
  try {
    await ('addEventListener' in target ? once(target, 'drain', { signal: ac.signal }) : once(target, 'drain', { signal: ac.signal }))
  } catch (err) {
    throw ac.signal.aborted ? ac.signal.reason : err
  } finally {
    stopClose()
    signal?.removeEventListener('abort', onAbort)
  }
}
