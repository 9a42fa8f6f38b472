/**
 * Bounded-memory stream I/O over real libp2p nodes (TCP loopback, Noise, yamux) in one process.
 * The first test is the regression test for the @libp2p/utils 7.4.1 onDrain bug (FACTS.md): a sender
 * looping on `stream.onDrain()` queues nearly the whole transfer in its write buffer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Connection, Stream } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { createNode, type SwarmNode } from '../../../src/peer/node.ts'
import { closeGracefully, send, sendFrame, streamReader } from '../../../src/peer/protocols/stream-io.ts'
import { ByteReader, StreamEndedError } from '../../../src/peer/protocols/byte-reader.ts'
import { ProtocolError, TimeoutError } from '../../../src/errors.ts'
import { errorOf } from '../../support/errors.ts'

const MiB = 1024 * 1024
const PROTOCOL = '/modelswarm-test/stream-io/1.0.0'

type Handler = (stream: Stream, connection: Connection) => Promise<void>

let a: SwarmNode
let b: SwarmNode
/** What the receiving node does with the next inbound test stream. */
let onStream: Handler = async stream => { stream.abort(new Error('no handler set')) }

beforeAll(async () => {
  a = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  b = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
  await b.handle(PROTOCOL, (stream, connection) => onStream(stream, connection), { maxInboundStreams: 64 })
})

afterAll(async () => {
  await a?.stop()
  await b?.stop()
})

/** Opens a stream from a to b; `handler` runs on b's side and its outcome is returned. */
async function pair (handler: Handler): Promise<{ stream: Stream, remote: Promise<void> }> {
  let settle!: { resolve: () => void, reject: (e: unknown) => void }
  const remote = new Promise<void>((resolve, reject) => { settle = { resolve, reject } })
  onStream = async (s, c) => { try { await handler(s, c); settle.resolve() } catch (err) { settle.reject(err) } }
  const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
  return { stream, remote }
}

/** Rejects with whatever `p` rejects with, as a value (so the test can inspect it). */
/** An async byte source over fixed pieces (ByteReader accepts any such source, e.g. a TLS socket). */
async function * pieces (list: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of list) yield p
}

const idleReader = (source: AsyncIterable<Uint8Array>): ByteReader => new ByteReader(source, { idleMs: 60_000, abort: () => {}, what: 'test' })

describe('send', () => {
  it('a 256 MiB sender to a slow reader never queues more than a few MiB, and every byte arrives intact', async () => {
    const total = 256
    const base = Buffer.alloc(MiB)
    for (let i = 0; i < base.length; i += 4) base.writeUInt32LE((i * 2654435761) >>> 0, i)
    const { stream, remote } = await pair(async s => {
      // A paused yamux stream still takes in up to one window (≤ 16 MiB), more than the 4 MiB default.
      s.maxReadBufferLength = 32 * MiB
      const reader = streamReader(s, 30_000)
      const hash = createHash('sha256')
      let received = 0
      try {
        for (let i = 0; i < total; i++) {
          await reader.readInto(MiB, p => { hash.update(p); received += p.length })
          // A slow consumer: hold back yamux window updates while "busy", so the sender really has to wait.
          s.pause()
          await sleep(2)
          s.resume()
        }
        // Report what arrived in a frame: the sender closes only after reading it, so its end-of-stream
        // never reaches a paused reader (the stream's iterator ends early then, dropping paused bytes).
        const report = Buffer.alloc(8 + 32)
        report.writeBigUInt64BE(BigInt(received), 0)
        hash.digest().copy(report, 8)
        await sendFrame(s, report)
        expect(await reader.atEnd()).toBe(true)
        await closeGracefully(s)
      } finally {
        reader.dispose()
      }
    })
    const sentHash = createHash('sha256')
    let maxQueued = 0
    let drains = 0
    stream.addEventListener('drain', () => { drains++ })
    for (let i = 0; i < total; i++) {
      // A fresh buffer each time: send() queues the buffer itself, so it must not change afterwards.
      const buf = Buffer.from(base)
      buf.writeUInt32BE(i, 0)
      sentHash.update(buf)
      await send(stream, buf)
      maxQueued = Math.max(maxQueued, stream.writeBufferLength)
    }
    // Without backpressure (a loop on the 7.4.1 onDrain) the whole 256 MiB ends up queued.
    expect(maxQueued).toBeLessThan(16 * MiB)
    // The reader was slow enough that the sender did have to wait; otherwise the bound proves nothing.
    expect(drains).toBeGreaterThan(0)
    const reader = streamReader(stream, 30_000)
    const report = Buffer.from((await reader.readFrame(64))!)
    reader.dispose()
    await closeGracefully(stream)
    await remote
    expect(Number(report.readBigUInt64BE(0))).toBe(total * MiB)
    expect(report.subarray(8).toString('hex')).toBe(sentHash.digest('hex'))
  })

  it('rejects with the abort reason when the signal fires while waiting for drain', async () => {
    const { stream, remote } = await pair(async s => {
      // Never read: the sender's window runs out and it must wait.
      s.pause()
      await new Promise<void>(resolve => s.addEventListener('close', () => resolve(), { once: true }))
    })
    const ac = new AbortController()
    const reason = new Error('stop sending')
    const sending = (async () => {
      for (let i = 0; i < 64; i++) await send(stream, Buffer.alloc(MiB), ac.signal)
    })()
    // Abort once the sender is stuck behind the paused reader.
    while (!stream.writableNeedsDrain) await sleep(5)
    ac.abort(reason)
    expect(await errorOf(sending)).toBe(reason)
    stream.abort(reason)
    await remote
  })

  it('rejects with StreamEndedError when the stream closes while waiting for drain', async () => {
    const { stream, remote } = await pair(async s => {
      s.pause()
      await new Promise<void>(resolve => s.addEventListener('close', () => resolve(), { once: true }))
    })
    const sending = (async () => {
      for (let i = 0; i < 64; i++) await send(stream, Buffer.alloc(MiB))
    })()
    while (!stream.writableNeedsDrain) await sleep(5)
    stream.abort(new Error('gone'))
    expect(await errorOf(sending)).toBeInstanceOf(StreamEndedError)
    await remote
  })
})

describe('sendFrame and closeGracefully', () => {
  it('small, empty and large frames arrive whole and in order, then a clean end', async () => {
    const frames = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(65535, 7), Buffer.alloc(65536, 8), Buffer.alloc(3 * MiB + 5, 9)]
    const got: Buffer[] = []
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 30_000)
      try {
        for (let f = await reader.readFrame(4 * MiB); f !== undefined; f = await reader.readFrame(4 * MiB)) got.push(Buffer.from(f))
      } finally {
        reader.dispose()
      }
      await closeGracefully(s)
    })
    for (const f of frames) await sendFrame(stream, f)
    // Close right after queueing megabytes: closeGracefully waits for the buffer to empty first.
    await closeGracefully(stream)
    await remote
    expect(got.map(f => f.length)).toEqual(frames.map(f => f.length))
    got.forEach((f, i) => expect(f.equals(frames[i]!)).toBe(true))
  })
})

describe('ByteReader', () => {
  it('readFrame rejects a frame over maxLength and aborts the stream', async () => {
    let readerError: unknown
    let status = ''
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 30_000)
      readerError = await errorOf(reader.readFrame(1024))
      status = s.status
      reader.dispose()
    })
    await sendFrame(stream, Buffer.alloc(1025))
    await remote
    expect(readerError).toBeInstanceOf(ProtocolError)
    expect((readerError as ProtocolError).code).toBe('MS_PROTOCOL')
    expect(status).toBe('aborted')
    // The sender sees the reset: its stream is no longer open.
    await new Promise<void>(resolve => stream.status === 'open' ? stream.addEventListener('close', () => resolve(), { once: true }) : resolve())
    expect(stream.status).not.toBe('open')
  })

  it('readFrame accepts a frame of exactly maxLength', async () => {
    let frame: Uint8Array | undefined
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 30_000)
      frame = await reader.readFrame(1024)
      reader.dispose()
      await closeGracefully(s)
    })
    await sendFrame(stream, Buffer.alloc(1024, 1))
    await closeGracefully(stream)
    await remote
    expect(frame?.length).toBe(1024)
  })

  it('readFrame returns undefined on a clean end between frames', async () => {
    const results: Array<number | undefined> = []
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 30_000)
      results.push((await reader.readFrame(100))?.length)
      results.push((await reader.readFrame(100))?.length)
      reader.dispose()
    })
    await sendFrame(stream, Buffer.from('abc'))
    await closeGracefully(stream)
    await remote
    expect(results).toEqual([3, undefined])
  })

  it('an end in the middle of a frame is a StreamEndedError, not a clean end', async () => {
    const r = idleReader(pieces([Uint8Array.of(0, 0, 0, 10, 1, 2, 3)]))
    expect(await errorOf(r.readFrame(100))).toBeInstanceOf(StreamEndedError)
    const r2 = idleReader(pieces([Uint8Array.of(0, 0)]))
    expect(await errorOf(r2.readFrame(100))).toBeInstanceOf(StreamEndedError)
  })

  it('readInto hands over pieces summing to exactly n and leaves the rest for the next read', async () => {
    const data = Buffer.alloc(10_000)
    for (let i = 0; i < data.length; i++) data[i] = i % 251
    // Uneven pieces so reads start and stop inside pieces.
    const cuts = [1, 7, 4096, 3, 999, 2000, 2894]
    const list: Uint8Array[] = []
    let o = 0
    for (const c of cuts) { list.push(data.subarray(o, o + c)); o += c }
    expect(o).toBe(data.length)
    const r = idleReader(pieces(list))
    const collected: Buffer[] = []
    for (const n of [5, 0, 4100, 1, 3000, 2894]) {
      const got: Uint8Array[] = []
      await r.readInto(n, p => got.push(Buffer.from(p)))
      expect(got.reduce((s, p) => s + p.length, 0)).toBe(n)
      collected.push(...got.map(p => Buffer.from(p)))
    }
    expect(Buffer.concat(collected).equals(data)).toBe(true)
    expect(await r.atEnd()).toBe(true)
    r.dispose()
  })

  it('readInto over a libp2p stream delivers exactly n bytes, then the following frame', async () => {
    const body = Buffer.alloc(2 * MiB + 17)
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff
    let sum = 0
    const parts: Buffer[] = []
    let after: Uint8Array | undefined
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 30_000)
      await reader.readInto(body.length, p => { sum += p.length; parts.push(Buffer.from(p)) })
      after = await reader.readFrame(100)
      reader.dispose()
      await closeGracefully(s)
    })
    await send(stream, body)
    await sendFrame(stream, Buffer.from('next'))
    await closeGracefully(stream)
    await remote
    expect(sum).toBe(body.length)
    expect(Buffer.concat(parts).equals(body)).toBe(true)
    expect(Buffer.from(after!).toString()).toBe('next')
  })

  it('readInto rejects with StreamEndedError when the source ends short', async () => {
    const r = idleReader(pieces([Buffer.alloc(10)]))
    let handed = 0
    expect(await errorOf(r.readInto(11, p => { handed += p.length }))).toBeInstanceOf(StreamEndedError)
    expect(handed).toBe(10)
  })

  it('readExactly copies across pieces; Uint8ArrayList sources work too', async () => {
    async function * src (): AsyncGenerator<Uint8Array | Uint8ArrayList> {
      yield new Uint8ArrayList(Uint8Array.of(1, 2), Uint8Array.of(3))
      yield Uint8Array.of(4, 5, 6)
    }
    const r = new ByteReader(src(), { idleMs: 60_000, abort: () => {}, what: 'test' })
    expect([...await r.readExactly(4)]).toEqual([1, 2, 3, 4])
    expect([...await r.readExactly(2)]).toEqual([5, 6])
    expect(await r.atEnd()).toBe(true)
    r.dispose()
  })

  it('the idle timeout aborts the stream with a TimeoutError when the peer sends nothing', async () => {
    let readerError: unknown
    let status = ''
    const { stream, remote } = await pair(async s => {
      const reader = streamReader(s, 200)
      try {
        readerError = await errorOf(reader.readFrame(100))
        status = s.status
      } finally {
        reader.dispose()
      }
    })
    // Open the stream on the far side (the handler runs on the first data), then go silent.
    await send(stream, Uint8Array.of(0))
    await remote
    expect(readerError).toBeInstanceOf(TimeoutError)
    expect((readerError as TimeoutError).code).toBe('MS_TIMEOUT')
    expect(status).toBe('aborted')
    stream.abort(new Error('done'))
  })

  it('data that keeps arriving keeps an idle reader alive past idleMs', async () => {
    // 20 pieces 50 ms apart under a 500 ms idle limit: the whole read outlasts the limit, each gap does
    // not, so only a timer refreshed on every read lets it finish.
    async function * trickle (): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 20; i++) {
        await sleep(50)
        yield Uint8Array.of(i)
      }
    }
    let aborted: Error | undefined
    const r = new ByteReader(trickle(), { idleMs: 500, abort: err => { aborted = err }, what: 'test' })
    expect([...await r.readExactly(20)]).toEqual(Array.from({ length: 20 }, (_, i) => i))
    r.dispose()
    expect(aborted).toBeUndefined()
  })
})
