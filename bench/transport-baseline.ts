/**
 * Reference transports for bench:swarm, each a sender and a receiver in two processes on loopback:
 *   tcp       raw TCP                       tcp-sha   raw TCP + SHA-256 per 4 MiB chunk
 *   tls       node:tls PSK-AES128-GCM       tls-sha   node:tls PSK + SHA-256 per 4 MiB chunk
 *   noise     a bare libp2p stream (TCP + Noise + yamux), 1 MiB writes
 * Usage: node bench/transport-baseline.ts MODE BYTES  → one JSON line: GiB/s and CPU-s per GiB each side.
 */
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import net from 'node:net'
import tls from 'node:tls'
import { createInterface } from 'node:readline'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { createNode } from '../src/peer/node.ts'
import { send } from '../src/peer/protocols/stream-io.ts'

const GiB = 2 ** 30
const CHUNK = 4 * 1024 * 1024
const BLOCK = Buffer.alloc(1024 * 1024, 0x5a)
const PSK_OPTIONS = { ciphers: 'PSK-AES128-GCM-SHA256', minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const
export type Mode = 'tcp' | 'tcp-sha' | 'tls' | 'tls-sha' | 'noise'
export interface BaselineResult { mode: Mode, gibps: number, recvCpuPerGiB: number, sendCpuPerGiB: number }

const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6

/** Counts (and optionally hashes, per chunk) what arrives. */
function sink (hash: boolean): { push: (b: Uint8Array) => void, bytes: () => number } {
  let bytes = 0
  let inChunk = 0
  let h = createHash('sha256')
  return {
    push: b => {
      bytes += b.length
      if (!hash) return
      let pos = 0
      while (pos < b.length) {
        const take = Math.min(CHUNK - inChunk, b.length - pos)
        h.update(b.subarray(pos, pos + take))
        pos += take
        inChunk += take
        if (inChunk === CHUNK) { h.digest(); h = createHash('sha256'); inChunk = 0 }
      }
    },
    bytes: () => bytes
  }
}

async function writeAll (write: (b: Buffer) => boolean, drain: () => Promise<unknown>, total: number): Promise<void> {
  for (let sent = 0; sent < total; sent += BLOCK.length) if (!write(BLOCK)) await drain()
}

async function sender (mode: Mode, target: string, total: number, psk: string): Promise<void> {
  const cpu0 = process.cpuUsage()
  if (mode === 'noise') {
    // libp2p's TCP sockets do not keep the event loop alive; with no listener, this one must.
    const keepAlive = setInterval(() => {}, 1000)
    const node = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: [] })
    const stream = await node.dialProtocol(multiaddr(target), '/modelswarm-bench/1')
    for (let sent = 0; sent < total; sent += BLOCK.length) await send(stream, BLOCK)
    while (stream.writeBufferLength > 0) await new Promise(resolve => setTimeout(resolve, 10))
    await stream.close()
    await node.stop()
    clearInterval(keepAlive)
  } else {
    const port = Number(target)
    const socket = mode.startsWith('tls')
      ? tls.connect({ port, host: '127.0.0.1', ...PSK_OPTIONS, pskCallback: () => ({ psk: Buffer.from(psk, 'hex'), identity: 'bench' }), checkServerIdentity: () => undefined })
      : net.connect({ port, host: '127.0.0.1' })
    await once(socket, mode.startsWith('tls') ? 'secureConnect' : 'connect')
    await writeAll(b => socket.write(b), () => once(socket, 'drain'), total)
    socket.end()
    await once(socket, 'close')
  }
  process.stdout.write(JSON.stringify({ cpu: cpuSeconds(process.cpuUsage(cpu0)) }) + '\n')
}

export async function runBaseline (mode: Mode, total: number): Promise<BaselineResult> {
  const s = sink(mode.endsWith('-sha'))
  const psk = randomBytes(32)
  let done!: () => void
  const finished = new Promise<void>(resolve => { done = resolve })
  let target: string
  let stop: () => Promise<void>
  if (mode === 'noise') {
    const node = await createNode({ privateKey: await generateKeyPair('Ed25519'), listen: ['/ip4/127.0.0.1/tcp/0'] })
    await node.handle('/modelswarm-bench/1', async stream => {
      for await (const b of stream) s.push(b instanceof Uint8Array ? b : b.subarray())
      done()
    })
    target = node.getMultiaddrs()[0]!.toString()
    stop = async () => { await node.stop() }
  } else {
    const onConn = (socket: net.Socket): void => {
      socket.on('data', (b: Buffer) => s.push(b))
      socket.on('end', () => done())
    }
    const server = mode.startsWith('tls') ? tls.createServer({ ...PSK_OPTIONS, pskCallback: () => psk }, onConn) : net.createServer(onConn)
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    target = String((server.address() as net.AddressInfo).port)
    stop = () => new Promise(resolve => { server.close(() => resolve()) })
  }
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const child = spawn(process.execPath, [import.meta.filename, 'send', mode, target, String(total), psk.toString('hex')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = once(createInterface({ input: child.stdout }), 'line')
  await finished
  const seconds = (performance.now() - t0) / 1000
  const recvCpu = cpuSeconds(process.cpuUsage(cpu0))
  const sendCpu = (JSON.parse(String((await line)[0])) as { cpu: number }).cpu
  await stop()
  const gib = s.bytes() / GiB
  return { mode, gibps: gib / seconds, recvCpuPerGiB: recvCpu / gib, sendCpuPerGiB: sendCpu / gib }
}

const [cmd, mode, a, b, c] = process.argv.slice(2)
if (cmd === 'send') await sender(mode as Mode, a!, Number(b), c!)
else if (cmd === 'run') process.stdout.write(JSON.stringify(await runBaseline(mode as Mode, Number(a))) + '\n')
