/**
 * The seeder against a secured HDFS: a MiniKdc and a Kerberos MiniDFSCluster serving WebHDFS over HTTPS
 * only, with a certificate from a CA this test creates. A seeder authenticating with a keytab, with a
 * ticket cache from kinit, or with a delegation token pulls a version that fetch hosts get byte for byte;
 * missing credentials and an untrusted certificate end the seeder with typed errors naming the flags;
 * no token, cookie or password shows in its logs, its argv or /v1/models.
 */
import { execFile } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../../src/errors.ts'
import { SpnegoAuth } from '../../src/origins/hdfs/spnego.ts'
import { startMiniHdfs, type MiniHdfs, type MiniKdcInfo } from '../hdfs/mini-hdfs.ts'
import { expectedDigests, models, startHdfsSeeder, waitForVersion, writeFiles, type HdfsFile } from '../hdfs/seeder-process.ts'
import { createTestCa, type TestCa } from '../hdfs/test-ca.ts'
import { run, startFetch, track, treeDigests, type Proc } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'

const exec = promisify(execFile)
const MiB = 1024 * 1024
const FILES: HdfsFile[] = [
  { path: 'config.json', size: 1500, seed: 11 },
  { path: 'model.safetensors', size: 5 * MiB + 3, seed: 12, blockSize: MiB },
  { path: 'tokenizer/vocab.txt', size: 70_000, seed: 13 }
]
const INSTALL_KRB5 = join(import.meta.dirname, '../hdfs/install-krb5.sh')

/** What no log line, argv or admin answer may contain, whichever credential the seeder used. */
const SECRET_PATTERNS = [/delegation=/, /Negotiate/i, /hadoop\.auth/, /\bYII[A-Za-z0-9+/]{16}/]

/** MIT Kerberos's view of the MiniKdc: TCP only (Kerby's default), no DNS games with "localhost". */
function krb5Conf (kdc: MiniKdcInfo): string {
  return `[libdefaults]
  default_realm = ${kdc.realm}
  udp_preference_limit = 1
  dns_canonicalize_hostname = false
  rdns = false
  dns_lookup_kdc = false
  dns_lookup_realm = false
[realms]
  ${kdc.realm} = {
    kdc = ${kdc.kdcHost}:${kdc.kdcPort}
  }
`
}

/** A delegation token from the NameNode for alice, got over SPNEGO the way `hdfs fetchdt` would. */
async function delegationToken (nn: string, ca: Buffer, kdc: MiniKdcInfo): Promise<string> {
  const url = new URL(`${nn}/webhdfs/v1/?op=GETDELEGATIONTOKEN`)
  // SpnegoAuth points MIT Kerberos at the keytab through the environment, which later seeders inherit.
  const saved = { KRB5_CLIENT_KTNAME: process.env.KRB5_CLIENT_KTNAME, KRB5CCNAME: process.env.KRB5CCNAME }
  let token: string
  try {
    token = await new SpnegoAuth({ principal: kdc.principal, keytab: kdc.keytab }).token(url.hostname, 'test')
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  const body = await new Promise<string>((resolve, reject) => {
    request(url, { ca, headers: { authorization: `Negotiate ${token}` } }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (s: string) => { text += s }).on('end', () => resolve(text))
    }).on('error', reject).end()
  })
  return (JSON.parse(body) as { Token: { urlString: string } }).Token.urlString
}

/** Everything a seeder showed: its stdout and stderr lines, its argv, and its admin API's model list. */
async function exposure (seeder: Proc & { admin: string }): Promise<string> {
  const cmdline = (await readFile(`/proc/${seeder.proc.pid}/cmdline`, 'utf8')).replaceAll('\0', ' ')
  return [JSON.stringify(seeder.stdout), JSON.stringify(seeder.stderr), seeder.text.join('\n'), cmdline, JSON.stringify(await models(seeder.admin))].join('\n')
}

/** The process's exit code; after `ms` an error carrying what it printed (a seeder that did not stop). */
async function exitOf (p: Proc, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms; printed:\n${JSON.stringify([...p.stdout, ...p.stderr]).slice(0, 4000)}\n${p.text.join('\n')}`)), ms)
  })
  try {
    return await Promise.race([p.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

describe('HDFS seeder, Kerberos-secured cluster over HTTPS', () => {
  let hdfs: MiniHdfs
  let kdc: MiniKdcInfo
  let ca: TestCa
  let work: string
  let baseEnv: Record<string, string>

  beforeAll(async () => {
    // MIT Kerberos headers and kinit (Debian), and the optional kerberos module built against them.
    await exec('bash', [INSTALL_KRB5], { env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` }, timeout: 240_000 })
    work = await tempDir('ms-hdfs-secure-')
    ca = await createTestCa(work)
    hdfs = await startMiniHdfs({ https: ca, kerberos: true })
    kdc = hdfs.kerberos!
    await writeFile(join(work, 'krb5.conf'), krb5Conf(kdc))
    // Inherited by every seeder; the test process's own SPNEGO (delegationToken) reads it too.
    process.env.KRB5_CONFIG = join(work, 'krb5.conf')
    baseEnv = { KRB5_CONFIG: join(work, 'krb5.conf'), MODELSWARM_HDFS_CA_FILE: ca.caFile, KRB5CCNAME: `FILE:${join(work, 'no-tickets')}` }
    await writeFiles(hdfs, '/secure/sec-llm/v1', FILES)
    await hdfs.command('touch /secure/sec-llm/v1/_SUCCESS')
  }, 360_000) // a fresh machine first installs Kerberos (apt, npm) and starts the JVM
  afterAll(async () => {
    await hdfs?.stop()
  })

  it('a seeder with a keytab pulls over HTTPS + SPNEGO; a fetch host gets byte-identical files; no credential leaks', async () => {
    expect(hdfs.namenodes[0]).toMatch(/^https:\/\/localhost:\d+$/)
    const seeder = track(await startHdfsSeeder(hdfs, {
      root: '/secure',
      cacheDir: join(work, 'seeder-keytab'),
      env: { ...baseEnv, MODELSWARM_HDFS_PRINCIPAL: kdc.principal, MODELSWARM_HDFS_KEYTAB: kdc.keytab },
      extra: ['--log-level', 'debug']
    }))
    const v = await waitForVersion(seeder.admin, 'sec-llm@v1', x => x.state === 'ready')
    expect(v.bytes).toBe(FILES.reduce((s, f) => s + f.size, 0))
    const host = track(startFetch(seeder, join(work, 'host-keytab'), [], 'sec-llm@v1'))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, 'host-keytab'))).toEqual(expectedDigests(FILES))
    const seen = await exposure(seeder)
    for (const pattern of SECRET_PATTERNS) expect(seen).not.toMatch(pattern)
    // The keytab's tickets stayed in memory, not in the ticket cache KRB5CCNAME names.
    await expect(stat(join(work, 'no-tickets'))).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('a ticket cache from kinit (password login) works with no flag but the CA; the password shows nowhere', async () => {
    const ccache = `FILE:${join(work, 'bob.ccache')}`
    const kinit = execFile('kinit', [kdc.passwordPrincipal], { env: { ...process.env, KRB5CCNAME: ccache } })
    kinit.stdin!.end(`${kdc.password}\n`)
    await new Promise<void>((resolve, reject) => kinit.once('exit', code => code === 0 ? resolve() : reject(new Error(`kinit exited ${code}`))))
    const seeder = track(await startHdfsSeeder(hdfs, { root: '/secure', cacheDir: join(work, 'seeder-ccache'), env: { ...baseEnv, KRB5CCNAME: ccache } }))
    await waitForVersion(seeder.admin, 'sec-llm@v1', x => x.state === 'ready')
    const host = track(startFetch(seeder, join(work, 'host-ccache'), [], 'sec-llm@v1'))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, 'host-ccache'))).toEqual(expectedDigests(FILES))
    const seen = await exposure(seeder)
    expect(seen).not.toContain(kdc.password)
    for (const pattern of SECRET_PATTERNS) expect(seen).not.toMatch(pattern)
  })

  it('a seeder given only a delegation token (--hdfs-token-file) pulls too, and the token shows nowhere', async () => {
    const token = await delegationToken(hdfs.namenodes[0]!, await readFile(ca.caFile), kdc)
    expect(token.length).toBeGreaterThan(20)
    const tokenFile = join(work, 'hdfs.token')
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 })
    const seeder = track(await startHdfsSeeder(hdfs, {
      root: '/secure',
      cacheDir: join(work, 'seeder-token'),
      env: { ...baseEnv, MODELSWARM_HDFS_TOKEN_FILE: tokenFile },
      extra: ['--log-level', 'debug']
    }))
    await waitForVersion(seeder.admin, 'sec-llm@v1', x => x.state === 'ready')
    const host = track(startFetch(seeder, join(work, 'host-token'), [], 'sec-llm@v1'))
    await host.waitFor(m => m.ok === true, 60_000)
    expect(await treeDigests(join(work, 'host-token'))).toEqual(expectedDigests(FILES))
    const seen = await exposure(seeder)
    expect(seen).not.toContain(token)
    for (const pattern of SECRET_PATTERNS) expect(seen).not.toMatch(pattern)
  })

  it('without credentials the seeder exits with MS_HDFS_AUTH, naming the Kerberos flags', async () => {
    const p = track(run(['seed', '--hdfs', hdfs.namenodes[0]!, '--hdfs-root', '/secure', '--cache-dir', join(work, 'seeder-none'),
      '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--json'], { env: { ...baseEnv, KRB5CCNAME: `FILE:${join(work, 'never-written')}` } }))
    expect(await exitOf(p, 60_000)).toBe(ERROR_CODES.MS_HDFS_AUTH.exit)
    const result = await p.waitFor(m => m.ok === false, 1000)
    expect(result.code).toBe('MS_HDFS_AUTH')
    expect(result.message).toContain('--hdfs-principal')
    expect(result.message).toContain('--hdfs-keytab')
  })

  it('a CA bundle that did not sign the certificate ends the seeder with MS_HDFS_TLS, naming --hdfs-ca-file', async () => {
    const p = track(run(['seed', '--hdfs', hdfs.namenodes[0]!, '--hdfs-root', '/secure', '--cache-dir', join(work, 'seeder-wrong-ca'),
      '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--json'],
    { env: { ...baseEnv, MODELSWARM_HDFS_CA_FILE: ca.otherCaFile, MODELSWARM_HDFS_PRINCIPAL: kdc.principal, MODELSWARM_HDFS_KEYTAB: kdc.keytab } }))
    expect(await exitOf(p, 60_000)).toBe(ERROR_CODES.MS_HDFS_TLS.exit)
    const result = await p.waitFor(m => m.ok === false, 1000)
    expect(result.code).toBe('MS_HDFS_TLS')
    expect(result.message).toContain('--hdfs-ca-file')
  })
})
