/**
 * The seeder's WebHDFS client against a real HDFS (MiniDFSCluster, test/hdfs): metadata, ranged reads
 * checked byte for byte, bounded memory under a slow consumer, typed errors, and NameNode failover.
 */
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebHdfsClient, type WebHdfsClientOptions } from '../../../src/origins/hdfs/webhdfs-client.ts'
import {
  HdfsAccessControlError, HdfsFileNotFoundError, HdfsTlsError, NameNodesUnavailableError
} from '../../../src/origins/hdfs/webhdfs-errors.ts'
import { startMiniHdfs, type MiniHdfs } from '../../hdfs/mini-hdfs.ts'
import { createTestCa, type TestCa } from '../../hdfs/test-ca.ts'
import { tempDir } from '../../support/temp.ts'
import { readFile } from 'node:fs/promises'
import { ShortReadError } from '../../../src/errors.ts'
import { contentBytes } from '../../hdfs/mini-hdfs-content.ts'

const MiB = 1024 * 1024
const WEIGHTS = { path: '/models/v1/weights.bin', size: 5 * MiB + 123, seed: 11 }

async function readAll (chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return Buffer.concat(parts)
}

/** A loopback URL on which nothing listens: connections are refused. */
async function deadNameNode (): Promise<string> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise(resolve => server.close(resolve))
  return `http://127.0.0.1:${port}`
}

describe('WebHdfsClient, one NameNode', () => {
  let hdfs: MiniHdfs
  const clients: WebHdfsClient[] = []
  const client = (options: Partial<WebHdfsClientOptions> = {}): WebHdfsClient => {
    const c = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root', ...options })
    clients.push(c)
    return c
  }

  beforeAll(async () => {
    hdfs = await startMiniHdfs()
    await hdfs.writeFile(WEIGHTS.path, WEIGHTS.size, WEIGHTS.seed, MiB)
    await hdfs.writeFile('/models/v1/config.json', 1000, 12, MiB)
    await hdfs.writeFile('/models/v2/config.json', 1000, 12, MiB)
    await hdfs.writeFile('/models/v2/other.json', 1000, 13, MiB)
    await hdfs.command('touch /models/v1/_SUCCESS')
    await hdfs.writeFile('/secret/f', 1024, 1)
    await hdfs.command('chmod /secret/f 000')
  })
  afterAll(async () => {
    for (const c of clients) c.close()
    await hdfs?.stop()
  })

  it('reads file status, directory listings and checksums', async () => {
    const c = client()
    const status = await c.getFileStatus(WEIGHTS.path)
    expect(status).toMatchObject({ type: 'FILE', length: WEIGHTS.size, blockSize: MiB, replication: 1 })
    const listing = await c.listStatus('/models/v1')
    expect(listing.map(s => [s.pathSuffix, s.length])).toEqual([['_SUCCESS', 0], ['config.json', 1000], ['weights.bin', WEIGHTS.size]])

    const sum = await c.getFileChecksum('/models/v1/config.json')
    expect(sum.algorithm).toMatch(/^MD5-of-\d+MD5-of-\d+CRC32C$/)
    expect(sum.bytes).toMatch(/^[0-9a-f]+$/)
    // Same bytes and block size: same checksum, which is how the seeder skips unchanged files across versions.
    expect(await c.getFileChecksum('/models/v2/config.json')).toEqual(sum)
    expect((await c.getFileChecksum('/models/v2/other.json')).bytes).not.toBe(sum.bytes)
  })

  it('ranged opens across block boundaries return exactly the written bytes', async () => {
    const c = client()
    const ranges: Array<[number, number | undefined]> = [
      [0, WEIGHTS.size], [0, 1], [MiB - 10, 20], [MiB - 1, 2 * MiB + 2], [3 * MiB + 5, 2 * MiB + 118], [4 * MiB - 3, undefined]
    ]
    for (const [offset, length] of ranges) {
      const got = await readAll(c.open(WEIGHTS.path, { offset, length }))
      expect(got.equals(contentBytes(WEIGHTS.seed, offset, length ?? WEIGHTS.size - offset)), `range ${offset}+${length}`).toBe(true)
    }
  })

  it('throws ShortReadError when a range ends past EOF instead of ending quietly', async () => {
    const read = readAll(client().open(WEIGHTS.path, { offset: WEIGHTS.size - 10, length: 100 }))
    await expect(read).rejects.toBeInstanceOf(ShortReadError)
    await expect(read).rejects.toMatchObject({ code: 'MS_SHORT_READ', expected: 100, received: 10 })
  })

  it('maps FileNotFound and AccessControl RemoteExceptions to typed errors', async () => {
    const c = client()
    await expect(c.getFileStatus('/models/nope')).rejects.toMatchObject({ name: 'HdfsFileNotFoundError', code: 'MS_HDFS_FILE_NOT_FOUND' })
    await expect(readAll(c.open('/models/nope'))).rejects.toBeInstanceOf(HdfsFileNotFoundError)

    const alice = client({ user: 'alice' })
    await expect(readAll(alice.open('/secret/f'))).rejects.toMatchObject({ name: 'HdfsAccessControlError', code: 'MS_HDFS_ACCESS_DENIED' })
    await hdfs.command('chmod /secret 000')
    await expect(alice.listStatus('/secret')).rejects.toBeInstanceOf(HdfsAccessControlError)
    expect(await client().listStatus('/secret')).toHaveLength(1) // the superuser still can
  })

  it('authenticates with a delegation token instead of user.name', async () => {
    const res = await fetch(`${hdfs.namenodes[0]}/webhdfs/v1/?op=GETDELEGATIONTOKEN&user.name=root`)
    const token = ((await res.json()) as { Token: { urlString: string } }).Token.urlString
    const c = client({ user: undefined, delegationToken: token })
    expect((await c.getFileStatus(WEIGHTS.path)).length).toBe(WEIGHTS.size)
    expect((await readAll(c.open(WEIGHTS.path, { offset: 7, length: 9 }))).equals(contentBytes(WEIGHTS.seed, 7, 9))).toBe(true)
  })

  it('stops reading when the signal is aborted', async () => {
    const controller = new AbortController()
    const reason = new Error('enough')
    let received = 0
    const read = (async () => {
      for await (const chunk of client().open(WEIGHTS.path, { signal: controller.signal })) {
        received += chunk.length
        controller.abort(reason)
      }
    })()
    await expect(read).rejects.toBe(reason)
    expect(received).toBeLessThan(WEIGHTS.size)
  })

  it('skips a NameNode that refuses connections, and names every NameNode when none answers', async () => {
    const dead = await deadNameNode()
    const c = client({ namenodes: [dead, hdfs.namenodes[0]!] })
    expect((await c.getFileStatus(WEIGHTS.path)).length).toBe(WEIGHTS.size)
    expect(c.activeNameNode).toBe(hdfs.namenodes[0])

    const dead2 = await deadNameNode()
    const none = client({ namenodes: [dead, dead2], maxRounds: 2, retryDelayMs: 10 })
    const err = await none.getFileStatus('/').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NameNodesUnavailableError)
    expect((err as NameNodesUnavailableError).failures).toHaveLength(4)
    expect((err as Error).message).toContain(`${dead} → `)
    expect((err as Error).message).toContain(`${dead2} → `)
    expect((err as Error).message).toContain('ECONNREFUSED')
  })

  it('times out a stalled HDFS: metadata by deadline, an OPEN body by idle time', async () => {
    await hdfs.writeFile('/stall.bin', 64 * MiB, 3)
    const c = client({ idleTimeoutMs: 1000 })
    const stream = c.open('/stall.bin')
    await stream.next()
    process.kill(hdfs.pid, 'SIGSTOP') // NameNode and DataNode freeze, sockets stay open
    try {
      const impatient = client({ requestTimeoutMs: 500, maxRounds: 1 })
      await expect(impatient.getFileStatus('/stall.bin')).rejects.toThrow(/→ no answer within 500 ms/)
      // Bytes already in socket buffers drain first; then no progress for 1 s fails the read.
      await expect(readAll(stream)).rejects.toMatchObject({ name: 'TimeoutError', message: expect.stringMatching(/no data for 1000 ms/) })
    } finally {
      process.kill(hdfs.pid, 'SIGCONT')
    }
    expect((await c.getFileStatus('/stall.bin')).length).toBe(64 * MiB)
  })

  it('keeps memory bounded while a slow consumer reads 512 MiB (backpressure)', async () => {
    const size = 512 * MiB
    const seed = 99
    await hdfs.writeFile('/big.bin', size, seed)
    let counted = 0
    const c = client({ onBytes: n => { counted += n } })
    const before = process.memoryUsage.rss()
    let peak = before
    let received = 0
    let sinceSleep = 0
    for await (const chunk of c.open('/big.bin', { offset: 0, length: size })) {
      expect(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).equals(contentBytes(seed, received, chunk.length))).toBe(true)
      received += chunk.length
      sinceSleep += chunk.length
      // ≈ 100 MiB/s, several times slower than the DataNode sends: without backpressure most of the file would pile up.
      if (sinceSleep >= MiB) {
        sinceSleep = 0
        peak = Math.max(peak, process.memoryUsage.rss())
        await sleep(10)
      }
    }
    expect(received).toBe(size)
    expect(counted).toBe(size)
    expect(c.bytesRead).toBe(size)
    expect(peak - before).toBeLessThan(200 * MiB)
  })
})

describe('WebHdfsClient, HA NameNode pair', () => {
  let hdfs: MiniHdfs
  const FILE = { path: '/ha/model.bin', size: 8 * MiB, seed: 21 }

  beforeAll(async () => {
    hdfs = await startMiniHdfs({ ha: true })
    await hdfs.writeFile(FILE.path, FILE.size, FILE.seed, MiB)
  })
  afterAll(async () => { await hdfs?.stop() })

  it('continues a series of ranged reads across a failover, on the new active NameNode', async () => {
    const events: string[] = []
    const log = { info: (o: object, msg: string) => events.push(`${msg} ${JSON.stringify(o)}`), warn: () => {} }
    const c = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root', log })
    const parts: Buffer[] = []
    for (let i = 0; i < 8; i++) {
      if (i === 3) await hdfs.failover()
      if (i === 5) {
        // A read already redirected to the DataNode is not affected by a failover during its transfer.
        const stream = c.open(FILE.path, { offset: i * MiB, length: MiB })
        const first = await stream.next()
        await hdfs.failover()
        parts.push(Buffer.concat([first.value as Uint8Array, await readAll(stream)]))
        continue
      }
      parts.push(await readAll(c.open(FILE.path, { offset: i * MiB, length: MiB })))
    }
    expect(Buffer.concat(parts).equals(contentBytes(FILE.seed, 0, FILE.size))).toBe(true)
    expect(c.activeNameNode).toBe(hdfs.namenodes[hdfs.active])
    expect(events.filter(e => e.startsWith('webhdfs: switched NameNode'))).toHaveLength(2)
    c.close()
  })

  it('names each NameNode and its answer when only standbys answer', async () => {
    const standby = hdfs.namenodes[1 - hdfs.active]!
    const c = new WebHdfsClient({ namenodes: [standby], user: 'root', maxRounds: 1 })
    await expect(c.getFileStatus(FILE.path)).rejects.toThrow(`${standby} → GETFILESTATUS ${FILE.path} @ ${standby}: StandbyException`)
    c.close()
  })

  it('skips a NameNode that is shut down', async () => {
    const down = hdfs.active
    await hdfs.failover()
    await hdfs.command(`shutdown-nn ${down}`)
    // The dead NameNode first in the list, as after a crash of the formerly active one.
    const c = new WebHdfsClient({ namenodes: [hdfs.namenodes[down]!, hdfs.namenodes[hdfs.active]!], user: 'root' })
    expect((await c.getFileStatus(FILE.path)).length).toBe(FILE.size)
    expect((await readAll(c.open(FILE.path, { offset: MiB - 1, length: 2 }))).equals(contentBytes(FILE.seed, MiB - 1, 2))).toBe(true)
    expect(c.activeNameNode).toBe(hdfs.namenodes[hdfs.active])
    c.close()
  })
})

describe('WebHdfsClient, HTTPS-only cluster (dfs.http.policy=HTTPS_ONLY, a CA made by the test)', () => {
  let hdfs: MiniHdfs
  let ca: TestCa
  beforeAll(async () => {
    ca = await createTestCa(await tempDir('ms-webhdfs-https-'))
    hdfs = await startMiniHdfs({ https: ca })
    await hdfs.writeFile(WEIGHTS.path, WEIGHTS.size, WEIGHTS.seed, MiB)
  })
  afterAll(async () => { await hdfs?.stop() })

  it('reads metadata from the NameNode and bytes from the DataNode it redirects to, both over verified TLS', async () => {
    expect(hdfs.namenodes[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const c = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root', ca: await readFile(ca.caFile) })
    try {
      expect((await c.getFileStatus(WEIGHTS.path)).length).toBe(WEIGHTS.size)
      expect((await c.getFileChecksum(WEIGHTS.path)).algorithm).toMatch(/CRC32C$/)
      const offset = MiB - 5
      const bytes = await readAll(c.open(WEIGHTS.path, { offset, length: 2 * MiB + 9 }))
      expect(bytes.equals(contentBytes(WEIGHTS.seed, offset, 2 * MiB + 9))).toBe(true)
      expect(c.bytesRead).toBe(2 * MiB + 9)
    } finally {
      c.close()
    }
  })

  it('a CA bundle that did not sign the certificate, or the public CAs: HdfsTlsError naming --hdfs-ca-file', async () => {
    for (const bundle of [await readFile(ca.otherCaFile), undefined]) {
      const c = new WebHdfsClient({ namenodes: hdfs.namenodes, user: 'root', ca: bundle, maxRounds: 1 })
      const err = await c.getFileStatus(WEIGHTS.path).catch((e: unknown) => e)
      c.close()
      expect(err).toBeInstanceOf(HdfsTlsError)
      expect((err as Error).message).toContain('--hdfs-ca-file')
    }
  })
})
