/**
 * The gateway's HTTP layer over a catalog that records what it is asked: which lookups a GetObject makes, in
 * which order, and the S3 error each outcome gives. (The real catalog, swarm and S3 clients: s3-gateway.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { NotFoundError, StoreLockedError } from '../../src/errors.ts'
import { startGateway, type GatewayServer } from '../../src/gateway/gateway-server.ts'
import type { VersionCatalog } from '../../src/gateway/version-catalog.ts'
import { silentLogger } from '../../src/log.ts'

/** A catalog knowing model `m` (latest v1) and no version of it on the host; `open` answers with `openError`. */
function recordingCatalog (openError: Error): { catalog: VersionCatalog, calls: string[] } {
  const calls: string[] = []
  const catalog = {
    heldVersions: async () => { calls.push('heldVersions'); return [] },
    latest: async (name: string) => {
      calls.push('latest')
      if (name !== 'm') throw new NotFoundError(`no model ${name}`)
      return 'v1'
    },
    open: async (name: string, version: string) => {
      calls.push(`open ${name}@${version}`)
      throw openError
    }
  }
  return { catalog: catalog as unknown as VersionCatalog, calls }
}

let server: GatewayServer | undefined
afterEach(async () => { await server?.close() })

async function get (catalog: VersionCatalog, path: string): Promise<{ status: number, code: string | undefined }> {
  server = await startGateway('127.0.0.1:0', { catalog, keys: new Map(), anonymous: true, log: silentLogger })
  const res = await fetch(`${server.url}${path}`)
  const body = await res.text()
  return { status: res.status, code: /<Code>([^<]*)<\/Code>/.exec(body)?.[1] }
}

describe('gateway GetObject lookups', () => {
  it('starts on a version the host lacks at once, without asking the seeders for the model\'s latest version first', async () => {
    const { catalog, calls } = recordingCatalog(new StoreLockedError('m@v1 is being written into the host cache by another process'))
    expect(await get(catalog, '/m/v1/a.bin')).toEqual({ status: 503, code: 'SlowDown' })
    expect(calls).toEqual(['open m@v1'])
  })

  it('tells a missing model (NoSuchBucket) from a missing version of a known one (NoSuchKey) once the version is not found', async () => {
    const missing = recordingCatalog(new NotFoundError('no such version'))
    expect(await get(missing.catalog, '/m/v9/a.bin')).toEqual({ status: 404, code: 'NoSuchKey' })
    expect(missing.calls).toEqual(['open m@v9', 'heldVersions', 'latest'])
    await server?.close()
    const unknown = recordingCatalog(new NotFoundError('no such model'))
    expect(await get(unknown.catalog, '/other/v1/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    expect(unknown.calls).toEqual(['open other@v1', 'heldVersions', 'latest'])
  })

  it('answers latest/ of an unknown model NoSuchBucket from its own lookup, and a malformed key after the bucket check', async () => {
    const latest = recordingCatalog(new NotFoundError('no such model'))
    expect(await get(latest.catalog, '/other/latest/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    expect(latest.calls).toEqual(['open other@latest'])
    await server?.close()
    const malformed = recordingCatalog(new Error('not reached'))
    expect(await get(malformed.catalog, '/other/a.bin')).toEqual({ status: 404, code: 'NoSuchBucket' })
    await server?.close()
    expect(await get(malformed.catalog, '/m/a.bin')).toEqual({ status: 404, code: 'NoSuchKey' })
    expect(malformed.calls).toEqual(['heldVersions', 'latest', 'heldVersions', 'latest'])
  })
})
