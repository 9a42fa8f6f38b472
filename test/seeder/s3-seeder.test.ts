/**
 * The S3 origin's promises as user stories, with real processes against a real S3-protocol server (moto's
 * server mode): `modelswarm seed --origin s3://…` and `modelswarm fetch` hosts. Bytes read from the bucket
 * are counted by the seeder at the HTTP body and read from its admin API (moto counts no bytes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { S3Client } from '@aws-sdk/client-s3'
import { expectedDigests, models, totalSize, waitForVersion } from '../hdfs/seeder-process.ts'
import { startMoto, type Moto } from '../s3/moto.ts'
import { ACCESS_KEY_ID, createBucket, putFiles, putMarker, SECRET, startS3Seeder, testClient, type TestFile } from '../s3/s3-seeder-process.ts'
import { fetchUntilNew, startFetch, track, treeDigests } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const MiB = 1024 * 1024
const BUCKET = 'ms-models'

const V1: TestFile[] = [
  { path: 'config.json', size: 2000, seed: 3 },
  { path: 'model-00001.safetensors', size: 96 * MiB, seed: 1 },
  { path: 'model-00002.safetensors', size: 20 * MiB + 17, seed: 2 },
  { path: 'tokenizer/tokenizer.json', size: 3 * MiB + 5, seed: 4 }
]
// v2 retrains the first shard; config, tokenizer and the second shard are unchanged.
const V2: TestFile[] = [...V1.filter(f => f.path !== 'model-00001.safetensors'), { path: 'model-00001.safetensors', size: 24 * MiB, seed: 5 }]

/** AWS's own variables: the standard credential chain, as a pod with a mounted env would give them. */
const AWS_ENV = { AWS_ACCESS_KEY_ID: ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: SECRET }

describe('S3 seeder against moto', () => {
  let moto: Moto
  let s3: S3Client
  let work: string
  beforeAll(async () => {
    moto = await startMoto()
    s3 = testClient(moto)
    await createBucket(s3, BUCKET)
    work = await tempDir('ms-s3-seed-')
  })
  afterAll(async () => { await moto?.stop() })

  it('publish with a marker → the seeder pulls it once, four hosts get byte-identical files; bytes read from the bucket = model size; the secret is in no log, ps or API answer', async () => {
    const t0 = performance.now()
    await putFiles(s3, BUCKET, 'prod/llm/v1/', V1)
    await putMarker(s3, BUCKET, 'prod/llm/v1/')
    const t1 = performance.now()
    const seeder = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/prod`, cacheDir: join(work, 'seeder'), secretFile: join(work, 'secret'), extra: ['--chunk-size', '8MiB'] }))
    const v = await waitForVersion(seeder.admin, 'llm@v1', x => x.state === 'ready')
    const t2 = performance.now()
    const hosts = Array.from({ length: 4 }, (_, i) => track(startFetch(seeder, join(work, `host-${i}`), ['--linger', '10m'], 'llm@v1')))
    await Promise.all(hosts.map(h => h.waitFor(m => m.ok === true, 110_000)))
    console.log(`upload ${((t1 - t0) / 1000).toFixed(1)} s, seeder start + pull ${((t2 - t1) / 1000).toFixed(1)} s, four hosts ${((performance.now() - t2) / 1000).toFixed(1)} s`)
    const expected = expectedDigests(V1)
    for (let i = 0; i < hosts.length; i++) expect(await treeDigests(join(work, `host-${i}`))).toEqual(expected)
    const { line } = await models(seeder.admin)
    console.log(`model ${totalSize(V1)} bytes; read from the bucket (HTTP bodies): ${line.originBytesRead} bytes (${(line.originBytesRead / totalSize(V1)).toFixed(4)}×)`)
    expect(v.bytes).toBe(totalSize(V1))
    expect(v.bytesPulled).toBe(totalSize(V1))
    expect(v.bytesRetried).toBe(0)
    expect(line.originBytesRead).toBe(totalSize(V1))

    const cmdline = await readFile(`/proc/${seeder.proc.pid}/cmdline`, 'utf8')
    expect(cmdline).toContain('s3://ms-models/prod')
    expect(cmdline).not.toContain(SECRET)
    const answers = await Promise.all(['/v1/models', '/readyz', '/healthz', '/metrics'].map(async p => await (await fetch(seeder.admin + p)).text()))
    // Every chunk left the seeder at least once, first asked while no host held it; the gate's counts say so.
    const served = (await waitForVersion(seeder.admin, 'llm@v1', () => true)).uploadDecisions!
    expect(served['served-unheld']).toBeGreaterThanOrEqual(v.chunks!)
    expect(answers[3]).toContain(`modelswarm_upload_decisions_total{model="llm",version="v1",decision="served-unheld"} ${served['served-unheld']}`)
    const logs = [...seeder.stdout, ...seeder.stderr].map(m => JSON.stringify(m)).concat(seeder.text)
    for (const text of [...answers, ...logs]) expect(text).not.toContain(SECRET)
    expect(logs.some(l => l.includes(`s3://${BUCKET}/prod at ${moto.endpoint}`))).toBe(true)
  })

  it('a second version pulls only its changed shard: files with the same ETag and size are copied from the cache (credentials from AWS_* variables)', async () => {
    await putFiles(s3, BUCKET, 'prod/llm/v2/', V2)
    await putMarker(s3, BUCKET, 'prod/llm/v2/')
    const seeder = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/prod/`, cacheDir: join(work, 'seeder'), env: AWS_ENV, extra: ['--chunk-size', '8MiB'] }))
    const v2 = await waitForVersion(seeder.admin, 'llm@v2', x => x.state === 'ready')
    const changed = 24 * MiB
    console.log(`v2: ${v2.bytes} bytes, pulled ${v2.bytesPulled}, copied from v1 ${v2.bytesCopied}`)
    expect(v2.bytesPulled).toBe(changed)
    expect(v2.bytesCopied).toBe(totalSize(V2) - changed)
    expect((await models(seeder.admin)).line.originBytesRead).toBe(changed)
    const host = track(startFetch(seeder, join(work, 'latest-host'), [], 'llm'))
    expect((await host.waitFor(m => m.ok === true, 60_000)).version).toBe('v2')
    expect(await treeDigests(join(work, 'latest-host'))).toEqual(expectedDigests(V2))
  })

  it('objects uploaded again under the same version, during a pull and while the seeder was down, are detected: hosts get the new bytes whole, never a splice', async () => {
    const A: TestFile[] = [{ path: 'a.bin', size: 16 * MiB, seed: 31 }]
    const B: TestFile[] = [{ path: 'a.bin', size: 16 * MiB, seed: 32 }]
    const C: TestFile[] = [{ path: 'a.bin', size: 16 * MiB, seed: 33 }]
    await putFiles(s3, BUCKET, 'repub/it/v1/', A)
    await putMarker(s3, BUCKET, 'repub/it/v1/')
    const cacheDir = join(work, 'seeder-repub')
    const slow = ['--chunk-size', '1MiB', '--line-rate', '4MiB/s']
    const first = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/repub`, cacheDir, env: AWS_ENV, extra: slow }))
    await waitForVersion(first.admin, 'it@v1', x => x.chunksHeld >= 4)
    await putFiles(s3, BUCKET, 'repub/it/v1/', B)
    const reruns = await fetchUntilNew(first, join(work, 'repub-during'), 'it@v1')
    expect(await treeDigests(join(work, 'repub-during'))).toEqual(expectedDigests(B))
    expect(first.stderr.some(m => m.msg?.startsWith('version changed at the origin'))).toBe(true)
    const before = await waitForVersion(first.admin, 'it@v1', x => x.state === 'ready')
    await first.kill('SIGKILL')

    await putFiles(s3, BUCKET, 'repub/it/v1/', C)
    const second = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/repub`, cacheDir, env: AWS_ENV, extra: ['--chunk-size', '1MiB'] }))
    await fetchUntilNew(second, join(work, 'repub-down'), 'it@v1')
    expect(await treeDigests(join(work, 'repub-down'))).toEqual(expectedDigests(C))
    expect(second.stderr.some(m => m.msg?.startsWith('version changed at the origin'))).toBe(true)
    const after = await waitForVersion(second.admin, 'it@v1', x => x.state === 'ready')
    expect(after.headerId).not.toBe(before.headerId)
    console.log(`re-published during the pull: host reran ${reruns} time(s); while down: new header ${after.headerId}`)
  })

  it('a seeder killed mid-pull resumes from its bitfield after a restart and reads only the chunks it lacks from the bucket', async () => {
    const files: TestFile[] = [{ path: 'weights.bin', size: 64 * MiB, seed: 12 }]
    await putFiles(s3, BUCKET, 'resume/m/v1/', files)
    await putMarker(s3, BUCKET, 'resume/m/v1/')
    const cacheDir = join(work, 'seeder-resume')
    const first = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/resume`, cacheDir, env: AWS_ENV, extra: ['--chunk-size', '4MiB', '--line-rate', '16MiB/s'] }))
    const before = await waitForVersion(first.admin, 'm@v1', x => x.chunksHeld >= 5)
    await first.kill('SIGKILL')
    const again = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/resume`, cacheDir, env: AWS_ENV }))
    const published = await again.waitFor(m => m.msg === 'version published')
    const v = await waitForVersion(again.admin, 'm@v1', x => x.state === 'ready')
    const line = (await models(again.admin)).line
    console.log(`killed at ≥ ${before.chunksHeld}/16 chunks; restart resumed ${published.resumed}, read ${line.originBytesRead} bytes from the bucket`)
    expect(published.resumed).toBeGreaterThanOrEqual(before.chunksHeld - 1)
    expect(line.originBytesRead).toBe((16 - published.resumed) * 4 * MiB)
    expect(v.bytesRetried).toBe(0)
    const host = track(startFetch(again, join(work, 'host-resume'), [], 'm@v1'))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, 'host-resume'))).toEqual(expectedDigests(files))
  })

  it('a missing bucket is a clear error naming the fix, in /readyz and for a preheat', async () => {
    const seeder = track(await startS3Seeder(moto, { url: 's3://no-such-bucket/prod', cacheDir: join(work, 'seeder-missing'), env: AWS_ENV }))
    const ready = await waitReadyz(seeder.admin)
    expect(ready.originReachable).toBe(false)
    expect(ready.originError).toMatch(/s3:\/\/no-such-bucket\/prod\/: NoSuchBucket: .* — check the bucket in --origin s3:\/\/BUCKET\/PREFIX/)
    const preheat = await fetch(`${seeder.admin}/v1/preheat`, { method: 'POST', body: JSON.stringify({ name: 'llm', version: 'v1' }) })
    expect(preheat.status).toBe(404)
    expect(await preheat.text()).toMatch(/NoSuchBucket.*check the bucket in --origin/)
  })
})

describe('S3 seeder against moto with IAM checks on', () => {
  let moto: Moto
  beforeAll(async () => {
    // Only the bucket is created before moto starts checking every request's key and signature.
    moto = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '1' })
    await createBucket(testClient(moto), BUCKET)
  })
  afterAll(async () => { await moto?.stop() })

  it('bad credentials are a clear error naming the credential options, and never show the secret', async () => {
    const work = await tempDir('ms-s3-denied-')
    const seeder = track(await startS3Seeder(moto, { url: `s3://${BUCKET}/prod`, cacheDir: join(work, 'seeder'), secretFile: join(work, 'secret') }))
    const ready = await waitReadyz(seeder.admin)
    expect(ready.originReachable).toBe(false)
    expect(ready.originError).toMatch(/InvalidAccessKeyId: .* — check the S3 credentials \(--s3-access-key-id with --s3-secret-access-key-file, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --s3-profile/)
    expect(JSON.stringify(ready)).not.toContain(SECRET)
    const warned = await seeder.waitFor(m => m.msg === 'origin unreachable; serving cached versions')
    expect(warned.err).toMatch(/InvalidAccessKeyId/)
    expect(JSON.stringify(warned)).not.toContain(SECRET)
  })
})

/** /readyz once the first listing has answered (or failed). */
async function waitReadyz (admin: string): Promise<Record<string, any>> {
  for (let i = 0; i < 200; i++) {
    const ready = await (await fetch(`${admin}/readyz`)).json() as Record<string, any>
    if (ready.originReachable === false) return ready
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error('the origin never showed as unreachable in /readyz')
}
