/**
 * S3Origin against a real S3-protocol server process (moto's server mode): the marker watch, paginated
 * listings, ranged reads, stamps and checksums of re-uploaded objects, and S3's failures as typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from '@aws-sdk/client-iam'
import { isRetriable, OriginChangedError } from '../../../src/errors.ts'
import { createS3Client } from '../../../src/origins/s3/s3-client.ts'
import { S3Error } from '../../../src/origins/s3/s3-errors.ts'
import { S3Origin } from '../../../src/origins/s3/s3-origin.ts'
import { contentBytes } from '../../hdfs/mini-hdfs-content.ts'
import { startMoto, type Moto } from '../../s3/moto.ts'
import { ACCESS_KEY_ID, createBucket, ISOLATED_AWS_ENV, putFiles, putMarker, SECRET, testClient } from '../../s3/s3-seeder-process.ts'
import { collect } from '../../support/read-sink.ts'
import { errorOf } from '../../support/errors.ts'

const MiB = 1024 * 1024
const BUCKET = 'origin-test'

describe('S3 origin against moto', () => {
  let moto: Moto
  let client: S3Client
  const origin = (opts: { prefix?: string, pageSize?: number, bucket?: string } = {}): S3Origin => new S3Origin({
    client: createS3Client({ endpoint: moto.endpoint, pathStyle: true, accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET }),
    location: { bucket: opts.bucket ?? BUCKET, prefix: opts.prefix ?? 'models' },
    endpoint: moto.endpoint,
    pageSize: opts.pageSize
  })

  beforeAll(async () => {
    moto = await startMoto()
    client = testClient(moto)
    await createBucket(client, BUCKET)
    // llm: v1, v3 and v5 published, v2 and v4 still being written; qa: v1 published; a stray object beside the models.
    for (const v of ['v1', 'v2', 'v3', 'v4', 'v5']) {
      await putFiles(client, BUCKET, `models/llm/${v}/`, [{ path: 'w.bin', size: 10, seed: 1 }])
      if (['v1', 'v3', 'v5'].includes(v)) await putMarker(client, BUCKET, `models/llm/${v}/`)
    }
    await putFiles(client, BUCKET, 'models/qa/v1/', [
      { path: 'config.json', size: 300, seed: 2 },
      { path: 'model-00001.safetensors', size: 5 * MiB + 3, seed: 3 },
      { path: 'model-00002.safetensors', size: 7, seed: 4 },
      { path: 'tokenizer/tokenizer.json', size: 1000, seed: 5 },
      { path: 'tokenizer/extra/merges.txt', size: 0, seed: 6 }
    ])
    await putMarker(client, BUCKET, 'models/qa/v1/')
    await putFiles(client, BUCKET, 'models/', [{ path: 'README', size: 5, seed: 7 }])
  })
  afterAll(async () => { await moto?.stop() })

  it('lists exactly the versions with a marker, over many pages, and names the server without credentials', async () => {
    const o = origin({ pageSize: 2 })
    const ready = await o.listReady()
    expect(ready.map(r => `${r.name}@${r.version}`).sort()).toEqual(['llm@v1', 'llm@v3', 'llm@v5', 'qa@v1'])
    expect(await o.isReady({ name: 'llm', version: 'v2' })).toBe(false)
    await putMarker(client, BUCKET, 'models/llm/v2/')
    expect(await o.isReady({ name: 'llm', version: 'v2' })).toBe(true)
    expect(o.description).toBe(`s3://${BUCKET}/models at ${moto.endpoint}`)
    expect(o.description).not.toContain(SECRET)
  })

  it('lists a version\'s objects over many pages as files and directories, marker excluded', async () => {
    const listing = await origin({ pageSize: 2 }).listVersion({ name: 'qa', version: 'v1' })
    expect(listing.files.map(f => `${f.path}:${f.size}`)).toEqual(['config.json:300', `model-00001.safetensors:${5 * MiB + 3}`, 'model-00002.safetensors:7', 'tokenizer/extra/merges.txt:0', 'tokenizer/tokenizer.json:1000'])
    expect(listing.dirs.map(d => d.path)).toEqual(['tokenizer', 'tokenizer/extra'])
    // A bucket root works as well as a prefix.
    expect((await origin({ prefix: '' }).listReady()).length).toBe(0)
  })

  it('streams ranged reads: the right bytes for ranges that cross region ends, and counts every body byte', async () => {
    const o = origin()
    const ref = { name: 'qa', version: 'v1' }
    let total = 0
    for (const [offset, length] of [[0, 5 * MiB + 3], [1, 1], [4 * MiB - 7, MiB + 10], [5 * MiB + 2, 1]] as const) {
      const { sink, bytes } = collect(length, 65_537)
      await o.read(ref, 'model-00001.safetensors', offset, length, sink)
      expect(Buffer.from(contentBytes(3, offset, length)).equals(bytes()), `${offset}+${length}`).toBe(true)
      total += length
    }
    expect(o.bytesRead).toBe(total)
  })

  it('an object uploaded again changes its stamp and, for other bytes, its checksum; the same bytes keep the checksum', async () => {
    const o = origin()
    const ref = { name: 'llm', version: 'v1' }
    const stamp = await o.stampOf(ref, 'w.bin')
    const sum = await o.checksum(ref, 'w.bin')
    expect((await o.listVersion(ref)).stamps['w.bin']).toBe(stamp)
    await new Promise(resolve => setTimeout(resolve, 1100)) // Last-Modified has whole seconds
    await putFiles(client, BUCKET, 'models/llm/v1/', [{ path: 'w.bin', size: 10, seed: 1 }])
    expect(await o.stampOf(ref, 'w.bin')).not.toBe(stamp)
    expect(await o.checksum(ref, 'w.bin')).toBe(sum)
    await putFiles(client, BUCKET, 'models/llm/v1/', [{ path: 'w.bin', size: 10, seed: 99 }])
    expect(await o.checksum(ref, 'w.bin')).not.toBe(sum)
  })

  it('a read past the end of an object replaced by a shorter one is a re-publish, never a short success', async () => {
    const o = origin()
    await putFiles(client, BUCKET, 'models/llm/v3/', [{ path: 'w.bin', size: 4, seed: 8 }])
    const err = await errorOf(o.read({ name: 'llm', version: 'v3' }, 'w.bin', 2, 8, collect(8).sink))
    expect(err).toBeInstanceOf(OriginChangedError)
    expect((err as OriginChangedError).republished).toBe(true)
    expect((err as Error).message).toMatch(/is now 4 bytes/)
  })

  it('a missing bucket, a missing object and an unreachable server are typed errors naming the fix', async () => {
    const noBucket = await errorOf(origin({ bucket: 'no-such-bucket' }).listReady())
    expect(noBucket).toMatchObject({ code: 'MS_S3_NO_SUCH_BUCKET', s3Code: 'NoSuchBucket', status: 404 })
    expect((noBucket as Error).message).toMatch(/s3:\/\/no-such-bucket\/models\/.*check the bucket in --origin/)
    expect(isRetriable(noBucket)).toBe(false)
    // A preheat's marker probe says the same, not "no marker".
    await expect(origin({ bucket: 'no-such-bucket' }).isReady({ name: 'llm', version: 'v1' })).rejects.toMatchObject({ code: 'MS_S3_NO_SUCH_BUCKET' })

    const noKey = await errorOf(origin().read({ name: 'qa', version: 'v1' }, 'gone.bin', 0, 1, collect(1).sink))
    expect(noKey).toMatchObject({ code: 'MS_S3_NO_SUCH_KEY' })
    await expect(origin().listVersion({ name: 'qa', version: 'v9' })).rejects.toMatchObject({ code: 'MS_NOT_FOUND' })

    const down = new S3Origin({ client: createS3Client({ endpoint: 'http://127.0.0.1:1', pathStyle: true, accessKeyId: 'a', secretAccessKey: 'b' }), location: { bucket: BUCKET, prefix: '' } })
    const refused = await errorOf(down.listReady())
    expect(refused).toBeInstanceOf(S3Error)
    expect(refused).toMatchObject({ code: 'MS_S3_CONNECTION', s3Code: 'ECONNREFUSED' })
    expect((refused as Error).message).toMatch(/check --s3-endpoint/)
    expect(isRetriable(refused)).toBe(true)
  })

  it('with no credentials anywhere in the AWS chain the error says how to give them', async () => {
    const saved = { ...process.env }
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k]
      Object.assign(process.env, ISOLATED_AWS_ENV)
      const o = new S3Origin({ client: createS3Client({ endpoint: moto.endpoint, pathStyle: true }), location: { bucket: BUCKET, prefix: 'models' } })
      const err = await errorOf(o.listReady())
      expect(err).toMatchObject({ code: 'MS_S3_NO_CREDENTIALS' })
      expect((err as Error).message).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/)
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k]
      Object.assign(process.env, saved)
    }
  })
})

describe('S3 origin against moto with IAM checks on', () => {
  let moto: Moto
  let key: { id: string, secret: string }
  beforeAll(async () => {
    // moto checks signatures and policies once this many requests went by: the user, its key, its policy, the bucket.
    moto = await startMoto({ INITIAL_NO_AUTH_ACTION_COUNT: '5' })
    const admin = { endpoint: moto.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIAADMIN00000000000', secretAccessKey: 'x' } }
    const iam = new IAMClient(admin)
    await iam.send(new CreateUserCommand({ UserName: 'seeder' }))
    const created = await iam.send(new CreateAccessKeyCommand({ UserName: 'seeder' }))
    key = { id: created.AccessKey!.AccessKeyId!, secret: created.AccessKey!.SecretAccessKey! }
    await iam.send(new PutUserPolicyCommand({ UserName: 'seeder', PolicyName: 'read', PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 's3:*', Resource: '*' }] }) }))
    const s3 = testClient(moto)
    await createBucket(s3, BUCKET)
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'models/llm/v1/_SUCCESS', Body: new Uint8Array(0) }))
  })
  afterAll(async () => { await moto?.stop() })

  const withKey = (accessKeyId: string, secretAccessKey: string): S3Origin => new S3Origin({
    client: createS3Client({ endpoint: moto.endpoint, pathStyle: true, accessKeyId, secretAccessKey }),
    location: { bucket: BUCKET, prefix: 'models' }
  })

  it('the right key lists; a wrong secret or an unknown key is access denied, naming the credential options, never the secret', async () => {
    expect(await withKey(key.id, key.secret).listReady()).toEqual([{ name: 'llm', version: 'v1' }])
    for (const [id, secret, s3Code] of [[key.id, 'wrong-secret-Q7x', 'SignatureDoesNotMatch'], ['AKIANOSUCHKEY0000000', 'wrong-secret-Q7x', 'InvalidAccessKeyId']]) {
      const err = await errorOf(withKey(id!, secret!).listReady())
      expect(err).toMatchObject({ code: 'MS_S3_ACCESS_DENIED', s3Code, status: 403 })
      expect((err as Error).message).toMatch(/--s3-access-key-id with --s3-secret-access-key-file, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --s3-profile/)
      expect((err as Error).message).not.toContain('wrong-secret-Q7x')
      expect(isRetriable(err)).toBe(false)
    }
  })
})
