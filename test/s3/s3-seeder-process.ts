/**
 * A `modelswarm seed --origin s3://…` process against a moto server, and what tests need around it: a
 * test-side S3 client, uploading generated files, and credentials kept out of the command line.
 */
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { writeFile } from 'node:fs/promises'
import { contentBytes } from '../hdfs/mini-hdfs-content.ts'
import type { HdfsFile } from '../hdfs/seeder-process.ts'
import { run, type SeederProc } from '../support/cli.ts'
import type { Moto } from './moto.ts'

/** A generated file: `size` bytes of `contentBytes(seed, …)` at `path`. */
export type TestFile = HdfsFile

/** Credentials the seeder gets; the secret is long and unusual so a test can grep for it anywhere. */
export const ACCESS_KEY_ID = 'AKIAMODELSWARMTEST01'
export const SECRET = 'ms-test-secret-5f1c7b0e9d2a4e6b8c3f1a7d'

/** Env that keeps the host's AWS setup (profiles, instance metadata) out of the tests. */
export const ISOLATED_AWS_ENV: Record<string, string> = {
  AWS_CONFIG_FILE: '/nonexistent/modelswarm-test-aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/modelswarm-test-aws-credentials',
  AWS_EC2_METADATA_DISABLED: 'true'
}

export function testClient (moto: Pick<Moto, 'endpoint'>): S3Client {
  return new S3Client({ endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET } })
}

export async function createBucket (client: S3Client, bucket: string): Promise<void> {
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
}

/** Uploads each file under `prefix` (`…/name/version/`), one PutObject each. */
export async function putFiles (client: S3Client, bucket: string, prefix: string, files: readonly TestFile[]): Promise<void> {
  for (const f of files) await client.send(new PutObjectCommand({ Bucket: bucket, Key: prefix + f.path, Body: contentBytes(f.seed, 0, f.size) }))
}

export async function putMarker (client: S3Client, bucket: string, prefix: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}_SUCCESS`, Body: new Uint8Array(0) }))
}

export interface S3SeederOptions {
  url: string
  cacheDir: string
  extra?: string[]
  /** Environment of the seeder beyond ISOLATED_AWS_ENV (credentials through AWS_* variables). */
  env?: Record<string, string>
  /** Where the secret key file goes when the seeder is given `--s3-access-key-id` + `--s3-secret-access-key-file`. */
  secretFile?: string
}

/**
 * Starts `modelswarm seed --origin URL --s3-endpoint … --s3-path-style`; credentials go in a secret file
 * when `secretFile` is set, else they come from `env`.
 */
export async function startS3Seeder (moto: Pick<Moto, 'endpoint'>, opts: S3SeederOptions): Promise<SeederProc> {
  const creds: string[] = []
  if (opts.secretFile !== undefined) {
    await writeFile(opts.secretFile, `${SECRET}\n`, { mode: 0o600 })
    creds.push('--s3-access-key-id', ACCESS_KEY_ID, '--s3-secret-access-key-file', opts.secretFile)
  }
  const p = run(['--log-level', 'info', 'seed', '--origin', opts.url, '--s3-endpoint', moto.endpoint, '--s3-path-style', ...creds,
    '--cache-dir', opts.cacheDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--poll-interval', '500ms', '--json', ...opts.extra ?? []],
  { env: { ...ISOLATED_AWS_ENV, ...opts.env } })
  const info = await p.waitFor(m => typeof m.peerId === 'string', 60_000)
  return Object.assign(p, { peerId: info.peerId as string, addr: info.addrs[0] as string, admin: info.admin as string })
}
