/**
 * npm run bench:gateway [-- --size 512MiB --rounds 3]
 * The read gateway against the disk, in one run: a seeder holds a generated model; a `modelswarm gateway`
 * fetches it into its host cache; then, interleaved, every shard is read whole (1) through the gateway
 * with the AWS SDK's GetObject, (2) with a plain unsigned HTTP GET (the gateway's own cost, without the
 * SDK's) and (3) straight from the host cache's files (page cache warm for all).
 * Prints GiB/s of each, gateway ÷ disk (goal ≥ 0.8) and the gateway process's CPU-s per GiB served. Then a
 * fresh gateway over an empty cache: time to the first byte of a ranged read near the end of the last
 * shard, against the time until the whole version is verified.
 */
import { createReadStream, existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
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

  const viaGateway: number[] = []
  const viaHttp: number[] = []
  const fromDisk: number[] = []
  const cpuPerGiB: number[] = []
  const httpCpuPerGiB: number[] = []
  for (let r = 0; r < rounds; r++) {
    let cpu0 = await cpuSeconds(held.proc.pid!)
    let t = performance.now()
    let bytes = 0
    for (const s of shards) bytes += (await readObject(s3, `v1/${s}`)).bytes
    const gw = (performance.now() - t) / 1000
    cpuPerGiB.push((await cpuSeconds(held.proc.pid!) - cpu0) / (bytes / GiB))
    viaGateway.push(bytes / GiB / gw)
    cpu0 = await cpuSeconds(held.proc.pid!)
    t = performance.now()
    bytes = 0
    for (const s of shards) bytes += await httpGet(`${url}/bench-llm/v1/${s}`)
    httpCpuPerGiB.push((await cpuSeconds(held.proc.pid!) - cpu0) / (bytes / GiB))
    viaHttp.push(bytes / GiB / ((performance.now() - t) / 1000))
    t = performance.now()
    let diskBytes = 0
    for (const s of shards) diskBytes += await readFileBytes(join(cacheDir, s))
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

  const gw = median(viaGateway)
  const disk = median(fromDisk)
  process.stdout.write(`read gateway, ${(size / GiB).toFixed(2)} GiB model in 4 shards, medians of ${rounds} interleaved rounds
| path | GiB/s | gateway CPU-s per GiB |
|---|---|---|
| GetObject through the gateway (AWS SDK) | ${gw.toFixed(2)} | ${median(cpuPerGiB).toFixed(2)} |
| plain HTTP GET through the gateway (node:http, unsigned) | ${median(viaHttp).toFixed(2)} | ${median(httpCpuPerGiB).toFixed(2)} |
| the same files from disk (fs read stream) | ${disk.toFixed(2)} | |
gateway ÷ disk: ${(gw / disk).toFixed(2)} with the AWS SDK, ${(median(viaHttp) / disk).toFixed(2)} with plain HTTP (goal ≥ 0.8)
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
