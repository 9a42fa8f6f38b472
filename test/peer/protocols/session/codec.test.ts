/** Session protocol frames: round trips, validation, and a small seeded fuzz of the decoder. */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { decodeSessionMessage, encodeSessionMessage, type SessionMessage } from '../../../../src/peer/protocols/session/codec.ts'
import { ProtocolError } from '../../../../src/errors.ts'
import { createRng, randomInt, type Rng } from '../../../../src/util/random.ts'

const HEADER_ID = 'ab'.repeat(32)
const KEY = randomBytes(32).toString('base64')
const TYPE = { hello: 1, signed: 2, bitfield: 3, have: 4, peers: 5, report: 6, bulk: 7, corrupt: 8 } as const

const samples: SessionMessage[] = [
  { type: 'hello', headerId: HEADER_ID, role: 'seeder' },
  { type: 'hello', headerId: '0'.repeat(64), role: 'peer' },
  { type: 'signed', bytes: Uint8Array.from(randomBytes(300)) },
  { type: 'signed', bytes: new Uint8Array(0) },
  { type: 'bitfield', bytes: Uint8Array.of(0xff, 0x00, 0x80) },
  { type: 'have', indexes: [] },
  { type: 'have', indexes: [0, 1, 7, 65_535, 0xffffffff] },
  { type: 'peers', peers: [] },
  { type: 'peers', peers: [{ id: '12D3KooWA', addrs: ['/ip4/10.0.0.1/tcp/4001', '/ip4/10.0.0.1/tcp/4002'] }, { id: '12D3KooWB', addrs: [] }] },
  { type: 'report', report: { have: 3, total: 10, bytesDown: 1e9, bytesUp: 0, rateDown: 12.5, state: 'downloading' } },
  { type: 'report', report: { have: 0, total: 10, bytesDown: 0, bytesUp: 0, rateDown: 0, state: 'stalled', reason: 'no peer has chunk 4' } },
  { type: 'bulk', grant: { port: 4001, identity: 'f'.repeat(32), key: KEY } },
  { type: 'bulk', grant: { port: 65535, identity: '', key: KEY } },
  { type: 'bulk', grant: { port: 4001, identity: 'abc', key: KEY, receipts: true } },
  { type: 'bulk', grant: { port: 4001, identity: 'abc', key: KEY, receipts: true, held: true } },
  { type: 'corrupt', indexes: [1, 0xffffffff] }
]

/** Raw bodies compare as bytes; everything else structurally. */
function normal (m: SessionMessage): unknown {
  return m.type === 'signed' || m.type === 'bitfield' ? { type: m.type, bytes: Buffer.from(m.bytes).toString('hex') } : m
}

function jsonFrame (type: number, value: unknown): Uint8Array {
  return Buffer.concat([Uint8Array.of(type), Buffer.from(JSON.stringify(value) ?? '')])
}

function expectRejected (frame: Uint8Array): void {
  expect(() => decodeSessionMessage(frame)).toThrow(ProtocolError)
}

/** Decodes, accepting only a message or an ProtocolError; returns which happened. */
function decodeOrInvalid (frame: Uint8Array): 'ok' | 'invalid' {
  try {
    decodeSessionMessage(frame)
    return 'ok'
  } catch (err) {
    if (err instanceof ProtocolError) return 'invalid'
    throw new Error(`frame ${Buffer.from(frame).toString('hex').slice(0, 200)} threw ${String(err)}`, { cause: err })
  }
}

describe('session messages', () => {
  it.each(samples.map(m => [m.type, m] as const))('%s round-trips', (_type, m) => {
    const frame = encodeSessionMessage(m)
    expect(frame[0]).toBe(TYPE[m.type])
    expect(normal(decodeSessionMessage(frame))).toEqual(normal(m))
  })

  it('decodes a frame that is a view into a larger buffer', () => {
    const frame = encodeSessionMessage({ type: 'have', indexes: [5, 6] })
    const big = Buffer.concat([Buffer.alloc(3, 0xee), frame, Buffer.alloc(4, 0xee)])
    expect(decodeSessionMessage(big.subarray(3, 3 + frame.length))).toEqual({ type: 'have', indexes: [5, 6] })
  })

  it('rejects an empty frame and unknown types', () => {
    expectRejected(new Uint8Array(0))
    for (const t of [0, 8, 42, 255]) expectRejected(Uint8Array.of(t, 0x7b, 0x7d))
  })

  it('rejects a HAVE whose length is not a multiple of 4', () => {
    for (const n of [1, 2, 3, 5, 7]) expectRejected(Buffer.concat([Uint8Array.of(TYPE.have), Buffer.alloc(n)]))
    expect(decodeSessionMessage(Buffer.concat([Uint8Array.of(TYPE.have), Buffer.alloc(8)]))).toEqual({ type: 'have', indexes: [0, 0] })
  })

  it('rejects a bulk grant whose key is not 32 bytes, or whose port or identity is wrong', () => {
    const good = { port: 4001, identity: 'abc', key: KEY }
    for (const n of [0, 16, 31, 33, 64]) expectRejected(jsonFrame(TYPE.bulk, { ...good, key: randomBytes(n).toString('base64') }))
    for (const port of [0, -1, 65536, 1.5, '4001', null]) expectRejected(jsonFrame(TYPE.bulk, { ...good, port }))
    expectRejected(jsonFrame(TYPE.bulk, { ...good, identity: 7 }))
    expectRejected(jsonFrame(TYPE.bulk, { port: 4001, identity: 'abc' }))
    // Extra fields are dropped, not passed on.
    expect(decodeSessionMessage(jsonFrame(TYPE.bulk, { ...good, extra: 1 }))).toEqual({ type: 'bulk', grant: good })
    // Receipts are offered only by a literal true: anything else reads as a node that takes none.
    for (const receipts of [false, 1, 'true', null]) expect(decodeSessionMessage(jsonFrame(TYPE.bulk, { ...good, receipts }))).toEqual({ type: 'bulk', grant: good })
    // So is reading the requester's held count (chunk/codec.ts).
    for (const held of [false, 1, 'true', null]) expect(decodeSessionMessage(jsonFrame(TYPE.bulk, { ...good, held }))).toEqual({ type: 'bulk', grant: good })
  })

  it('rejects a hello with a malformed header id or role', () => {
    for (const headerId of ['AB'.repeat(32), 'ab'.repeat(31), 'ab'.repeat(33), 'zz'.repeat(32), 5]) expectRejected(jsonFrame(TYPE.hello, { headerId, role: 'peer' }))
    for (const role of ['leech', '', null]) expectRejected(jsonFrame(TYPE.hello, { headerId: HEADER_ID, role }))
  })

  it('rejects malformed peer lists and reports', () => {
    for (const peers of [{}, [{ id: 1, addrs: [] }], [{ id: 'a' }], [{ id: 'a', addrs: [1] }], [null], 'x']) expectRejected(jsonFrame(TYPE.peers, peers))
    for (const report of [[], { have: '1', total: 2 }, { have: 1 }, 'x', 3]) expectRejected(jsonFrame(TYPE.report, report))
  })

  it('caps peer lists at 64 entries', () => {
    const peers = Array.from({ length: 100 }, (_, i) => ({ id: `12D3KooW${i}`, addrs: [`/ip4/10.0.0.${i}/tcp/4001`] }))
    const m = decodeSessionMessage(encodeSessionMessage({ type: 'peers', peers }))
    expect(m.type === 'peers' && m.peers).toEqual(peers.slice(0, 64))
  })

  it('JSON bodies of every shape decode or fail as ProtocolError', () => {
    const values: unknown[] = [1, -1, 0.5, true, false, '', 'x', [], [1], [null], {}, { headerId: null }, { port: null }, { have: null, total: null }, [{ id: null }], [{ id: 'a', addrs: null }]]
    for (const type of [TYPE.hello, TYPE.peers, TYPE.report, TYPE.bulk]) {
      for (const v of values) decodeOrInvalid(jsonFrame(type, v))
      expect(decodeOrInvalid(jsonFrame(type, null))).toBe('invalid')
      // Not JSON at all.
      expectRejected(Buffer.concat([Uint8Array.of(type), Buffer.from('{"')]))
    }
  })

  it('fuzz: 2,000 random frames and 2,000 mutated valid frames decode or fail as ProtocolError, nothing else', () => {
    const rng: Rng = createRng(0x5e55)
    const byte = (): number => randomInt(rng, 256)
    const outcomes = { ok: 0, invalid: 0 }
    for (let n = 0; n < 2000; n++) {
      const len = randomInt(rng, 48)
      const frame = new Uint8Array(len)
      for (let i = 0; i < len; i++) frame[i] = byte()
      // Mostly known type bytes, so the fuzz reaches each body parser.
      if (len > 0 && randomInt(rng, 4) !== 0) frame[0] = 1 + randomInt(rng, 7)
      outcomes[decodeOrInvalid(frame)]++
    }
    const valid = samples.map(encodeSessionMessage)
    for (let n = 0; n < 2000; n++) {
      let frame = Buffer.from(valid[randomInt(rng, valid.length)]!)
      const op = randomInt(rng, 4)
      if (op === 0 && frame.length > 1) frame[1 + randomInt(rng, frame.length - 1)] = byte()
      else if (op === 1) frame = frame.subarray(0, randomInt(rng, frame.length + 1))
      else if (op === 2) {
        const at = 1 + randomInt(rng, Math.max(1, frame.length - 1))
        frame = Buffer.concat([frame.subarray(0, at), Uint8Array.of(byte()), frame.subarray(at)])
      } else if (frame.length > 1) {
        const at = 1 + randomInt(rng, frame.length - 1)
        frame = Buffer.concat([frame.subarray(0, at), frame.subarray(at + 1)])
      }
      outcomes[decodeOrInvalid(frame)]++
    }
    // Both paths were exercised (a decoder that accepted or rejected everything would be suspect).
    expect(outcomes.ok).toBeGreaterThan(100)
    expect(outcomes.invalid).toBeGreaterThan(100)
  })
})
