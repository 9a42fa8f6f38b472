/**
 * The WebHDFS client's TLS and SPNEGO handling against a local HTTPS stand-in for a secured NameNode and
 * DataNode (certificate from a CA made here; SPNEGO tokens from a stand-in provider, since a real one needs
 * a KDC: test/seeder/hdfs-secure.test.ts runs the real thing). Checks the 401 challenge, the cookie
 * reuse, that user.name is dropped, the DataNode redirect read over TLS by the fast reader, and the typed
 * errors for missing or refused credentials and an untrusted certificate.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:https'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebHdfsClient } from '../../../src/origins/hdfs/webhdfs-client.ts'
import { HdfsAuthError, HdfsTlsError } from '../../../src/origins/hdfs/webhdfs-errors.ts'
import { createTestCa, serverTlsOptions, type TestCa } from '../../hdfs/test-ca.ts'
import { tempDir } from '../../support/temp.ts'

const BODY = randomBytes(3 * 1024 * 1024 + 17)
const GOOD_TOKEN = 'good-spnego-token'
const COOKIE = 'hadoop.auth="u=alice&p=alice@EXAMPLE.COM&t=kerberos&e=9999999999999&s=sig"'

interface Seen { path: string, negotiate: string | undefined, cookie: string | undefined, user: string | null, delegation: string | null }

describe('WebHdfsClient over HTTPS with SPNEGO (local stand-in NameNode)', () => {
  let ca: TestCa
  let caPem: Buffer
  let server: Server
  let base: string
  const seen: Seen[] = []

  beforeAll(async () => {
    const dir = await tempDir('ms-webhdfs-tls-')
    ca = await createTestCa(dir)
    caPem = await readFile(ca.caFile)
    server = createServer(await serverTlsOptions(ca), (req, res) => {
      const url = new URL(req.url!, 'https://localhost')
      const auth = req.headers.authorization
      seen.push({ path: url.pathname, negotiate: auth?.replace(/^Negotiate /, ''), cookie: req.headers.cookie, user: url.searchParams.get('user.name'), delegation: url.searchParams.get('delegation') })
      if (url.pathname.startsWith('/datanode/')) {
        // The DataNode trusts the NameNode's delegation token only.
        if (url.searchParams.get('delegation') !== 'dn-token') return void res.writeHead(403, { 'content-type': 'text/html' }).end(`<html><body>Problem accessing ${req.url}</body></html>`)
        const offset = Number(url.searchParams.get('offset') ?? 0)
        const length = Number(url.searchParams.get('length') ?? BODY.length - offset)
        return void res.writeHead(200, { 'content-length': length }).end(BODY.subarray(offset, offset + length))
      }
      const authed = req.headers.cookie === COOKIE || auth === `Negotiate ${GOOD_TOKEN}`
      if (!authed) {
        return void res.writeHead(401, { 'www-authenticate': 'Negotiate', 'content-type': 'application/json' })
          .end(JSON.stringify({ RemoteException: { exception: 'AuthenticationException', javaClassName: 'x', message: 'Authentication required' } }))
      }
      const headers: Record<string, string> = auth === undefined ? {} : { 'set-cookie': `${COOKIE}; Path=/; Secure; HttpOnly` }
      if (url.searchParams.get('op') === 'OPEN') {
        const port = (server.address() as { port: number }).port
        const dnToken = url.pathname.endsWith('/expired.bin') ? 'expired-secret-token' : 'dn-token'
        return void res.writeHead(307, { ...headers, location: `https://127.0.0.1:${port}/datanode${url.pathname}?delegation=${dnToken}&offset=${url.searchParams.get('offset')}&length=${url.searchParams.get('length')}` }).end()
      }
      res.writeHead(200, { ...headers, 'content-type': 'application/json' })
        .end(JSON.stringify({ FileStatus: { pathSuffix: '', type: 'FILE', length: BODY.length, owner: 'alice', group: 'g', permission: '644', modificationTime: 1, fileId: 7, accessTime: 1, blockSize: 1, replication: 1 } }))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `https://localhost:${(server.address() as { port: number }).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })

  it('answers the 401 challenge once, then rides the cookie; drops user.name; reads the DataNode over TLS', async () => {
    seen.length = 0
    const hosts: string[] = []
    const client = new WebHdfsClient({ namenodes: [base], ca: caPem, user: 'alice', spnego: { token: async host => { hosts.push(host); return GOOD_TOKEN } } })
    try {
      for (let i = 0; i < 3; i++) expect((await client.getFileStatus('/m/v1/a.bin')).length).toBe(BODY.length)
      const parts: Uint8Array[] = []
      for await (const b of client.open('/m/v1/a.bin', { offset: 100, length: BODY.length - 200 })) parts.push(b)
      expect(Buffer.concat(parts).equals(BODY.subarray(100, BODY.length - 100))).toBe(true)
    } finally {
      client.close()
    }
    expect(hosts).toEqual(['localhost'])
    const nn = seen.filter(s => !s.path.startsWith('/datanode/'))
    // One unauthenticated try, one with the token, then the cookie only.
    expect(nn.map(s => s.negotiate)).toEqual([undefined, GOOD_TOKEN, undefined, undefined, undefined])
    expect(nn.slice(2).every(s => s.cookie === COOKIE)).toBe(true)
    expect(nn[0]!.user).toBe('alice')
    expect(nn.slice(1).every(s => s.user === null)).toBe(true)
    const dn = seen.filter(s => s.path.startsWith('/datanode/'))
    expect(dn).toHaveLength(1)
    expect(dn[0]!.negotiate).toBeUndefined()
    expect(dn[0]!.delegation).toBe('dn-token')
  })

  it('a DataNode error page that echoes the URI: the delegation token is redacted from the error', async () => {
    const client = new WebHdfsClient({ namenodes: [base], ca: caPem, spnego: { token: async () => GOOD_TOKEN } })
    const err = await client.read('/m/v1/expired.bin', { offset: 0, length: 10 }, { region: () => Buffer.alloc(10), filled: () => {} }).catch((e: unknown) => e)
    client.close()
    expect((err as Error).message).toMatch(/HTTP 403: .*delegation=<redacted>/)
    expect((err as Error).message).not.toContain('expired-secret-token')
  })

  it('without a SPNEGO provider: HdfsAuthError naming the Kerberos flags', async () => {
    const client = new WebHdfsClient({ namenodes: [base], ca: caPem })
    const err = await client.getFileStatus('/m/v1/a.bin').catch((e: unknown) => e)
    client.close()
    expect(err).toBeInstanceOf(HdfsAuthError)
    expect((err as HdfsAuthError).code).toBe('MS_HDFS_AUTH')
    expect((err as Error).message).toMatch(/requires Kerberos.*--hdfs-principal.*--hdfs-keytab/)
  })

  it('a token the NameNode refuses: HdfsAuthError, and the token is not in the message', async () => {
    const client = new WebHdfsClient({ namenodes: [base], ca: caPem, spnego: { token: async () => 'stolen-or-stale-token' } })
    const err = await client.getFileStatus('/m/v1/a.bin').catch((e: unknown) => e)
    client.close()
    expect(err).toBeInstanceOf(HdfsAuthError)
    expect((err as Error).message).toMatch(/refused the Kerberos credentials/)
    expect((err as Error).message).not.toContain('stolen-or-stale-token')
  })

  it('a CA bundle that did not sign the certificate, or none: HdfsTlsError naming --hdfs-ca-file', async () => {
    for (const bundle of [await readFile(ca.otherCaFile), undefined]) {
      const client = new WebHdfsClient({ namenodes: [base], ca: bundle, spnego: { token: async () => GOOD_TOKEN } })
      const err = await client.getFileStatus('/m/v1/a.bin').catch((e: unknown) => e)
      client.close()
      expect(err).toBeInstanceOf(HdfsTlsError)
      expect((err as HdfsTlsError).code).toBe('MS_HDFS_TLS')
      expect((err as Error).message).toContain('--hdfs-ca-file')
    }
  })
})
