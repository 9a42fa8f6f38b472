/**
 * Property tests of every decoder that reads bytes from the network (fast-check): the session, chunk and
 * resolve codecs and signed publications. Whatever arrives, the result is a well-formed value or a typed
 * error (ModelswarmError with a registered code) — never a crash with a TypeError or RangeError, never a hang.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ERROR_CODES, ModelswarmError } from '../../../src/errors.ts'
import { ByteReader } from '../../../src/peer/protocols/byte-reader.ts'
import { readRequest, readResponse, writeRequest } from '../../../src/peer/protocols/chunk/codec.ts'
import { decodeResolveHead, decodeResolveRequest } from '../../../src/peer/protocols/resolve/codec.ts'
import { decodeSessionMessage, encodeSessionMessage } from '../../../src/peer/protocols/session/codec.ts'
import { TrustList } from '../../../src/peer/signed.ts'

const RUNS = 300
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function typed (err: unknown): boolean {
  return err instanceof ModelswarmError && Object.hasOwn(ERROR_CODES, err.code)
}

function outcome (fn: () => unknown): 'value' | 'typed' {
  try {
    fn()
    return 'value'
  } catch (err) {
    if (typed(err)) return 'typed'
    throw err
  }
}

async function outcomeAsync (fn: () => Promise<unknown>): Promise<'value' | 'typed'> {
  try {
    await fn()
    return 'value'
  } catch (err) {
    if (typed(err)) return 'typed'
    throw err
  }
}

/** A reader over `bytes` cut into the given pieces, ending after them. */
function readerOf (bytes: Uint8Array, cuts: number[]): ByteReader {
  const pieces: Uint8Array[] = []
  let at = 0
  for (const c of [...cuts].sort((a, b) => a - b)) {
    const end = Math.min(bytes.length, c)
    if (end > at) pieces.push(bytes.subarray(at, end))
    at = Math.max(at, end)
  }
  if (at < bytes.length) pieces.push(bytes.subarray(at))
  async function * source (): AsyncGenerator<Uint8Array> { yield * pieces }
  return new ByteReader(source(), { idleMs: 60_000, abort: () => {}, what: 'fuzz' })
}

const frameBytes = fc.uint8Array({ maxLength: 300 })
/** Frames that start with a known type tag and carry JSON-ish bodies, so decoding goes past the first byte. */
const jsonish = fc.tuple(fc.integer({ min: 0, max: 9 }), fc.json()).map(([t, j]) => Buffer.concat([Uint8Array.of(t), Buffer.from(j)]))

describe('network decoders never crash', () => {
  it('session frames: a message that re-encodes to the same bytes, or ProtocolError', () => {
    fc.assert(fc.property(fc.oneof(frameBytes, jsonish), bytes => {
      let m
      try {
        m = decodeSessionMessage(bytes)
      } catch (err) {
        expect(typed(err)).toBe(true)
        return
      }
      // What decodes is well-formed: encoding it again gives a frame that decodes to the same message.
      expect(decodeSessionMessage(encodeSessionMessage(m))).toEqual(m)
    }), { numRuns: RUNS })
  })

  it('chunk requests round-trip whatever their marks, failed holders and held count, however they are cut', async () => {
    const request = fc.record({
      index: fc.nat({ max: 0xffffffff }),
      // Peer ids (base58, 52 characters at most): 64 of them, the most a request names, fit its 4,096 bytes.
      failedHolders: fc.array(fc.string({ unit: fc.constantFrom(...BASE58), minLength: 1, maxLength: 52 }), { maxLength: 70 }),
      urgent: fc.boolean(),
      receipt: fc.boolean(),
      held: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined })
    })
    await fc.assert(fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 3 }), fc.array(fc.nat(12_000), { maxLength: 8 }), async (reqs, cuts) => {
      const out: Uint8Array[] = []
      for (const r of reqs) await writeRequest(async b => { out.push(b) }, { headerId: '00'.repeat(32), length: 1, ...r })
      const reader = readerOf(Buffer.concat(out), cuts)
      for (const r of reqs) {
        expect(await readRequest(reader)).toEqual({ headerId: '00'.repeat(32), ...r, failedHolders: r.failedHolders.slice(0, 64) })
      }
      expect(await readRequest(reader)).toBeUndefined()
    }), { numRuns: RUNS })
  })

  it('chunk requests and responses from any bytes, however they are cut: a value or a typed error', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(200), { maxLength: 6 }), fc.nat(64), async (bytes, cuts, length) => {
      expect(['value', 'typed']).toContain(await outcomeAsync(() => readRequest(readerOf(bytes, cuts))))
      expect(['value', 'typed']).toContain(await outcomeAsync(() => readResponse(readerOf(bytes, cuts), { headerId: '00'.repeat(32), index: 0, length })))
    }), { numRuns: RUNS })
  })

  it('resolve requests and answer heads: a value or ProtocolError', () => {
    fc.assert(fc.property(fc.oneof(frameBytes, fc.json().map(j => Buffer.from(j))), bytes => {
      expect(['value', 'typed']).toContain(outcome(() => decodeResolveRequest(bytes)))
      expect(['value', 'typed']).toContain(outcome(() => decodeResolveHead(bytes)))
    }), { numRuns: RUNS })
  })

  it('signed publications: verified, or IntegrityError / untrusted', async () => {
    const trust = new TrustList(['12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'])
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), async bytes => {
      expect(await outcomeAsync(() => trust.verify(bytes))).toBe('typed')
    }), { numRuns: RUNS })
  })
})
