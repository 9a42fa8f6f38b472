/** Signed publications (signed.ts) and the per-version metadata built from them (publications.ts). */
import { beforeAll, describe, expect, it } from 'vitest'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createHeader, createManifest, headerId, manifestId, type Manifest, type ManifestHeader } from '../../src/chunker/manifest.ts'
import { sign, SIGNED_KIND, TrustList, type Signed } from '../../src/peer/signed.ts'
import { UntrustedSignerError } from '../../src/errors.ts'
import { signComplete, signHashes, signHeader, signLatest, verifyLatest, VersionMeta } from '../../src/peer/publications.ts'
import { IntegrityError, InvalidInputError, ModelswarmError } from '../../src/errors.ts'
import { errorOf } from '../support/errors.ts'

let seeder: PrivateKey
let stranger: PrivateKey
let trust: TrustList

/** 3 + 1 + 2 chunks of 1 KiB (the last of each file short). */
const header: ManifestHeader = createHeader({
  name: 'qa-llm',
  version: 'v1',
  chunkSize: 1024,
  files: [
    { path: 'weights/b.bin', size: 1500, mode: 0o644 },
    { path: 'config.json', size: 1000, mode: 0o644 },
    { path: 'weights/a.bin', size: 2100, mode: 0o600 }
  ]
})
const COUNT = 6
const hashOf = (i: number, salt = ''): Uint8Array => createHash('sha256').update(`chunk ${i}${salt}`).digest()
const manifest: Manifest = createManifest(header, Array.from({ length: COUNT }, (_, i) => hashOf(i)))
const HID = headerId(header)
const entries = (indexes: number[], salt = ''): Array<[number, Uint8Array]> => indexes.map(i => [i, hashOf(i, salt)])

beforeAll(async () => {
  seeder = await generateKeyPair('Ed25519')
  stranger = await generateKeyPair('Ed25519')
  trust = new TrustList([peerIdFromPrivateKey(seeder).toString()])
})

describe('sign and TrustList.verify', () => {
  it('verifies what a trusted key signed and returns kind, signer and payload', async () => {
    const payload = Buffer.from('some payload')
    const s = await sign('hashes', payload, seeder)
    const v = await trust.verify(s.bytes)
    expect(v.kind).toBe('hashes')
    expect(v.signer).toBe(peerIdFromPrivateKey(seeder).toString())
    expect(Buffer.from(v.payload).equals(payload)).toBe(true)
    expect(await trust.verify(s.bytes, 'hashes')).toMatchObject({ kind: 'hashes' })
  })

  it('verifies a message inside a larger buffer (relayed bytes are often subarrays)', async () => {
    const s = await sign('latest', Buffer.from('{"x":1}'), seeder)
    const big = Buffer.concat([Buffer.alloc(7, 9), s.bytes, Buffer.alloc(5, 9)])
    const v = await trust.verify(big.subarray(7, 7 + s.bytes.length))
    expect(Buffer.from(v.payload).toString()).toBe('{"x":1}')
  })

  it('a signature by a key outside the trust list is an UntrustedSignerError', async () => {
    const s = await sign('header', Buffer.from('x'), stranger)
    const err = await errorOf(trust.verify(s.bytes))
    expect(err).toBeInstanceOf(UntrustedSignerError)
    expect((err as UntrustedSignerError).code).toBe('MS_UNTRUSTED')
    // Trusting the stranger too makes it verify.
    const both = new TrustList([peerIdFromPrivateKey(seeder).toString(), peerIdFromPrivateKey(stranger).toString()])
    expect((await both.verify(s.bytes)).signer).toBe(peerIdFromPrivateKey(stranger).toString())
  })

  it('any flipped byte is rejected; in the signature or payload it is an IntegrityError', async () => {
    const s = await sign('complete', Buffer.from('payload bytes that matter'), seeder)
    const bytes = Buffer.from(s.bytes)
    const signerLen = bytes.readUInt16BE(1)
    const sigStart = 3 + signerLen + 2
    for (let i = 0; i < bytes.length; i++) {
      // Not the u16 signature length (bytes sigStart-2, sigStart-1): see the report on wrong signature lengths.
      if (i === sigStart - 2 || i === sigStart - 1) continue
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = Buffer.from(bytes)
        bad[i]! ^= mask
        const err = await errorOf(trust.verify(bad))
        // Only typed errors, whatever byte is hit: a different signer id is untrusted, the rest is integrity.
        expect(err instanceof IntegrityError || err instanceof UntrustedSignerError, `byte ${i} mask ${mask}: ${String(err)}`).toBe(true)
        if (i >= sigStart) expect(err, `byte ${i} mask ${mask}`).toBeInstanceOf(IntegrityError)
      }
    }
  })

  it('every truncation is an IntegrityError', async () => {
    const s = await sign('header', Buffer.from('a payload'), seeder)
    for (let n = 0; n < s.bytes.length; n++) {
      expect(await errorOf(trust.verify(s.bytes.subarray(0, n))), `length ${n}`).toBeInstanceOf(IntegrityError)
    }
  })

  it('a signature over one kind does not verify as another kind', async () => {
    const s = await sign('hashes', Buffer.from('same payload'), seeder)
    for (const kind of Object.values(SIGNED_KIND)) {
      if (kind === SIGNED_KIND.hashes) continue
      const relabelled = Buffer.from(s.bytes)
      relabelled[0] = kind
      expect(await errorOf(trust.verify(relabelled))).toBeInstanceOf(IntegrityError)
    }
    // And asking for a kind rejects a genuine message of another kind.
    expect(await errorOf(trust.verify(s.bytes, 'complete'))).toBeInstanceOf(IntegrityError)
    const unknown = Buffer.from(s.bytes)
    unknown[0] = 99
    expect(await errorOf(trust.verify(unknown))).toBeInstanceOf(IntegrityError)
  })

  it('TrustList rejects strings that are not peer ids, and ids without an embedded public key', () => {
    for (const bad of ['', 'not-a-peer-id', '12D3KooW', peerIdFromPrivateKey(seeder).toString().slice(0, -2)]) {
      expect(() => new TrustList([bad]), JSON.stringify(bad)).toThrow(InvalidInputError)
    }
    // A CIDv0-style sha256 multihash: a valid (RSA-style) peer id that does not carry its key.
    expect(() => new TrustList(['QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'])).toThrow(InvalidInputError)
    const list = new TrustList([peerIdFromPrivateKey(seeder).toString(), peerIdFromPrivateKey(seeder).toString()])
    expect(list.size).toBe(1)
    expect(list.has(peerIdFromPrivateKey(seeder).toString())).toBe(true)
    expect(list.has(peerIdFromPrivateKey(stranger).toString())).toBe(false)
  })
})

describe('latest pointer', () => {
  const pointer = { name: 'qa-llm', version: 'v1', headerId: HID, publishedAt: '2026-01-01T00:00:00.000Z' }

  it('signLatest and verifyLatest round-trip', async () => {
    const s = await signLatest(pointer, seeder)
    expect(await verifyLatest(s.bytes, trust)).toMatchObject(pointer)
  })

  it('verifyLatest rejects other kinds, untrusted signers and malformed pointers', async () => {
    const header = await signHeader(createHeader({ name: 'x', version: 'v', chunkSize: 1024, files: [] }), seeder)
    expect(await errorOf(verifyLatest(header.bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(verifyLatest((await signLatest(pointer, stranger)).bytes, trust))).toBeInstanceOf(UntrustedSignerError)
    expect(await errorOf(verifyLatest((await sign('latest', Buffer.from('not json'), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(verifyLatest((await sign('latest', Buffer.from('{"name":"a","version":2,"headerId":"x"}'), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
  })
})

describe('VersionMeta', () => {
  let signedHeader: Signed
  beforeAll(async () => { signedHeader = await signHeader(header, seeder) })

  const fresh = (): Promise<VersionMeta> => VersionMeta.fromSignedHeader(signedHeader.bytes, trust)

  it('starts from a verified header and knows no hash yet', async () => {
    const meta = await fresh()
    expect(meta.headerId).toBe(HID)
    expect(meta.header).toEqual(header)
    expect(meta.known.length).toBe(COUNT)
    expect(meta.known.count).toBe(0)
    expect(meta.complete).toBe(false)
    expect(meta.hashOf(0)).toBeUndefined()
    expect(() => meta.manifest()).toThrow(IntegrityError)
    expect(meta.signedItems()).toEqual([signedHeader.bytes])
  })

  it('refuses a header that is untrusted or not a header', async () => {
    expect(await errorOf(VersionMeta.fromSignedHeader((await signHeader(header, stranger)).bytes, trust))).toBeInstanceOf(UntrustedSignerError)
    expect(await errorOf(VersionMeta.fromSignedHeader((await signHashes(HID, entries([0]), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
  })

  it('addSigned returns only the indexes whose hash is new', async () => {
    const meta = await fresh()
    expect(await meta.addSigned((await signHashes(HID, entries([0, 2]), seeder)).bytes, trust)).toEqual([0, 2])
    expect(await meta.addSigned((await signHashes(HID, entries([0, 2]), seeder)).bytes, trust)).toEqual([])
    expect(await meta.addSigned((await signHashes(HID, entries([2, 3, 0, 5]), seeder)).bytes, trust)).toEqual([3, 5])
    expect(await meta.addSigned((await signHashes(HID, [], seeder)).bytes, trust)).toEqual([])
    expect(meta.known.count).toBe(4)
    for (const i of [0, 2, 3, 5]) expect(Buffer.from(meta.hashOf(i)!).equals(hashOf(i))).toBe(true)
    expect(meta.hashOf(1)).toBeUndefined()
    // Only batches that taught something are kept for relaying.
    expect(meta.signedItems().length).toBe(3)
  })

  it('rejects a batch for another header id, an out-of-range index, a conflicting hash and a malformed batch', async () => {
    const meta = await fresh()
    await meta.addSigned((await signHashes(HID, entries([1]), seeder)).bytes, trust)
    const other = headerId(createHeader({ ...header, version: 'v2' }))
    expect(await errorOf(meta.addSigned((await signHashes(other, entries([0]), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(meta.addSigned((await signHashes(HID, entries([COUNT]), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(meta.addSigned((await signHashes(HID, entries([1], 'different'), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(meta.addSigned((await sign('hashes', Buffer.concat([Buffer.from(HID, 'hex'), Buffer.alloc(5)]), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(meta.addSigned((await sign('hashes', Buffer.alloc(10), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    // The first hash stands.
    expect(Buffer.from(meta.hashOf(1)!).equals(hashOf(1))).toBe(true)
    expect(meta.known.count).toBe(1)
  })

  it('rejects untrusted batches, latest pointers, and headers of other versions; accepts its own header again', async () => {
    const meta = await fresh()
    expect(await errorOf(meta.addSigned((await signHashes(HID, entries([0]), stranger)).bytes, trust))).toBeInstanceOf(UntrustedSignerError)
    expect(await errorOf(meta.addSigned((await signLatest({ name: 'qa-llm', version: 'v1', headerId: HID, publishedAt: '' }, seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await errorOf(meta.addSigned((await signHeader(createHeader({ ...header, version: 'v2' }), seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(await meta.addSigned(signedHeader.bytes, trust)).toEqual([])
    expect(meta.known.count).toBe(0)
  })

  it('accepts a completion only once every hash is known and its manifest id matches them', async () => {
    const meta = await fresh()
    const complete = await signComplete(manifest, seeder)
    // Too early: cannot be checked, so it is neither accepted nor kept.
    expect(await meta.addSigned(complete.bytes, trust)).toEqual([])
    expect(meta.complete).toBe(false)
    await meta.addSigned((await signHashes(HID, entries([0, 1, 2, 3, 4, 5]), seeder)).bytes, trust)
    expect(meta.known.complete).toBe(true)
    // A completion for the same header but other chunk hashes does not match what was signed.
    const forged = createManifest(header, Array.from({ length: COUNT }, (_, i) => hashOf(i, 'forged')))
    expect(await errorOf(meta.addSigned((await signComplete(forged, seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(meta.complete).toBe(false)
    // A completion of another version.
    const otherHeader = createHeader({ ...header, version: 'v2' })
    const other = createManifest(otherHeader, manifest.chunks)
    expect(await errorOf(meta.addSigned((await signComplete(other, seeder)).bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(meta.complete).toBe(false)
    expect(await meta.addSigned(complete.bytes, trust)).toEqual([])
    expect(meta.complete).toBe(true)
    expect(manifestId(meta.manifest())).toBe(manifestId(manifest))
    // A second copy changes nothing.
    const items = meta.signedItems().length
    expect(await meta.addSigned(complete.bytes, trust)).toEqual([])
    expect(meta.signedItems().length).toBe(items)
  })

  it('signedItems relays header first, then batches, then completion; a second peer rebuilds the same state', async () => {
    const meta = await fresh()
    for (const batch of [[4], [0, 1], [5, 2], [3]]) await meta.addSigned((await signHashes(HID, entries(batch), seeder)).bytes, trust)
    await meta.addSigned((await signComplete(manifest, seeder)).bytes, trust)
    const items = meta.signedItems()
    expect(items.length).toBe(6)
    expect((await trust.verify(items[0]!)).kind).toBe('header')
    expect((await trust.verify(items[items.length - 1]!)).kind).toBe('complete')
    const copy = await VersionMeta.fromSignedHeader(items[0]!, trust)
    const learned: number[] = []
    for (const item of items.slice(1)) learned.push(...await copy.addSigned(item, trust))
    expect(learned.sort()).toEqual([0, 1, 2, 3, 4, 5])
    expect(copy.complete).toBe(true)
    expect(manifestId(copy.manifest())).toBe(manifestId(meta.manifest()))
    expect(copy.signedItems().map(b => Buffer.from(b).toString('hex'))).toEqual(items.map(b => Buffer.from(b).toString('hex')))
  })

  it('the publisher records its own signatures without verifying, and what it relays verifies for others', async () => {
    const own = VersionMeta.fromOwnHeader(header, signedHeader)
    expect(own.addOwn(await signHashes(HID, entries([0, 1, 2]), seeder))).toEqual([0, 1, 2])
    expect(own.addOwn(await signHashes(HID, entries([3, 4, 5]), seeder))).toEqual([3, 4, 5])
    own.addOwn(await signComplete(manifest, seeder))
    expect(own.complete).toBe(true)
    const peer = await VersionMeta.fromSignedHeader(own.signedItems()[0]!, trust)
    for (const item of own.signedItems().slice(1)) await peer.addSigned(item, trust)
    expect(peer.complete).toBe(true)
  })

  it('verifies each distinct item once: copies relayed by other neighbours are not checked again, altered copies are', async () => {
    let verified = 0
    const counting = Object.assign(Object.create(trust) as TrustList, {
      verify: async (bytes: Uint8Array, kind?: Parameters<TrustList['verify']>[1]) => { verified++; return await trust.verify(bytes, kind) }
    })
    const meta = await fresh()
    const batch = await signHashes(HID, entries([0, 1]), seeder)
    expect(await meta.addSigned(batch.bytes, counting)).toEqual([0, 1])
    expect(await meta.addSigned(Buffer.from(batch.bytes), counting)).toEqual([])
    expect(await meta.addSigned(signedHeader.bytes, counting)).toEqual([])
    expect(await meta.addSigned(signedHeader.bytes, counting)).toEqual([])
    expect(verified).toBe(2)
    const altered = Buffer.from(batch.bytes)
    altered.writeUInt8(altered[altered.length - 1]! ^ 1, altered.length - 1)
    expect(await errorOf(meta.addSigned(altered, counting))).toBeInstanceOf(IntegrityError)
    expect(verified).toBe(3)
  })

  it('the publisher compacts a complete version to header, one batch of every hash and completion', async () => {
    const own = VersionMeta.fromOwnHeader(header, signedHeader)
    for (const batch of [[0, 1], [2], [3, 4], [5]]) own.addOwn(await signHashes(HID, entries(batch), seeder))
    const all = await signHashes(HID, entries([0, 1, 2, 3, 4, 5]), seeder)
    expect(() => own.compactOwn([all])).toThrow(IntegrityError)
    own.addOwn(await signComplete(manifest, seeder))
    expect(own.signedItems().length).toBe(6)
    const missingOne = await signHashes(HID, entries([0, 1, 2, 3, 4]), seeder)
    const otherHashes = await signHashes(HID, entries([0, 1, 2, 3, 4, 5], 'other'), seeder)
    expect(() => own.compactOwn([missingOne])).toThrow(IntegrityError)
    expect(() => own.compactOwn([otherHashes])).toThrow(IntegrityError)
    own.compactOwn([all])
    const items = own.signedItems()
    expect(items.length).toBe(3)
    const peer = await VersionMeta.fromSignedHeader(items[0]!, trust)
    for (const item of items.slice(1)) await peer.addSigned(item, trust)
    expect(peer.complete).toBe(true)
    expect(manifestId(peer.manifest())).toBe(manifestId(manifest))
  })

  it('all signature failures are typed errors', async () => {
    // A guard for callers that map errors to exit codes: nothing above may surface as a plain Error.
    const meta = await fresh()
    for (const junk of [new Uint8Array(0), Uint8Array.of(2), Buffer.alloc(200, 0xff), Buffer.alloc(200, 0)]) {
      expect(await errorOf(meta.addSigned(junk, trust))).toBeInstanceOf(ModelswarmError)
    }
  })
})

describe('malformed input from relaying peers', () => {
  it('a signature-length field that does not match the key type is an integrity error, not a crash', async () => {
    const s = await sign('complete', Buffer.from('payload bytes that matter'), seeder)
    const b = Buffer.from(s.bytes)
    b[3 + b.readUInt16BE(1) + 1]! ^= 1
    expect(await errorOf(trust.verify(b))).toBeInstanceOf(IntegrityError)
  })

  it('a batch that conflicts part-way changes nothing', async () => {
    const meta = await VersionMeta.fromSignedHeader((await signHeader(header, seeder)).bytes, trust)
    await meta.addSigned((await signHashes(HID, entries([1]), seeder)).bytes, trust)
    const bad = await signHashes(HID, [[3, hashOf(3)], [1, hashOf(1, 'other')]], seeder)
    expect(await errorOf(meta.addSigned(bad.bytes, trust))).toBeInstanceOf(IntegrityError)
    expect(meta.known.has(3)).toBe(false)
    expect(meta.known.count).toBe(1)
  })

  it('a latest pointer whose payload is JSON null is an integrity error', async () => {
    const s = await sign('latest', Buffer.from('null'), seeder)
    expect(await errorOf(verifyLatest(s.bytes, trust))).toBeInstanceOf(IntegrityError)
  })
})
