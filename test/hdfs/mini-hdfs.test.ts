/**
 * The test HDFS itself: both topologies answer WebHDFS, failover is a real HA transition, and the Java
 * and TypeScript content generators agree. Uses plain fetch, independent of src/seeder's client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startMiniHdfs, type MiniHdfs } from './mini-hdfs.ts'
import { contentBytes } from './mini-hdfs-content.ts'

const MiB = 1024 * 1024

async function webhdfs (nn: string, path: string, op: string): Promise<{ status: number, body: Record<string, any> }> {
  const res = await fetch(`${nn}/webhdfs/v1${path}?op=${op}&user.name=root`)
  return { status: res.status, body: await res.json() as Record<string, any> }
}

async function download (nn: string, path: string): Promise<Uint8Array> {
  // fetch follows the NameNode's 307 to the DataNode by itself.
  const res = await fetch(`${nn}/webhdfs/v1${path}?op=OPEN&user.name=root`)
  expect(res.status).toBe(200)
  return new Uint8Array(await res.arrayBuffer())
}

describe('MiniHdfs, one NameNode', () => {
  let hdfs: MiniHdfs
  beforeAll(async () => { hdfs = await startMiniHdfs() })
  afterAll(async () => { await hdfs?.stop() })

  it('reports one WebHDFS address that answers GETFILESTATUS', async () => {
    expect(hdfs.namenodes).toHaveLength(1)
    expect(hdfs.namenodes[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const { status, body } = await webhdfs(hdfs.namenodes[0]!, '/', 'GETFILESTATUS')
    expect(status).toBe(200)
    expect(body.FileStatus.type).toBe('DIRECTORY')
  })

  it('writes content that the TypeScript generator reproduces byte for byte', async () => {
    for (const [path, size, seed] of [['/gen/a', 3 * MiB + 3, 0xDEADBEEF], ['/gen/b', 1, 0], ['/gen/c', 4099, 7]] as const) {
      await hdfs.writeFile(path, size, seed, MiB)
      expect(Buffer.from(await download(hdfs.namenodes[0]!, path)).equals(contentBytes(seed, 0, size))).toBe(true)
    }
  })

  it('generates any range of the stream directly', () => {
    const whole = contentBytes(42, 0, 1000)
    for (const [offset, length] of [[0, 1], [1, 7], [3, 500], [997, 3], [13, 0]] as const) {
      expect(contentBytes(42, offset, length)).toEqual(whole.subarray(offset, offset + length))
    }
    expect(contentBytes(43, 0, 64)).not.toEqual(whole.subarray(0, 64))
  })

  it('makes directories and markers, changes modes, deletes', async () => {
    const nn = hdfs.namenodes[0]!
    await hdfs.command('mkdir /m/v1')
    await hdfs.command('touch /m/v1/_SUCCESS')
    expect((await webhdfs(nn, '/m/v1/_SUCCESS', 'GETFILESTATUS')).body.FileStatus.length).toBe(0)
    await hdfs.command('chmod /m/v1 700')
    expect((await webhdfs(nn, '/m/v1', 'GETFILESTATUS')).body.FileStatus.permission).toBe('700')
    await hdfs.command('delete /m')
    expect((await webhdfs(nn, '/m', 'GETFILESTATUS')).status).toBe(404)
    await expect(hdfs.command('no-such-command')).rejects.toThrow(/unknown command/)
  })
})

describe('MiniHdfs startup failures', () => {
  it('gives up after the start timeout with the JVM\'s stderr in the error, and leaves no JVM behind', async () => {
    const err = await startMiniHdfs({ startTimeoutMs: 1500 }).catch((e: unknown) => e as Error)
    expect(err).toBeInstanceOf(Error)
    expect((err as Error).message).toMatch(/start: no answer within 1500 ms; JVM stderr tail:/)
  })
})

describe('MiniHdfs, HA pair', () => {
  let hdfs: MiniHdfs
  beforeAll(async () => { hdfs = await startMiniHdfs({ ha: true }) })
  afterAll(async () => { await hdfs?.stop() })

  it('starts with NN0 active and NN1 answering StandbyException', async () => {
    expect(hdfs.namenodes).toHaveLength(2)
    expect(hdfs.active).toBe(0)
    expect((await webhdfs(hdfs.namenodes[0]!, '/', 'GETFILESTATUS')).status).toBe(200)
    const standby = await webhdfs(hdfs.namenodes[1]!, '/', 'GETFILESTATUS')
    expect(standby.body.RemoteException.exception).toBe('StandbyException')
  })

  it('fails over for real: NN1 becomes active and serves what NN0 wrote', async () => {
    await hdfs.writeFile('/ha/f', 2 * MiB, 5, MiB)
    await hdfs.failover()
    expect(hdfs.active).toBe(1)
    expect((await webhdfs(hdfs.namenodes[0]!, '/ha/f', 'GETFILESTATUS')).body.RemoteException.exception).toBe('StandbyException')
    expect((await webhdfs(hdfs.namenodes[1]!, '/ha/f', 'GETFILESTATUS')).body.FileStatus.length).toBe(2 * MiB)
    expect(Buffer.from(await download(hdfs.namenodes[1]!, '/ha/f')).equals(contentBytes(5, 0, 2 * MiB))).toBe(true)
  })

  it('shuts a NameNode down (connection refused) and restarts it as standby', async () => {
    await hdfs.command('shutdown-nn 0')
    await expect(fetch(`${hdfs.namenodes[0]}/webhdfs/v1/?op=GETFILESTATUS`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } })
    await hdfs.command('restart-nn 0')
    expect((await webhdfs(hdfs.namenodes[0]!, '/', 'GETFILESTATUS')).body.RemoteException.exception).toBe('StandbyException')
    expect((await hdfs.command('status')).up).toEqual([true, true])
  })
})
