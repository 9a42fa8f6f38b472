/**
 * The gateway's HTTP layer over a catalog that records what it is asked and answers as told: which lookups a
 * GetObject makes, when, and the S3 error each outcome gives. (The real catalog, swarm and S3 clients:
 * s3-gateway.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { NotFoundError, StoreLockedError, TimeoutError } from '../../src/errors.ts'
import { startGateway, type GatewayServer } from '../../src/gateway/gateway-server.ts'
import type { VersionCatalog } from '../../src/gateway/version-catalog.ts'
import { silentLogger } from '../../src/log.ts'

const never = new Promise<never>(() => {})

/**
 * A catalog holding no version of any model. `latest` answers v1 for model `m` and NotFound for others,
 * unless `latest` is given; `open` answers with `open`.
 */
function recordingCatalog (answers: { open: () => Promise<never>, latest?: () => Promise<string> }): { catalog: VersionCatalog, calls: string[] } {
  const calls: string[] = []
  const catalog = {
    heldVersions: async () => { calls.push('heldVersions'); return [] },
    latest: async (name: string) => {
      calls.push('latest')
      if (answers.latest !== undefined) return await answers.latest()
      if (name !== 'm') throw new NotFoundError(`no model ${name}`)
      return 'v1'
    },
    open: async (name: string, version: string) => {
      calls.push(`open ${name}@${version}`)
      return await answers.open()
    },
    peek: async () => { calls.push('peek'); return undefined }
  }
  return { catalog: catalog as unknown as VersionCatalog, calls }
}

let server: GatewayServer | undefined
afterEach(async () => { await server?.close() })

async function request (catalog: VersionCatalog, path: string, method = 'GET'): Promise<{ status: number, code: string | undefined }> {
  await server?.close()
  server = await startGateway('127.0.0.1:0', { catalog, keys: new Map(), anonymous: true, log: silentLogger })
  const res = await fetch(`${server.url}${path}`, { method })
  const body = await res.text()
  return { status: res.status, code: /<Code>([^<]*)<\/Code>/.exec(body)?.[1] }
}

const locked = async (): Promise<never> => { throw new StoreLockedError('m@v1 is being written into the host cache by another process') }
const notFound = async (): Promise<never> => { throw new NotFoundError('not found on any seeder') }

describe('gateway GetObject lookups', () => {
  it('opens a version the host lacks at once, without waiting for the seeders to answer whether the model exists', async () => {
    // The seeders never answer for latest: the request is answered from the open alone.
    const { catalog, calls } = recordingCatalog({ open: locked, latest: async () => await never })
    expect(await request(catalog, '/m/v1/a.bin')).toEqual({ status: 503, code: 'SlowDown' })
    expect(calls).toContain('open m@v1')
  })

  it('answers 503 once the bucket check gives up on unreachable seeders, while the open still waits', async () => {
    const { catalog } = recordingCatalog({ open: async () => await never, latest: async () => { throw new TimeoutError('no seeder answered') } })
    expect(await request(catalog, '/m/v1/a.bin')).toEqual({ status: 503, code: 'ServiceUnavailable' })
  })

  it('tells a missing model (NoSuchBucket) from a missing version of a known one (NoSuchKey)', async () => {
    expect(await request(recordingCatalog({ open: notFound }).catalog, '/m/v9/a.bin')).toEqual({ status: 404, code: 'NoSuchKey' })
    // The bucket check fails while the open still runs: answered at once.
    expect(await request(recordingCatalog({ open: async () => await never }).catalog, '/other/v1/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    expect(await request(recordingCatalog({ open: notFound }).catalog, '/other/v1/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
  })

  it('answers latest/ of an unknown model NoSuchBucket from its own lookup, and a malformed key after the bucket check', async () => {
    const latest = recordingCatalog({ open: notFound })
    expect(await request(latest.catalog, '/other/latest/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    expect(latest.calls).toEqual(['open other@latest'])
    const malformed = recordingCatalog({ open: async () => { throw new Error('not reached') } })
    expect(await request(malformed.catalog, '/other/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    expect(await request(malformed.catalog, '/m/a.bin')).toEqual({ status: 404, code: 'NoSuchKey' })
    expect(malformed.calls).toEqual(['heldVersions', 'latest', 'heldVersions', 'latest'])
  })

  it('answers HeadObject of a version another process is writing from its stored header, 503 SlowDown without one', async () => {
    const { catalog, calls } = recordingCatalog({ open: locked })
    expect(await request(catalog, '/m/v1/a.bin', 'HEAD')).toEqual({ status: 503, code: undefined })
    expect(calls).toContain('peek')
  })
})
