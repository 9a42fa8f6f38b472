/**
 * npm run bench:gateway [-- --size 512MiB --rounds 3]
 * The read gateway against the disk, in one run: a seeder holds a generated model; a `modelswarm gateway`
 * fetches it into its host cache; then, interleaved, every shard is read whole (1) through the gateway
 * with the AWS SDK's GetObject, (2) with node:http's unsigned GET, (3) with a lean HTTP/1.1 reader (a TCP
 * socket read into one reused 1 MiB buffer: what the gateway itself can serve, with a reader that is not
 * the bottleneck) and (4) straight from the host cache's files (page cache warm for all).
 * Prints GiB/s of each, gateway ÷ disk per reader (goal ≥ 0.8), the gateway process's CPU-s per GiB served
 * and the reader's (this process's) CPU-s per GiB: the SDK and node:http read through a fresh 64 KiB buffer
 * per socket read, and on two cores shared with the gateway that reader is what limits them. Then a fresh
 * gateway over an empty cache: time to the first byte of a ranged read near the end of the last shard,
 * against the time until the whole version is verified.
 */
import { createReadStream, existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { generateModel } from '../src/cli/demo-model.ts'
import { parseBytes } from '../src/util/units.ts'
import { run, seederVersions, startSeeder, type Proc, type SeederProc } from '../test/support/cli.ts'

const { values: args } = parseArgs({ options: { size: { type: 'string', default: '512MiB' }, rounds: { type: 'string', default: '3' } } })
const size = parseBytes(args.size)
const rounds = Number(args.rounds)
const GiB = 1024 ** 3
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const KEY = { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench-secret' }

const root = join(tmpdir(), 'ms-bench-gateway')
await rm(root, { recursive: true, force: true })
const origin = join(root, 'origin')
const source = join(origin, 'bench-llm', 'v1')
await generateModel(source, size)
await writeFile(join(source, '_SUCCESS'), '')
await writeFile(join(root, 'keys'), `${KEY.accessKeyId}:${KEY.secretAccessKey}\n`)
const shards = ['00000', '00001', '00002', '00003'].map(s => `model-${s}-of-00004.safetensors`)

const seeder = await startSeeder({ root, origin, source, name: 'bench-llm', version: 'v1', size }, ['--log-level', 'warn'])
const procs: Proc[] = [seeder]
try {
  for (;;) {
    const [v] = await seederVersions(seeder.admin)
    if (v?.state === 'ready') break
    await new Promise(resolve => setTimeout(resolve, 200))
  }

  // Held: a gateway whose cache already holds the version (fetched once, then read many times).
  const held = startGateway(seeder, 'cache-held')
  procs.push(held)
  const url = (await held.waitFor(m => typeof m.gateway === 'string')).gateway as string
  const s3 = client(url)
  await readObject(s3, `v1/${shards[0]!}`, 'bytes=0-0')
  const cacheDir = join(root, 'cache-held', 'bench-llm', 'v1')
  while (!existsSync(`${cacheDir}.modelswarm/complete`)) await new Promise(resolve => setTimeout(resolve, 100))

  const readers: Array<{ label: string, read: (shard: string) => Promise<number> }> = [
    { label: 'GetObject, AWS SDK for JavaScript v3 (node:http underneath)', read: async s => (await readObject(s3, `v1/${s}`)).bytes },
    { label: 'GET, node:http (unsigned)', read: s => httpGet(`${url}/bench-llm/v1/${s}`) },
    { label: 'GET, lean reader (socket into one reused 1 MiB buffer, unsigned)', read: s => leanGet(`${url}/bench-llm/v1/${s}`) }
  ]
  const rates = readers.map(() => [] as number[])
  const gatewayCpu = readers.map(() => [] as number[])
  const readerCpu = readers.map(() => [] as number[])
  const fromDisk: number[] = []
  const diskCpu: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (const [i, reader] of readers.entries()) {
      const gw0 = await cpuSeconds(held.proc.pid!)
      const me0 = process.cpuUsage()
      const t = performance.now()
      let bytes = 0
      for (const s of shards) bytes += await reader.read(s)
      const seconds = (performance.now() - t) / 1000
      readerCpu[i]!.push(cpuOf(process.cpuUsage(me0)) / (bytes / GiB))
      gatewayCpu[i]!.push((await cpuSeconds(held.proc.pid!) - gw0) / (bytes / GiB))
      rates[i]!.push(bytes / GiB / seconds)
    }
    const me0 = process.cpuUsage()
    const t = performance.now()
    let diskBytes = 0
    for (const s of shards) diskBytes += await readFileBytes(join(cacheDir, s))
    diskCpu.push(cpuOf(process.cpuUsage(me0)) / (diskBytes / GiB))
    fromDisk.push(diskBytes / GiB / ((performance.now() - t) / 1000))
  }
  await held.kill()

  // During a fetch: a ranged read 90 % into the last shard, from a gateway whose cache is empty.
  const fresh = startGateway(seeder, 'cache-fresh')
  procs.push(fresh)
  const s3fresh = client((await fresh.waitFor(m => typeof m.gateway === 'string')).gateway as string)
  const last = Math.floor(size / 4)
  const start = Math.floor(last * 0.9)
  const t0 = performance.now()
  const ranged = await readObject(s3fresh, `v1/${shards[3]!}`, `bytes=${start}-${start + 1024 * 1024 - 1}`)
  const ttfb = ranged.firstByteMs - t0
  const freshDir = join(root, 'cache-fresh', 'bench-llm', 'v1')
  while (!existsSync(`${freshDir}.modelswarm/complete`)) await new Promise(resolve => setTimeout(resolve, 50))
  const whole = performance.now() - t0
  const expected = (await readFile(join(source, shards[3]!))).subarray(start, start + 1024 * 1024)
  if (!ranged.body.equals(expected)) throw new Error('the ranged read during the fetch returned wrong bytes')
  await fresh.kill()

  const disk = median(fromDisk)
  const rows = readers.map((reader, i) => `| ${reader.label} | ${median(rates[i]!).toFixed(2)} | ${(median(rates[i]!) / disk).toFixed(2)} | ${median(gatewayCpu[i]!).toFixed(2)} | ${median(readerCpu[i]!).toFixed(2)} |`)
  process.stdout.write(`read gateway, ${(size / GiB).toFixed(2)} GiB model in 4 shards, medians of ${rounds} interleaved rounds (${new Date().toISOString().slice(0, 10)})
| reader | GiB/s | ÷ disk (goal ≥ 0.8) | gateway CPU-s per GiB | reader CPU-s per GiB |
|---|---|---|---|---|
${rows.join('\n')}
| the same files from disk (fs read stream, 1 MiB reads) | ${disk.toFixed(2)} | 1.00 | | ${median(diskCpu).toFixed(2)} |
ranged read (1 MiB at 90 % of the last shard) during a fetch from an empty cache: first byte after ${ttfb.toFixed(0)} ms; whole version verified after ${whole.toFixed(0)} ms (${(ttfb / whole).toFixed(2)} of it)
`)
} finally {
  for (const p of procs) await p.kill()
  await rm(root, { recursive: true, force: true })
}

function startGateway (s: SeederProc, cache: string): Proc {
  return run(['--log-level', 'warn', 'gateway', '--cache-dir', join(root, cache), '--gateway-listen', '127.0.0.1:0', '--keys-file', join(root, 'keys'), '--anonymous',
    '--bootstrap', s.addr, '--trust', s.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--json'])
}

function client (url: string): S3Client {
  return new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials: KEY })
}

async function readObject (c: S3Client, key: string, range?: string): Promise<{ bytes: number, firstByteMs: number, body: Buffer }> {
  const out = await c.send(new GetObjectCommand({ Bucket: 'bench-llm', Key: key, Range: range }))
  let firstByteMs = 0
  let bytes = 0
  const parts: Buffer[] = []
  for await (const chunk of out.Body as AsyncIterable<Buffer>) {
    if (bytes === 0) firstByteMs = performance.now()
    bytes += chunk.length
    if (range !== undefined) parts.push(chunk)
  }
  return { bytes, firstByteMs, body: Buffer.concat(parts) }
}

/** Bytes of an unsigned GET, read and dropped. */
function httpGet (url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, res => {
      let n = 0
      res.on('data', (chunk: Buffer) => { n += chunk.length })
      res.on('end', () => resolve(n))
      res.on('error', reject)
    }).on('error', reject)
  })
}

/**
 * Bytes of the body of an unsigned GET read by a plain HTTP/1.1 client that reads the socket into one reused
 * 1 MiB buffer (net's `onread`), so the reader costs little besides the kernel's copy.
 * @throws on a status other than 200 or a body shorter than its Content-Length
 */
function leanGet (url: string): Promise<number> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0)
    let length = -1
    let body = 0
    const onread = (n: number, buf: Uint8Array): boolean => {
      if (length >= 0) {
        body += n
        return true
      }
      head = Buffer.concat([head, buf.subarray(0, n)])
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return true
      const lines = head.subarray(0, end).toString('latin1').split('\r\n')
      if (!/^HTTP\/1\.1 200 /.test(lines[0]!)) { socket.destroy(new Error(`${url}: ${lines[0]!}`)); return false }
      length = Number(lines.find(l => /^content-length:/i.test(l))?.split(':')[1])
      body = head.length - end - 4
      return true
    }
    const socket = connect({ host: u.hostname, port: Number(u.port), onread: { buffer: Buffer.allocUnsafe(1024 * 1024), callback: onread } })
    socket.on('connect', () => socket.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`))
    socket.on('error', reject)
    socket.on('close', () => body === length ? resolve(body) : reject(new Error(`${url}: ${body} of ${length} body bytes`)))
  })
}

function cpuOf (u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1e6
}

async function readFileBytes (path: string): Promise<number> {
  let n = 0
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) n += (chunk as Buffer).length
  return n
}

/** User + system CPU seconds of a process so far, from /proc (clock ticks of 1/100 s). */
async function cpuSeconds (pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}
