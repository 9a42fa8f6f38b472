/** `modelswarm seed`: the seeder daemon. */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { InvalidInputError } from '../errors.ts'
import { createLogger, type Logger } from '../log.ts'
import { bulkHostsFor, createNode, SEEDER_PING_INTERVAL_MS } from '../peer/node.ts'
import { SwarmHost } from '../peer/swarm-host.ts'
import { startAdminServer } from '../seeder/admin-server.ts'
import { HdfsOrigin } from '../origins/hdfs/hdfs-origin.ts'
import { loadOrCreateKey } from '../seeder/identity.ts'
import { LocalDirOrigin } from '../origins/local-origin.ts'
import type { Origin } from '../origins/origin.ts'
import { createS3Client } from '../origins/s3/s3-client.ts'
import { S3Origin } from '../origins/s3/s3-origin.ts'
import { isS3Url, parseS3Url } from '../origins/s3/s3-url.ts'
import type { ModelVersion } from '../model-version.ts'
import { Seeder } from '../seeder/seeder.ts'
import { WebHdfsClient } from '../origins/hdfs/webhdfs-client.ts'
import { SpnegoAuth } from '../origins/hdfs/spnego.ts'
import { untilSignal } from './signals.ts'
import { TtyLog, wantsTtyLog } from './tty-log.ts'
import { withCleanup } from '../util/cleanup.ts'
import { makeDirs } from '../util/files.ts'
import { Membership } from '../peer/membership.ts'
import { loadMembership, type MembershipCommandOptions } from './membership-options.ts'

export interface SeedCommandOptions extends MembershipCommandOptions {
  identityFile?: string
  origin?: string
  hdfs?: string[]
  hdfsRoot: string[]
  hdfsUser?: string
  hdfsToken?: string
  s3Endpoint?: string
  s3Region?: string
  s3PathStyle?: boolean
  s3Profile?: string
  s3AccessKeyId?: string
  s3SecretAccessKeyFile?: string
  hdfsTokenFile?: string
  hdfsPrincipal?: string
  hdfsKeytab?: string
  hdfsCaFile?: string
  marker: string
  cacheDir: string
  cacheCapacity?: number
  keepVersions?: number
  pin?: ModelVersion[]
  inUseWindow: number
  listen: string[]
  lineRate?: number
  pollInterval: number
  parallelReads: number
  readSize: number
  chunkSize?: number
  admin: string
  adminTokenFile?: string
  originGrace: number
  seederPeer?: string[]
  takeoverGrace: number
  json: boolean
  bulk: boolean
  bulkPort: number
  logLevel: string
}

export async function runSeed (opts: SeedCommandOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel, destination: wantsTtyLog(process.stderr, opts.json) ? new TtyLog(process.stderr) : undefined })
  const { origin, probe } = await createOrigin(opts, log)
  const membership = new Membership({ ...await loadMembership(opts), log: log.child({ component: 'membership' }) })
  // The default key file's creation used to be what made the cache directory; with --identity-file it is not.
  await makeDirs(opts.cacheDir)
  const { key, created } = await loadOrCreateKey(opts.identityFile ?? join(opts.cacheDir, 'identity.key'))
  await withCleanup(async defer => {
    const node = await createNode({ privateKey: key, listen: opts.listen, dhtServer: true, pingIntervalMs: SEEDER_PING_INTERVAL_MS, membership })
    defer(() => node.stop())
    const host = new SwarmHost(node, log)
    await host.start({ bulk: opts.bulk ? { hosts: bulkHostsFor(opts.listen), port: opts.bulkPort, admit: ip => membership.admitsBulk(ip) } : undefined })
    defer(() => host.stop())
    const seeder = new Seeder({
      origin,
      cacheDir: opts.cacheDir,
      key,
      host,
      log,
      lineRate: opts.lineRate,
      pollIntervalMs: opts.pollInterval,
      parallelReads: opts.parallelReads,
      readSize: opts.readSize,
      chunkSize: opts.chunkSize,
      cacheCapacity: opts.cacheCapacity,
      keepVersions: opts.keepVersions,
      pins: opts.pin,
      inUseWindowMs: opts.inUseWindow,
      seederPeers: opts.seederPeer,
      takeoverGraceMs: opts.takeoverGrace
    })
    // The admin API answers from the start: /readyz says `recovering` while a big cache is published again.
    const admin = await startAdminServer(seeder, opts.admin, { originGraceMs: opts.originGrace, token: await readToken(opts.adminTokenFile) })
    defer(() => admin.close())
    defer(() => seeder.stop())
    await seeder.start()
    const peerId = node.peerId.toString()
    const addrs = node.getMultiaddrs().map(a => a.toString())
    if (opts.json) process.stdout.write(JSON.stringify({ peerId, addrs, admin: admin.url, keyCreated: created }) + '\n')
    else {
      process.stdout.write(`modelswarm seeder ${created ? '(new identity)' : ''}
  trust key  (fetch --trust):     ${peerId}
  bootstrap  (fetch --bootstrap): ${addrs.join(' ')}
  admin:                          ${admin.url}/v1/models
`)
    }
    log.info({ peerId, addrs, admin: admin.url, origin: origin.description, ...membership.describe() }, 'seeder started')
    const signal = await Promise.race([untilSignal(), fatalOriginError(probe)])
    log.info({ signal }, 'stopping')
  })
}

/** A secret from its file (a mounted Secret), trimmed; undefined when none is configured. */
export async function readToken (file: string | undefined, flag = '--admin-token-file'): Promise<string | undefined> {
  if (file === undefined) return undefined
  const token = (await readFile(file, 'utf8').catch((err: unknown) => { throw new InvalidInputError(`${flag} ${file}: ${(err as Error).message}`, { cause: err }) })).trim()
  if (token === '') throw new InvalidInputError(`${flag} ${file} is empty`)
  return token
}

/** Errors no later poll can cure: the origin refuses who we are or we refuse its certificate. */
const FATAL_ORIGIN_CODES = new Set<string>(['MS_HDFS_AUTH', 'MS_HDFS_TLS'])

/**
 * Rejects with the probe's error when it is one of FATAL_ORIGIN_CODES, so the seeder exits with that
 * error's status and hint instead of polling in vain; never settles otherwise (an origin that is merely
 * down is the poll loop's business: cached versions are served meanwhile).
 */
function fatalOriginError (probe: (() => Promise<unknown>) | undefined): Promise<never> {
  return new Promise((_resolve, reject) => {
    probe?.().catch((err: unknown) => { if (FATAL_ORIGIN_CODES.has((err as { code?: string }).code ?? '')) reject(err) })
  })
}

async function createOrigin (opts: SeedCommandOptions, log: Logger): Promise<{ origin: Origin, probe?: () => Promise<unknown> }> {
  const hdfs = opts.hdfs ?? []
  if ((opts.origin === undefined) === (hdfs.length === 0)) throw new InvalidInputError('give exactly one origin: --origin DIR, --origin s3://BUCKET/PREFIX or --hdfs URL[,URL…]')
  const s3 = opts.origin !== undefined && isS3Url(opts.origin)
  const s3Values = [opts.s3Endpoint, opts.s3Region, opts.s3Profile, opts.s3AccessKeyId, opts.s3SecretAccessKeyFile]
  const s3Flags = s3Values.some(v => v !== undefined) || opts.s3PathStyle === true
  if (s3Flags && !s3) throw new InvalidInputError('the --s3-* options apply only to --origin s3://BUCKET/PREFIX')
  if (s3) {
    const client = createS3Client({
      endpoint: opts.s3Endpoint,
      region: opts.s3Region,
      pathStyle: opts.s3PathStyle,
      profile: opts.s3Profile,
      accessKeyId: opts.s3AccessKeyId,
      secretAccessKey: await readToken(opts.s3SecretAccessKeyFile, '--s3-secret-access-key-file')
    })
    return { origin: new S3Origin({ client, location: parseS3Url(opts.origin!), endpoint: opts.s3Endpoint, marker: opts.marker }) }
  }
  if (opts.origin !== undefined) return { origin: new LocalDirOrigin(opts.origin, { marker: opts.marker }) }
  if (opts.hdfsToken !== undefined && opts.hdfsTokenFile !== undefined) throw new InvalidInputError('give one of --hdfs-token and --hdfs-token-file')
  const ca = opts.hdfsCaFile === undefined
    ? undefined
    : await readFile(opts.hdfsCaFile).catch((err: unknown) => { throw new InvalidInputError(`--hdfs-ca-file ${opts.hdfsCaFile}: ${(err as Error).message}`, { cause: err }) })
  const client = new WebHdfsClient({
    namenodes: hdfs,
    user: opts.hdfsUser,
    delegationToken: opts.hdfsToken ?? await readToken(opts.hdfsTokenFile, '--hdfs-token-file'),
    ca,
    // Always ready for a Negotiate challenge: a ticket cache from kinit works without any flag.
    spnego: new SpnegoAuth({ principal: opts.hdfsPrincipal, keytab: opts.hdfsKeytab }),
    log: log.child({ component: 'webhdfs' })
  })
  const origin = new HdfsOrigin({ client, roots: opts.hdfsRoot, marker: opts.marker })
  return { origin, probe: () => client.getFileStatus(opts.hdfsRoot[0] ?? '/') }
}
