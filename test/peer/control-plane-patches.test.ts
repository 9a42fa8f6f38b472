/**
 * The two dependency patches in patches/ (applied by `npm ci`'s postinstall through patch-package), each
 * observed where it acts. A session frame — a HAVE, say — cost ~96 µs of CPU between the two ends of a
 * libp2p connection and ~50 µs with both (`npm run bench:control`, this box); a lab host spent ~6 % of its
 * CPU in the first fault and the second doubled its Noise frames (perf, README "Two dependency patches").
 */
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { describe, expect, it } from 'vitest'
import type { Uint8ArrayList } from 'uint8arraylist'
import { encodeSessionMessage } from '../../src/peer/protocols/session/codec.ts'
import { sendFrame, streamReader } from '../../src/peer/protocols/stream-io.ts'
import { loopbackNodes } from '../support/loopback-nodes.ts'
import { until } from '../support/poll.ts'

// The decoder Noise itself imports (a copy nested under it would be one the patch missed).
const fromNoise = createRequire(new URL('../../node_modules/@chainsafe/libp2p-noise/package.json', import.meta.url))
const { LengthPrefixedDecoder } = await import(pathToFileURL(fromNoise.resolve('@libp2p/utils')).href) as typeof import('@libp2p/utils')

const node = loopbackNodes()

describe('control-plane dependency patches', () => {
  it('@libp2p/utils: a read that ends on a frame boundary does not ask the length decoder to fail on an empty buffer', () => {
    // Noise decodes every read this way, with a uint16BE length that throws a RangeError when short.
    const asked: number[] = []
    const decoder = new LengthPrefixedDecoder({
      lengthDecoder: (buf: Uint8ArrayList | Uint8Array) => {
        asked.push(buf.byteLength)
        if (buf.byteLength < 2) throw new RangeError('Could not decode int16BE')
        return buf instanceof Uint8Array ? (buf[0]! << 8) | buf[1]! : buf.getUint16(0)
      },
      encodingLength: () => 2
    })
    const frame = (body: number[]): number[] => [body.length >> 8, body.length & 0xff, ...body]
    const out = [...decoder.decode(Uint8Array.from([...frame([1, 2, 3]), ...frame([4])]))].map(b => [...b.subarray()])
    expect(out).toEqual([[1, 2, 3], [4]])
    expect(asked).toEqual([8, 3])
    // A frame split across reads still decodes: the second read completes the first.
    expect([...decoder.decode(Uint8Array.from([0, 2, 9]))]).toEqual([])
    expect([...decoder.decode(Uint8Array.from([8]))].map(b => [...b.subarray()])).toEqual([[9, 8]])
  })

  it('@libp2p/yamux: small frames are not each answered with a window update', async () => {
    const a = await node()
    const b = await node()
    let received = 0
    await b.handle('/modelswarm-test/frames/1.0.0', stream => {
      const reader = streamReader(stream, 30_000)
      void (async () => { while (await reader.readFrame(1 << 20) !== undefined) received++ })()
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, '/modelswarm-test/frames/1.0.0')
    // Counted where the sender takes them in (YamuxStream#handleWindowUpdate, called by the muxer).
    const sender = stream as unknown as { handleWindowUpdate: (frame: unknown) => void }
    const handle = sender.handleWindowUpdate.bind(sender)
    let updates = 0
    sender.handleWindowUpdate = frame => { updates++; handle(frame) }
    const have = encodeSessionMessage({ type: 'have', indexes: [1] })
    for (let i = 0; i < 200; i++) {
      await sendFrame(stream, have)
      await new Promise(resolve => setImmediate(resolve))
    }
    expect(await until(async () => received === 200, 10_000)).toBe(true)
    // Unpatched, each of the 200 frames came back as an update; now one comes once 128 KiB (half the
    // initial window) is used, or when the window grows (each doubling, up to 16 MiB: a few).
    expect(updates).toBeLessThan(20)
  }, 30_000)

  it('@libp2p/yamux: a transfer of many windows still flows', async () => {
    const a = await node()
    const b = await node()
    let bytes = 0
    await b.handle('/modelswarm-test/bulk/1.0.0', async stream => {
      for await (const buf of stream) bytes += buf.byteLength
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, '/modelswarm-test/bulk/1.0.0')
    const total = 8 * 1024 * 1024
    for (let sent = 0; sent < total; sent += 64 * 1024) {
      if (!stream.send(new Uint8Array(64 * 1024))) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
    }
    expect(await until(async () => bytes === total, 20_000)).toBe(true)
  }, 30_000)
})
