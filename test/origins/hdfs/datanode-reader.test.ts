import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { TimeoutError } from '../../../src/errors.ts'
import { ChunkedDecoder, readBody } from '../../../src/origins/hdfs/datanode-reader.ts'
import type { ReadSink } from '../../../src/origins/origin.ts'
import { HdfsAccessControlError, HdfsConnectionError, HdfsHttpError } from '../../../src/origins/hdfs/webhdfs-errors.ts'
import { ShortReadError } from '../../../src/errors.ts'
import { collect } from '../../support/read-sink.ts'
import { tempDir } from '../../support/temp.ts'
import { createTestCa, serverTlsOptions } from '../../hdfs/test-ca.ts'

/** A TCP server answering each connection with `respond`, so tests control every byte and pause. */
let servers: Server[] = []
afterEach(async () => {
  for (const s of servers) s.close()
  servers = []
})

type Respond = (socket: Socket, request: string) => Promise<void> | void

/** An https:// DataNode's key store, from a CA made for these tests; `caPem` is what a client trusts. */
let tls: { pfx: Buffer, passphrase: string, caPem: Buffer }
beforeAll(async () => {
  const ca = await createTestCa(await tempDir('datanode-tls-'))
  tls = { ...await serverTlsOptions(ca), caPem: await readFile(ca.caFile) }
})

async function serve (respond: Respond, scheme: 'http' | 'https' = 'http'): Promise<URL> {
  const onSocket = (socket: Socket): void => {
    let request = ''
    socket.on('error', () => {})
    socket.on('data', (d: Buffer) => {
      request += d.toString('latin1')
      if (request.includes('\r\n\r\n')) void Promise.resolve(respond(socket, request)).catch(() => socket.destroy())
    })
  }
  const server: Server = scheme === 'http' ? createServer(onSocket) : createTlsServer({ pfx: tls.pfx, passphrase: tls.passphrase }, onSocket)
  servers.push(server)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return new URL(`${scheme}://127.0.0.1:${port}/webhdfs/v1/f?op=OPEN&offset=0`)
}

/** Writes `parts` one by one with a pause between, so the reader sees them in separate reads. */
async function dribble (socket: Socket, parts: Array<string | Buffer>): Promise<void> {
  for (const p of parts) {
    socket.write(p)
    await sleep(5)
  }
}

const request = (url: URL, length?: number, extra: Partial<Parameters<typeof readBody>[0]> = {}): Parameters<typeof readBody>[0] =>
  ({ url, length, where: 'OPEN /f', headerTimeoutMs: 2000, idleTimeoutMs: 2000, ...extra })

function chunked (body: Buffer, pieces: number[]): Buffer {
  const out: Buffer[] = []
  let at = 0
  for (const n of pieces) {
    out.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'))
    at += n
  }
  out.push(Buffer.from('0\r\nX-Trailer: 1\r\n\r\n'))
  return Buffer.concat(out)
}

describe('readBody', () => {
  it('reads a Content-Length body into the sink\'s regions, with the head and body split across reads', async () => {
    const body = randomBytes(300_000)
    let seenRequest = ''
    const url = await serve(async (socket, req) => {
      seenRequest = req
      await dribble(socket, ['HTTP/1.1 200 OK\r\nContent-Ty', `pe: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n`, body.subarray(0, 10), body.subarray(10)])
      socket.end()
    })
    const got = collect(body.length, 4099)
    let counted = 0
    await readBody(request(url, body.length, { onBytes: n => { counted += n } }), got.sink)
    expect(got.bytes().equals(body)).toBe(true)
    expect(counted).toBe(body.length)
    expect(seenRequest).toMatch(/^GET \/webhdfs\/v1\/f\?op=OPEN&offset=0 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/)
  })

  it('delivers body bytes that arrive with the head, then reads on into the sink', async () => {
    const body = randomBytes(50_000)
    const url = await serve(socket => { socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`), body])) })
    const got = collect(body.length, 777)
    await readBody(request(url, body.length), got.sink)
    expect(got.bytes().equals(body)).toBe(true)
  })

  it('decodes a chunked body, framing split anywhere', async () => {
    const body = randomBytes(70_000)
    const wire = chunked(body, [1, 30_000, 39_999])
    const url = await serve(async socket => {
      const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')]
      for (let at = 0; at < wire.length; at += 1) parts.push(wire.subarray(at, at + 1))
      socket.write(parts[0]!)
      // Byte by byte through the framing at both ends, in bulk through the middle.
      await dribble(socket, [wire.subarray(0, 9), wire.subarray(9, 60_000), ...parts.slice(60_001, 60_200), wire.subarray(60_199)])
      socket.end()
    })
    const got = collect(body.length, 10_000)
    await readBody(request(url, body.length), got.sink)
    expect(got.bytes().equals(body)).toBe(true)
  })

  it('reads a close-delimited body to the end', async () => {
    const body = randomBytes(20_000)
    const url = await serve(socket => { socket.end(Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\n\r\n'), body])) })
    const got = collect(body.length)
    await readBody(request(url, body.length), got.sink)
    expect(got.bytes().equals(body)).toBe(true)
  })

  // A TLSSocket keeps handing on what it decrypted after its `onread` callback returned false; a net.Socket
  // does not. Over https, reads that came while the sink held one overwrote the region it held.
  // A TLSSocket keeps handing on what it decrypted after its `onread` callback returned false; a net.Socket
  // does not. Over https, reads that came while the sink held one overwrote the region it held, and a read
  // Node placed in the spare buffer before the sink let go was overwritten while its copy-in was held.
  describe.each(['http', 'https'] as const)('over %s, with the sink holding the read', scheme => {
    const body = randomBytes(8 * 1024 * 1024)
    const send = (framed: Buffer): Respond => socket => { socket.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\n${framed === body ? `Content-Length: ${body.length}` : 'Transfer-Encoding: chunked'}\r\n\r\n`), framed])) }

    // A sink with one buffer that it "flushes" asynchronously when full, like the puller's chunk buffer: one
    // of 64 KiB, and one smaller than a TLS record, so a read is copied in over several regions and held
    // part-way.
    it.each([65_536, 7000])('fills no region it holds and loses no byte that came meanwhile (a %d-byte buffer)', async size => {
      for (const framed of [body, chunked(body, [100_000, 3_000_000, body.length - 3_100_000])]) {
        const url = await serve(send(framed), scheme)
        const buf = Buffer.alloc(size)
        const out: Buffer[] = []
        let got = 0
        let busy = false
        const sink: ReadSink = {
          region: () => buf.subarray(got),
          filled: n => {
            expect(busy).toBe(false)
            got += n
            if (got < buf.length) return
            busy = true
            out.push(Buffer.from(buf))
            got = 0
            return sleep(1).then(() => { busy = false })
          }
        }
        await readBody(request(url, body.length, { ca: tls.caPem }), sink)
        out.push(Buffer.from(buf.subarray(0, got)))
        expect(Buffer.concat(out).equals(body)).toBe(true)
      }
    })

    it('ends with the error of a body that turns out malformed while the sink held the read', async () => {
      const tooLong = chunked(Buffer.concat([body, Buffer.alloc(10)]), [body.length + 10])
      const url = await serve(send(tooLong), scheme)
      const sink: ReadSink = { region: () => Buffer.alloc(65_536), filled: () => sleep(1) }
      await expect(readBody(request(url, body.length, { ca: tls.caPem }), sink)).rejects.toThrow(/sent more than requested/)
    })
  })

  it('turns an HTTP error status into the typed WebHDFS error of its body', async () => {
    const json = JSON.stringify({ RemoteException: { exception: 'AccessControlException', javaClassName: 'org.apache.hadoop.security.AccessControlException', message: 'Permission denied: user=alice' } })
    const url = await serve(socket => { socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`) })
    const err = await readBody(request(url, 10), collect(10).sink).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(HdfsAccessControlError)
    expect((err as Error).message).toContain('Permission denied')
  })

  it('is a ShortReadError when the body ends before the length asked for, and an error when it runs past it', async () => {
    const short = await serve(socket => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello') })
    await expect(readBody(request(short, 10), collect(10).sink)).rejects.toBeInstanceOf(ShortReadError)
    const cut = await serve(socket => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello') })
    await expect(readBody(request(cut, 10), collect(10).sink)).rejects.toBeInstanceOf(ShortReadError)
    const long = await serve(socket => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world') })
    await expect(readBody(request(long, 10), collect(10).sink)).rejects.toThrow(/more than requested/)
    const garbage = await serve(socket => { socket.end('SSH-2.0-OpenSSH\r\n\r\n') })
    await expect(readBody(request(garbage, 10), collect(10).sink)).rejects.toThrow(/not an HTTP response/)
  })

  it('times out a missing head and a stalled body, but not a sink that holds the read', async () => {
    const silent = await serve(() => {})
    await expect(readBody(request(silent, 10, { headerTimeoutMs: 100 }), collect(10).sink)).rejects.toBeInstanceOf(TimeoutError)
    const stalled = await serve(socket => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello') })
    await expect(readBody(request(stalled, 10, { idleTimeoutMs: 150 }), collect(10).sink)).rejects.toThrow(/no data for 150 ms/)
    const slowSink = await serve(socket => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello world'.slice(0, 50)) })
    const got = collect(10, 2)
    await readBody(request(slowSink, 10, { idleTimeoutMs: 100 }), { region: got.sink.region, filled: async n => { await got.sink.filled(n); await sleep(60) } })
    expect(got.bytes().toString()).toBe('hello worl')
  })

  it('fails with the abort reason, and with a connection error when nobody listens', async () => {
    const stalled = await serve(socket => { socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhe') })
    const controller = new AbortController()
    setTimeout(() => controller.abort(new Error('stop now')), 50)
    await expect(readBody(request(stalled, 10, { signal: controller.signal }), collect(10).sink)).rejects.toThrow('stop now')
    const closed = await serve(() => {})
    servers.pop()!.close()
    await sleep(10)
    await expect(readBody(request(closed, 10), collect(10).sink)).rejects.toBeInstanceOf(HdfsConnectionError)
  })

  it('ends the read with the error a sink throws', async () => {
    const url = await serve(socket => { socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello world') })
    await expect(readBody(request(url, 10), { region: () => Buffer.alloc(4), filled: () => { throw new Error('disk on fire') } })).rejects.toThrow('disk on fire')
    await expect(readBody(request(url, 10), { region: () => { throw new Error('no room') }, filled: () => {} })).rejects.toThrow('no room')
  })
})

describe('ChunkedDecoder', () => {
  it('rejects malformed framing', () => {
    const bad = (s: string): unknown => { try { new ChunkedDecoder('x').decode(Buffer.from(s), 0, s.length); return undefined } catch (e) { return e } }
    expect(bad('zz\r\n')).toBeInstanceOf(HdfsHttpError)
    expect(bad('3\r\nabcX')).toBeInstanceOf(HdfsHttpError)
    expect(bad('3\rX')).toBeInstanceOf(HdfsHttpError)
    expect(bad('1234567890abc\r\n')).toBeInstanceOf(HdfsHttpError)
    expect(bad('3;ext=1\r\nabc\r\n0\r\n\r\n')).toBeUndefined()
  })
})
