/**
 * The read gateway's user stories with real processes: a `modelswarm seed` daemon, a `modelswarm gateway`
 * over an empty host cache, and S3 clients (the AWS SDK for JavaScript, and the `aws` CLI when installed)
 * reading the model through it as an inference service would.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type ListObjectsV2CommandOutput
} from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateModel } from '../../src/cli/demo-model.ts'
import { makeModel, run, seederVersions, startFetch, startSeeder, track, treeDigests, type Proc, type SeederProc, type TestModel } from '../support/cli.ts'
import { freePorts } from '../support/free-port.ts'
import { pypiTool } from '../support/pypi-tool.ts'
import { tempDir } from '../support/temp.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

const MiB = 1024 * 1024
const KEY = { accessKeyId: 'AKIDGATEWAYTEST', secretAccessKey: 'gateway-test-secret/with+chars' }

/** A safetensors file as loaders read it: u64 little-endian header length, the JSON header, then the tensors. */
async function writeSafetensors (path: string, dataBytes: number): Promise<Record<string, unknown>> {
  const header = { __metadata__: { format: 'pt' }, 'lm_head.weight': { dtype: 'F32', shape: [dataBytes / 4], data_offsets: [0, dataBytes] } }
  const json = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  const data = Buffer.alloc(dataBytes)
  for (let i = 0; i < dataBytes; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i)
  await writeFile(path, Buffer.concat([len, json, data]))
  return header
}

/** A generated model plus a safetensors file and a nested directory, published with _SUCCESS. */
async function makeGatewayModel (size: number): Promise<TestModel & { safetensorsHeader: Record<string, unknown> }> {
  const model = await makeModel(size, { publish: false })
  const safetensorsHeader = await writeSafetensors(join(model.source, 'model.safetensors'), 3 * MiB)
  await mkdir(join(model.source, 'tokenizer'))
  await writeFile(join(model.source, 'tokenizer', 'vocab.txt'), 'hello\nworld\n')
  await writeFile(join(model.source, 'tokenizer', 'merges.txt'), 'h e\nw o\n')
  await writeFile(join(model.source, '_SUCCESS'), '')
  return { ...model, safetensorsHeader }
}

async function startGateway (seeder: SeederProc, root: string, extra: string[] = []): Promise<Proc & { url: string, cacheDir: string }> {
  const keysFile = join(root, 'gateway-keys')
  await writeFile(keysFile, `# test keys\n${KEY.accessKeyId}:${KEY.secretAccessKey}\n`)
  const cacheDir = join(root, 'host-cache')
  const p = run(['--log-level', 'info', 'gateway', '--cache-dir', cacheDir, '--gateway-listen', '127.0.0.1:0', '--keys-file', keysFile,
    '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--json', ...extra])
  const info = await p.waitFor(m => typeof m.gateway === 'string', 30_000)
  return Object.assign(p, { url: info.gateway as string, cacheDir })
}

function client (url: string, credentials = KEY): S3Client {
  return new S3Client({ endpoint: url, region: 'us-east-1', forcePathStyle: true, credentials, maxAttempts: 1 })
}

async function body (c: S3Client, Key: string, Range?: string, Bucket = 'it-llm'): Promise<Buffer> {
  const out = await c.send(new GetObjectCommand({ Bucket, Key, Range }))
  return Buffer.from(await out.Body!.transformToByteArray())
}

async function s3Error (p: Promise<unknown>): Promise<{ name: string, status: number | undefined }> {
  try {
    await p
  } catch (err) {
    const e = err as { name: string, $metadata?: { httpStatusCode?: number } }
    return { name: e.name, status: e.$metadata?.httpStatusCode }
  }
  throw new Error('expected an S3 error')
}

async function listAll (c: S3Client, Prefix: string, MaxKeys: number, Delimiter?: string): Promise<{ keys: string[], prefixes: string[], pages: number }> {
  const keys: string[] = []
  const prefixes: string[] = []
  let token: string | undefined
  let pages = 0
  do {
    const page: ListObjectsV2CommandOutput = await c.send(new ListObjectsV2Command({ Bucket: 'it-llm', Prefix, MaxKeys, Delimiter, ContinuationToken: token }))
    pages++
    keys.push(...(page.Contents ?? []).map(o => o.Key!))
    prefixes.push(...(page.CommonPrefixes ?? []).map(p => p.Prefix!))
    token = page.NextContinuationToken
    expect(page.IsTruncated).toBe(token !== undefined)
  } while (token !== undefined)
  return { keys, prefixes, pages }
}

describe('read gateway', () => {
  let model: TestModel & { safetensorsHeader: Record<string, unknown> }
  let seeder: SeederProc
  let gateway: Proc & { url: string, cacheDir: string }
  let expected: Record<string, string>
  let s3: S3Client

  beforeAll(async () => {
    model = await makeGatewayModel(12 * MiB)
    seeder = await startSeeder(model, ['--chunk-size', '1MiB'])
    gateway = await startGateway(seeder, model.root)
    expected = await treeDigests(model.source)
    s3 = client(gateway.url)
  }, 60_000)
  afterAll(async () => {
    await gateway?.kill()
    await seeder?.kill()
  })

  it('serves every file of a model it first fetches from the swarm, byte-identical, under VERSION/ and latest/', async () => {
    expect((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([])
    // The host holds nothing: this read starts the fetch of the latest version.
    expect(JSON.parse((await body(s3, 'latest/config.json')).toString())).toEqual({ model_type: 'demo', hidden_size: 4096 })
    for (const path of Object.keys(expected)) {
      const bytes = await body(s3, `v1/${path}`)
      expect(createHash('sha256').update(bytes).digest('hex'), path).toBe(expected[path])
      expect((await body(s3, `latest/${path}`)).equals(bytes)).toBe(true)
    }
    expect((await s3.send(new ListBucketsCommand({}))).Buckets?.map(b => b.Name)).toEqual(['it-llm'])
  })

  it('lists with prefix, delimiter and continuation tokens as S3 does', async () => {
    const all = await listAll(s3, 'v1/', 1000)
    expect(all.keys).toEqual(Object.keys(expected).map(p => `v1/${p}`).sort())
    const paged = await listAll(s3, 'v1/', 2)
    expect(paged.keys).toEqual(all.keys)
    expect(paged.pages).toBe(Math.ceil(all.keys.length / 2))
    const top = await listAll(s3, 'v1/', 1000, '/')
    expect(top.prefixes).toEqual(['v1/tokenizer/'])
    expect(top.keys).toEqual(all.keys.filter(k => !k.startsWith('v1/tokenizer/')))
    // A common prefix counts as one entry of a page, and the next page starts after everything under it.
    const topPaged = await listAll(s3, 'v1/', 1, '/')
    expect(topPaged.prefixes).toEqual(top.prefixes)
    expect(topPaged.keys).toEqual(top.keys)
    const root = await listAll(s3, '', 1000, '/')
    expect(root.prefixes).toEqual(['latest/', 'v1/'])
    expect((await listAll(s3, 'v1/tokenizer/m', 1000)).keys).toEqual(['v1/tokenizer/merges.txt'])
  })

  it('answers HeadObject and ranged GetObject with stable ETags, 206 and Content-Range', async () => {
    const shard = Object.keys(expected).find(p => p.endsWith('.safetensors') && p.startsWith('model-'))!
    const whole = await body(s3, `v1/${shard}`)
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'it-llm', Key: `v1/${shard}` }))
    expect(head.ContentLength).toBe(whole.length)
    expect(head.ETag).toMatch(/^"[0-9a-f]{32}-\d+"$/)
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'it-llm', Prefix: `v1/${shard}` }))
    expect(listed.Contents?.[0]?.ETag).toBe(head.ETag)
    expect((await s3.send(new HeadObjectCommand({ Bucket: 'it-llm', Key: `latest/${shard}` }))).ETag).toBe(head.ETag)
    // A range across a chunk boundary (1 MiB chunks).
    const ranged = await s3.send(new GetObjectCommand({ Bucket: 'it-llm', Key: `v1/${shard}`, Range: `bytes=${MiB - 100}-${MiB + 99}` }))
    expect(ranged.$metadata.httpStatusCode).toBe(206)
    expect(ranged.ContentRange).toBe(`bytes ${MiB - 100}-${MiB + 99}/${whole.length}`)
    expect(ranged.ETag).toBe(head.ETag)
    expect(Buffer.from(await ranged.Body!.transformToByteArray()).equals(whole.subarray(MiB - 100, MiB + 100))).toBe(true)
    expect((await body(s3, `v1/${shard}`, 'bytes=-10')).equals(whole.subarray(whole.length - 10))).toBe(true)
    expect((await body(s3, `v1/${shard}`, `bytes=${whole.length - 5}-`)).equals(whole.subarray(whole.length - 5))).toBe(true)
    expect((await body(s3, 'v1/empty.txt')).length).toBe(0)
  })

  it('reads a safetensors header as loaders do: the first 8 bytes, then the JSON header', async () => {
    const len = Number((await body(s3, 'latest/model.safetensors', 'bytes=0-7')).readBigUInt64LE(0))
    const header = JSON.parse((await body(s3, 'latest/model.safetensors', `bytes=8-${8 + len - 1}`)).toString('utf8'))
    expect(header).toEqual(model.safetensorsHeader)
  })

  it('answers errors the SDK recognises, refuses writes, and checks SigV4 signatures', async () => {
    expect(await s3Error(body(s3, 'v1/no-such-file'))).toEqual({ name: 'NoSuchKey', status: 404 })
    expect(await s3Error(body(s3, 'v9/config.json'))).toEqual({ name: 'NoSuchKey', status: 404 })
    expect(await s3Error(body(s3, 'latest/config.json', undefined, 'no-such-model'))).toEqual({ name: 'NoSuchBucket', status: 404 })
    expect(await s3Error(body(s3, 'v1/config.json', undefined, 'no-such-model'))).toEqual({ name: 'NoSuchBucket', status: 404 })
    // A version the seeders do not know is the client's 404, logged as such, not as a failed fetch.
    await gateway.waitFor(m => m.msg === 'gateway: no such version at the seeders' && m.version === 'no-such-model@v1', 10_000)
    expect(gateway.stderr.filter(m => m.msg === 'gateway: no such version at the seeders').map(m => m.version)).toEqual(['it-llm@v9', 'no-such-model@v1'])
    expect(gateway.stderr.filter(m => m.msg === 'gateway: fetch failed' || (m.msg === 'no seeder answered yet' && m.level >= 40))).toEqual([])
    expect(existsSync(join(gateway.cacheDir, 'no-such-model'))).toBe(false)
    expect(await s3Error(s3.send(new ListObjectsV2Command({ Bucket: 'no-such-model' })))).toEqual({ name: 'NoSuchBucket', status: 404 })
    expect(await s3Error(body(s3, 'v1/config.json', 'bytes=100000-'))).toEqual({ name: 'InvalidRange', status: 416 })
    expect(await s3Error(s3.send(new PutObjectCommand({ Bucket: 'it-llm', Key: 'v1/new.bin', Body: 'x' })))).toEqual({ name: 'MethodNotAllowed', status: 405 })
    expect(await s3Error(s3.send(new DeleteObjectCommand({ Bucket: 'it-llm', Key: 'v1/config.json' })))).toEqual({ name: 'MethodNotAllowed', status: 405 })
    const wrongSecret = client(gateway.url, { ...KEY, secretAccessKey: 'not-the-secret' })
    expect(await s3Error(body(wrongSecret, 'v1/config.json'))).toEqual({ name: 'SignatureDoesNotMatch', status: 403 })
    const unknownKey = client(gateway.url, { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: KEY.secretAccessKey })
    expect(await s3Error(body(unknownKey, 'v1/config.json'))).toEqual({ name: 'InvalidAccessKeyId', status: 403 })
    // Unsigned, with anonymous access off.
    const anon = await fetch(`${gateway.url}/it-llm/v1/config.json`)
    expect(anon.status).toBe(403)
    expect(await anon.text()).toContain('<Code>AccessDenied</Code>')
    // The file is still on disk, untouched.
    expect(JSON.parse(await readFile(join(gateway.cacheDir, 'it-llm', 'v1', 'config.json'), 'utf8'))).toEqual({ model_type: 'demo', hidden_size: 4096 })
  })

  it('the aws CLI lists, copies recursively and reads a range through the gateway', async () => {
    const aws = await pypiTool('aws')
    const env = { ...process.env, AWS_ACCESS_KEY_ID: KEY.accessKeyId, AWS_SECRET_ACCESS_KEY: KEY.secretAccessKey, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null' }
    const cli = async (...args: string[]): Promise<string> => (await promisify(execFile)(aws, ['--endpoint-url', gateway.url, ...args], { env })).stdout
    const ls = await cli('s3', 'ls', 's3://it-llm/v1/')
    expect(ls).toContain('PRE tokenizer/')
    expect(ls).toContain('config.json')
    const out = await tempDir('ms-gw-awscli-')
    await cli('s3', 'cp', '--recursive', 's3://it-llm/latest/', join(out, 'copy'))
    expect(await treeDigests(join(out, 'copy'))).toEqual(expected)
    const meta = JSON.parse(await cli('s3api', 'get-object', '--bucket', 'it-llm', '--key', 'v1/model.safetensors', '--range', 'bytes=0-7', join(out, 'head8'))) as { ContentRange: string }
    expect(meta.ContentRange).toMatch(/^bytes 0-7\/\d+$/)
    expect((await readFile(join(out, 'head8'))).equals((await readFile(join(model.source, 'model.safetensors'))).subarray(0, 8))).toBe(true)
  })
})

describe('read gateway, read during fetch', () => {
  it('a ranged read of a version still arriving returns correct bytes before the fetch completes', async () => {
    const model = await makeGatewayModel(24 * MiB)
    // A slow origin line: the seeder takes ~10 s to pull the version, so the host's fetch is still running.
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '3MiB/s']))
    await seeder.waitFor(m => m.msg === 'version published')
    const gateway = track(await startGateway(seeder, model.root))
    const s3 = client(gateway.url)
    const first = Object.keys(await treeDigests(model.source)).sort().find(p => p.startsWith('model-'))!
    const source = await readFile(join(model.source, first))
    // Three readers at once: one fetch of the version serves them all.
    const others = Promise.all([body(s3, 'v1/model.safetensors', 'bytes=0-7'), body(s3, 'v1/config.json')])
    const range = await body(s3, `v1/${first}`, `bytes=${MiB + 10}-${2 * MiB + 9}`)
    const [during] = await seederVersions(seeder.admin)
    expect(existsSync(join(gateway.cacheDir, 'it-llm', 'v1.modelswarm', 'complete'))).toBe(false)
    expect(during!.state).toBe('pulling')
    expect(range.equals(source.subarray(MiB + 10, 2 * MiB + 10))).toBe(true)
    const headDuring = await s3.send(new HeadObjectCommand({ Bucket: 'it-llm', Key: `v1/${first}` }))
    const [header8, config] = await others
    expect(gateway.stderr.filter(m => m.msg === 'gateway: fetching a version the host lacks')).toHaveLength(1)
    expect(header8.equals((await readFile(join(model.source, 'model.safetensors'))).subarray(0, 8))).toBe(true)
    expect(config.equals(await readFile(join(model.source, 'config.json')))).toBe(true)
    // The whole file, read while the rest still arrives, streams as chunks are verified.
    expect((await body(s3, `v1/${first}`)).equals(source)).toBe(true)
    // Once the version is complete, the object's ETag and Last-Modified are what they were during the fetch.
    await gateway.waitFor(m => m.msg === 'download complete', 90_000)
    while (!existsSync(join(gateway.cacheDir, 'it-llm', 'v1.modelswarm', 'complete'))) await new Promise(resolve => setTimeout(resolve, 100))
    const headAfter = await s3.send(new HeadObjectCommand({ Bucket: 'it-llm', Key: `v1/${first}` }))
    expect([headAfter.ETag, headAfter.LastModified]).toEqual([headDuring.ETag, headDuring.LastModified])
  })
})

describe('read gateway, a version another process is writing into the host cache', () => {
  /** A fetch writing v1 into the host cache slowly (a 2 MiB/s origin line), and a gateway on that cache once the writer holds it. */
  async function gatewayBesideWriter (): Promise<{ model: TestModel, cacheDir: string, writer: Proc, gateway: Awaited<ReturnType<typeof startGateway>> }> {
    const model = await makeGatewayModel(16 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--line-rate', '2MiB/s']))
    const cacheDir = join(model.root, 'host-cache')
    const writer = track(startFetch(seeder, join(model.root, 'out'), ['--cache-dir', cacheDir], 'it-llm@v1'))
    // The writer holds the cache's store once it has verified chunks (their bits are on disk).
    const bitfield = join(cacheDir, 'it-llm', 'v1.modelswarm', 'bitfield')
    while (!(await readFile(bitfield).catch(() => Buffer.alloc(0))).some(b => b !== 0)) {
      expect(exitDescription(writer.proc)).toBeUndefined()
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    return { model, cacheDir, writer, gateway: track(await startGateway(seeder, model.root)) }
  }

  it('answers 503 SlowDown with Retry-After without downloading it a second time; the SDK\'s retries then get the bytes', async () => {
    const { model, cacheDir, writer, gateway } = await gatewayBesideWriter()
    expect(gateway.cacheDir).toBe(cacheDir)
    const first = Object.keys(await treeDigests(model.source)).sort().find(p => p.startsWith('model-'))!
    let busy: unknown
    try {
      await body(client(gateway.url), `v1/${first}`)
    } catch (err) {
      busy = err
    }
    const e = busy as { name: string, $metadata: { httpStatusCode?: number }, $response?: { headers: Record<string, string> } }
    expect([e.name, e.$metadata.httpStatusCode]).toEqual(['SlowDown', 503])
    expect(Number(e.$response?.headers['retry-after'])).toBeGreaterThan(0)
    expect(existsSync(join(cacheDir, 'it-llm', 'v1.modelswarm', 'complete'))).toBe(false)
    // HEAD needs only the header, which the writer has already verified and stored.
    const head = await client(gateway.url).send(new HeadObjectCommand({ Bucket: 'it-llm', Key: `v1/${first}` }))
    expect(head.ContentLength).toBe((await readFile(join(model.source, first))).length)
    // The SDK honours Retry-After; enough attempts outlast the writer's download.
    const patient = new S3Client({ endpoint: gateway.url, region: 'us-east-1', forcePathStyle: true, credentials: KEY, maxAttempts: 20 })
    expect((await body(patient, `v1/${first}`)).equals(await readFile(join(model.source, first)))).toBe(true)
    expect(gateway.stderr.filter(m => m.msg === 'gateway: fetching a version the host lacks')).toHaveLength(0)
    expect(await writer.exited).toBe(0)
  })

  it('when that process dies, the next read resumes its download in the gateway', async () => {
    const { model, writer, gateway } = await gatewayBesideWriter()
    expect(await s3Error(body(client(gateway.url), 'v1/config.json'))).toEqual({ name: 'SlowDown', status: 503 })
    await writer.kill('SIGKILL')
    const first = Object.keys(await treeDigests(model.source)).sort().find(p => p.startsWith('model-'))!
    expect((await body(client(gateway.url), `v1/${first}`)).equals(await readFile(join(model.source, first)))).toBe(true)
    const started = await gateway.waitFor(m => m.msg === 'fetching' && typeof m.resumed === 'number')
    expect(started.resumed).toBeGreaterThan(0)
  })
})

describe('read gateway, fixed ports', () => {
  it('on a fixed --listen port and --bulk-port, fetches a second version while the first still seeds, under one peer id', async () => {
    const model = await makeGatewayModel(4 * MiB)
    const seeder = track(await startSeeder(model))
    const [libp2pPort, bulkPort] = await freePorts(2)
    const keysFile = join(model.root, 'gateway-keys')
    await writeFile(keysFile, `${KEY.accessKeyId}:${KEY.secretAccessKey}\n`)
    // Not startGateway: its --listen on port 0 would be added to this one. --linger keeps v1 seeding while v2 is fetched.
    const gateway = track(run(['--log-level', 'info', 'gateway', '--cache-dir', join(model.root, 'host-cache'), '--gateway-listen', '127.0.0.1:0', '--keys-file', keysFile,
      '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--listen', `/ip4/127.0.0.1/tcp/${libp2pPort}`, '--bulk-port', String(bulkPort), '--linger', '5m', '--json']))
    const s3 = client((await gateway.waitFor(m => typeof m.gateway === 'string', 30_000)).gateway as string)
    expect((await body(s3, 'v1/config.json')).equals(await readFile(join(model.source, 'config.json')))).toBe(true)
    await gateway.waitFor(m => m.msg === 'download complete')
    const v2 = join(model.origin, model.name, 'v2')
    await generateModel(v2, 6 * MiB)
    await writeFile(join(v2, '_SUCCESS'), '')
    await seeder.waitFor(m => m.msg === 'version published' && m.version === 'it-llm@v2')
    const expected = await treeDigests(v2)
    for (const path of Object.keys(expected)) {
      expect(createHash('sha256').update(await body(s3, `v2/${path}`)).digest('hex'), path).toBe(expected[path])
    }
    const fetching = gateway.stderr.filter(m => m.msg === 'fetching')
    expect(fetching.map(m => m.version)).toEqual(['it-llm@v1', 'it-llm@v2'])
    expect(new Set(fetching.map(m => m.peer)).size).toBe(1)
    expect(gateway.stderr.filter(m => m.msg === 'gateway: fetch failed')).toEqual([])
  })
})

describe('read gateway, start', () => {
  it('refuses to start without access keys unless anonymous access is asked for', async () => {
    const root = await tempDir('ms-gw-start-')
    const p = track(run(['gateway', '--cache-dir', join(root, 'cache'), '--gateway-listen', '127.0.0.1:0', '--bootstrap', '/ip4/127.0.0.1/tcp/1/p2p/x', '--trust', 'x']))
    expect(await p.exited).toBe(2)
    expect(p.text.join('\n')).toMatch(/--keys-file.*--anonymous/)
  })
})
