/** The seeder's `latest` pointer: it names a header, so a version re-published at the origin moves it too. */
import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createHeader, type ManifestHeader } from '../../src/chunker/manifest.ts'
import { signHeader, verifyLatest, VersionMeta } from '../../src/peer/publications.ts'
import { TrustList } from '../../src/peer/signed.ts'
import { Publisher, type Published } from '../../src/seeder/publisher.ts'

describe('Publisher latest pointer', () => {
  it('names the header held now when a version comes back as another revision, and nothing once none is held', async () => {
    const key = await generateKeyPair('Ed25519')
    const trust = new TrustList([peerIdFromPrivateKey(key).toString()])
    const publisher = new Publisher(key)
    const held = async (revision: string): Promise<Map<string, Published>> => {
      const header: ManifestHeader = createHeader({ name: 'm', version: 'v1', revision, chunkSize: 1024, files: [{ path: 'a.bin', size: 4096, mode: 0o644 }] })
      // updateLatest reads only the versions' headers.
      const v = { meta: VersionMeta.fromOwnHeader(header, await signHeader(header, key)) } as unknown as Published
      return new Map([['m@v1', v]])
    }
    const pointer = async (): Promise<string | undefined> => {
      const r = publisher.resolve({ name: 'm', version: undefined }, versions)
      return r === undefined ? undefined : (await verifyLatest(r.items[0]!, trust)).headerId
    }
    let versions = await held('a1')
    expect(await publisher.updateLatest('m', versions)).toEqual({ version: 'v1', moved: true })
    const first = versions.get('m@v1')!.meta.headerId
    expect(await pointer()).toBe(first)
    expect(await publisher.updateLatest('m', versions)).toEqual({ version: 'v1', moved: false })
    // Re-published: same version, new header. Before, the pointer kept the old header id, and every
    // `fetch m` failed verification (asked for m@latest, got a header for m@v1).
    versions = await held('b2')
    expect(versions.get('m@v1')!.meta.headerId).not.toBe(first)
    expect(await publisher.updateLatest('m', versions)).toEqual({ version: 'v1', moved: true })
    expect(await pointer()).toBe(versions.get('m@v1')!.meta.headerId)
    versions = new Map()
    expect(await publisher.updateLatest('m', versions)).toEqual({ version: undefined, moved: false })
    expect(await pointer()).toBeUndefined()
  })
})
