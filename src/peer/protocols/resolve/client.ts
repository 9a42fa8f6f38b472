/** Asking seeders what NAME@VERSION (or NAME@latest) is: the signed items they hold for it. */
import type { PeerId } from '@libp2p/interface'
import { NotFoundError, NotMemberError, ProtocolError, TimeoutError } from '../../../errors.ts'
import type { Logger } from '../../../log.ts'
import { formatModelRef, type ModelRef } from '../../../model-version.ts'
import { backoffDelay } from '../../../util/backoff.ts'
import { sleep } from '../../../util/sleep.ts'
import type { SwarmComponents } from '../../swarm-components.ts'
import { sendFrame, streamReader } from '../stream-io.ts'
import { decodeResolveHead, encodeResolveRequest } from './codec.ts'
import { MAX_RESOLVE_HEAD, MAX_RESOLVE_ITEM, RESOLVE_IDLE_MS, RESOLVE_PROTOCOL } from './constants.ts'

/** Asks `peer` for the signed items of `ref`. Throws NotFoundError when it does not know it. */
export async function resolve (components: SwarmComponents, peer: PeerId, ref: ModelRef, signal?: AbortSignal): Promise<Uint8Array[]> {
  const stream = await components.dialProtocol(peer, RESOLVE_PROTOCOL, { signal })
  const reader = streamReader(stream, RESOLVE_IDLE_MS)
  try {
    await sendFrame(stream, encodeResolveRequest(ref))
    const count = decodeResolveHead(await reader.readFrame(MAX_RESOLVE_HEAD) ?? new Uint8Array())
    if (count === undefined) throw new NotFoundError(`${peer.toString()} does not know ${formatModelRef(ref)}`)
    const items: Uint8Array[] = []
    for (let i = 0; i < count; i++) {
      const f = await reader.readFrame(MAX_RESOLVE_ITEM)
      if (f === undefined) throw new ProtocolError('resolve answer ended early')
      items.push(f)
    }
    await stream.close().catch(() => {})
    return items
  } catch (err) {
    stream.abort(err as Error)
    throw err
  } finally {
    reader.dispose()
  }
}

/** Rounds in a row in which every seeder refused this node before it gives up with NotMemberError. */
export const REFUSED_ROUNDS = 3

export interface Bootstrap { peer: PeerId, addr: string }

export interface ResolveRetryOptions {
  /** Dials a bootstrap address (the libp2p node's dial). */
  dial: (addr: string, signal: AbortSignal) => Promise<unknown>
  /** Give up after this long without an answer. */
  timeoutMs: number
  /** Deadline for one dial, and for one resolve exchange. */
  dialTimeoutMs: number
  resolveTimeoutMs: number
  /** Errors that end the search at once (bad signatures, untrusted keys): retrying cannot change them. */
  isFinal: (err: unknown) => boolean
  /** Why an error means the seeder refused this node (membership.ts refusalReason); undefined: another failure. */
  refusal?: (err: unknown) => string | undefined
  log: Logger
  signal?: AbortSignal
}

/**
 * Asks each bootstrap seeder in turn, round after round with backoff, until one answers with items that
 * `accept` takes. Throws NotFoundError once every seeder said it does not know the version three times
 * (a few rounds cover a publish race), NotMemberError once every seeder refused this node
 * REFUSED_ROUNDS rounds in a row, TimeoutError after `timeoutMs`, or what `accept` throws when final.
 */
export async function resolveFromSeeders<T> (
  components: SwarmComponents, bootstrap: readonly Bootstrap[], ref: ModelRef, accept: (items: Uint8Array[]) => Promise<T>, opts: ResolveRetryOptions
): Promise<T> {
  const want = formatModelRef(ref)
  const deadline = Date.now() + opts.timeoutMs
  const reasons = new Map<string, string>()
  let notFound = 0
  let refusedRounds = 0
  for (let attempt = 1; ; attempt++) {
    let refused = 0
    const notFoundBefore = notFound
    for (const b of bootstrap) {
      const dialSignal = AbortSignal.timeout(opts.dialTimeoutMs)
      let dialed = false
      try {
        await opts.dial(b.addr, dialSignal)
        dialed = true
        return await accept(await resolve(components, b.peer, ref, AbortSignal.timeout(opts.resolveTimeoutMs)))
      } catch (err) {
        if (opts.isFinal(err)) throw err
        if (err instanceof NotFoundError) notFound++
        // A dial this node gave up on was slow, not refused, whatever error the abort surfaced as.
        const refusal = !dialed && dialSignal.aborted ? undefined : opts.refusal?.(err)
        if (refusal !== undefined) refused++
        reasons.set(b.addr, refusal ?? (err as Error).message)
      }
    }
    // One refusal may be a seeder restarting mid-handshake; every seeder, round after round, is a verdict.
    refusedRounds = refused === bootstrap.length ? refusedRounds + 1 : 0
    if (refusedRounds >= REFUSED_ROUNDS) throw new NotMemberError(`every seeder refused this host ${REFUSED_ROUNDS} times: ${[...reasons].map(([a, r]) => `${a}: ${r}`).join('; ')}`)
    if (notFound >= bootstrap.length * 3) throw new NotFoundError(`${want} not found on any seeder (${bootstrap.length} asked) — check the name and version, or whether the seeder has published it`)
    if (Date.now() > deadline || opts.signal?.aborted === true) {
      throw new TimeoutError(`could not resolve ${want}: ${[...reasons].map(([a, r]) => `${a}: ${r}`).join('; ')}`)
    }
    const delay = backoffDelay(attempt, { baseMs: 500, maxMs: 10_000 })
    // Every seeder answering that it does not know the version is no fault (the version may be publishing,
    // or the caller asked for one that does not exist): info, not warn.
    const level = notFound - notFoundBefore === bootstrap.length ? 'info' : 'warn'
    opts.log[level]({ version: want, retryInMs: Math.round(delay), reasons: Object.fromEntries(reasons) }, 'no seeder answered yet')
    await sleep(delay, opts.signal)
  }
}
