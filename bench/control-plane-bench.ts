/**
 * npm run bench:control [-- --frames 8000 --pings 300 --rounds 3]
 * What the libp2p control plane costs, between two real nodes (createNode: TCP, Noise, yamux) on loopback in
 * one process, so the CPU counted is both ends': a small session frame (a HAVE of one chunk, each sent in its
 * own turn of the event loop, as a host announces chunks as they are verified), and one libp2p ping (a new
 * stream each, as the connection monitor sends them). Prints medians over the rounds, in µs of CPU.
 * Measured here (medians of 3 rounds, the first round slower): 80 µs a frame (the receiver answered each data
 * frame with a yamux window update) and 1.0–1.2 ms a ping; a lab host of 16 sent ~8,000 HAVE frames for 512
 * chunks and pinged 18 connections every 10 s, more CPU than its bulk transfers took. They set node.ts's ping
 * intervals and neighbours.ts's haveFor. With the dependency patches (patches/, 2026-12-02; medians of 5):
 * 96 → 49–54 µs a frame.
 */
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createNode } from '../src/peer/node.ts'
import { encodeSessionMessage } from '../src/peer/protocols/session/codec.ts'
import { sendFrame, streamReader } from '../src/peer/protocols/stream-io.ts'

const { values: args } = parseArgs({ options: { frames: { type: 'string', default: '8000' }, pings: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' } } })
const frames = Number(args.frames)
const pings = Number(args.pings)
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const cpuMicros = (since: NodeJS.CpuUsage): number => { const c = process.cpuUsage(since); return c.user + c.system }
const PROTOCOL = '/modelswarm-bench/frames/1.0.0'

const a = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
const b = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
let received = 0
let onReceived = (): void => {}
await b.handle(PROTOCOL, stream => {
  const reader = streamReader(stream, 600_000)
  void (async () => { while (await reader.readFrame(1 << 20) !== undefined) { received++; onReceived() } })()
})
const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, PROTOCOL)
const have = encodeSessionMessage({ type: 'have', indexes: [1] })

const perFrame: number[] = []
const perPing: number[] = []
for (let r = 0; r < Number(args.rounds); r++) {
  received = 0
  const all = new Promise<void>(resolve => { onReceived = () => { if (received === frames) resolve() } })
  let since = process.cpuUsage()
  for (let i = 0; i < frames; i++) {
    await sendFrame(stream, have)
    await new Promise(resolve => setImmediate(resolve))
  }
  await all
  perFrame.push(cpuMicros(since) / frames)
  since = process.cpuUsage()
  for (let i = 0; i < pings; i++) await a.services.ping.ping(b.peerId)
  perPing.push(cpuMicros(since) / pings)
}
console.log(`session frame (HAVE of one chunk): ${median(perFrame).toFixed(0)} µs CPU, both ends (rounds: ${perFrame.map(x => x.toFixed(0)).join(', ')})`)
console.log(`libp2p ping: ${(median(perPing) / 1000).toFixed(2)} ms CPU, both ends (rounds: ${perPing.map(x => (x / 1000).toFixed(2)).join(', ')})`)
await a.stop()
await b.stop()
