// Swarm key files in the go-libp2p / IPFS format: what parses, what is refused (with a typed error naming
// the fix), and that keygen's file is what @libp2p/pnet and go-libp2p read.
import { describe, expect, it } from 'vitest'
import { stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKey } from '@libp2p/pnet'
import { SwarmKeyError } from '../../src/errors.ts'
import { createSwarmKeyFile, formatSwarmKey, loadSwarmKey, parseSwarmKey, swarmKeyFingerprint } from '../../src/peer/swarm-key.ts'
import { tempDir } from '../support/temp.ts'

const KEY = Buffer.from('dffb7e3135399a8b1612b2aaca1c36a3a8ac2cd0cca51ceeb2ced87d308cac6d', 'hex')
const HEADER = '/key/swarm/psk/1.0.0/'

const parse = (text: string | Buffer): Uint8Array => parseSwarmKey(typeof text === 'string' ? Buffer.from(text) : text, 'swarm.key')

describe('parseSwarmKey', () => {
  it.each([
    ['base16, as ipfs-swarm-key-gen writes it', `${HEADER}\n/base16/\n${KEY.toString('hex')}\n`],
    ['base16 without the last newline', `${HEADER}\n/base16/\n${KEY.toString('hex')}`],
    ['upper-case hex and CRLF line ends', `${HEADER}\r\n/base16/\r\n${KEY.toString('hex').toUpperCase()}\r\n`],
    ['base64', `${HEADER}\n/base64/\n${KEY.toString('base64')}\n`]
  ])('reads %s', (_name, text) => {
    expect(Buffer.from(parse(text))).toEqual(KEY)
  })

  it('reads /bin/, whose raw key may contain newline bytes', () => {
    const raw = Buffer.alloc(32, 0x0a)
    raw[0] = 1
    expect(Buffer.from(parse(Buffer.concat([Buffer.from(`${HEADER}\n/bin/\n`), raw])))).toEqual(raw)
  })

  it('reads what @libp2p/pnet generateKey writes', () => {
    const bytes = new Uint8Array(95)
    generateKey(bytes)
    expect(parse(Buffer.from(bytes)).length).toBe(32)
  })

  it.each([
    ['an empty file', '', /first line is "", not \/key\/swarm\/psk\/1\.0\.0\//],
    ['another header', `/key/swarm/psk/2.0.0/\n/base16/\n${KEY.toString('hex')}\n`, /first line is "\/key\/swarm\/psk\/2\.0\.0\/"/],
    ['just the hex', `${KEY.toString('hex')}\n`, /first line is/],
    ['an unknown encoding', `${HEADER}\n/base58/\n${KEY.toString('hex')}\n`, /unknown encoding "\/base58\/"/],
    ['no encoding line', `${HEADER}\n`, /unknown encoding ""/],
    ['a short key', `${HEADER}\n/base16/\n${KEY.toString('hex').slice(0, 62)}\n`, /the key is 31 bytes, not 32/],
    ['a long key', `${HEADER}\n/base16/\n${KEY.toString('hex')}00\n`, /the key is 33 bytes, not 32/],
    ['odd hex', `${HEADER}\n/base16/\n${KEY.toString('hex').slice(0, 63)}\n`, /the key is 31 bytes/],
    ['not hex', `${HEADER}\n/base16/\n${'zz'.repeat(32)}\n`, /the key is not hex/],
    ['a second key after the first', `${HEADER}\n/base16/\n${KEY.toString('hex')}\n${KEY.toString('hex')}\n`, /not hex|bytes, not 32/],
    ['not base64', `${HEADER}\n/base64/\n${'!'.repeat(44)}\n`, /the key is not base64/],
    ['bytes after a /bin/ key', Buffer.concat([Buffer.from(`${HEADER}\n/bin/\n`), KEY, Buffer.from('more')]), /bytes follow the 32-byte key/]
  ])('refuses %s with a SwarmKeyError naming the file and the fix', (_name, text, why) => {
    let err: unknown
    try { parse(text) } catch (e) { err = e }
    expect(err).toBeInstanceOf(SwarmKeyError)
    expect((err as SwarmKeyError).code).toBe('MS_SWARM_KEY')
    expect((err as Error).message).toMatch(why)
    expect((err as Error).message).toMatch(/^swarm key swarm\.key: /)
    expect((err as Error).message).toMatch(/modelswarm keygen --swarm-key-file/)
  })
})

describe('swarm key files', () => {
  it('formatSwarmKey is the canonical base16 file, and parses back', () => {
    expect(formatSwarmKey(KEY)).toBe(`${HEADER}\n/base16/\n${KEY.toString('hex')}\n`)
    expect(Buffer.from(parse(formatSwarmKey(KEY)))).toEqual(KEY)
    expect(() => formatSwarmKey(KEY.subarray(1))).toThrow(SwarmKeyError)
  })

  it('fingerprints differ per key and reveal nothing of it', () => {
    const other = Buffer.from(KEY)
    other[0]! ^= 1
    expect(swarmKeyFingerprint(KEY)).toMatch(/^[0-9a-f]{16}$/)
    expect(swarmKeyFingerprint(KEY)).toBe(swarmKeyFingerprint(Buffer.from(KEY)))
    expect(swarmKeyFingerprint(other)).not.toBe(swarmKeyFingerprint(KEY))
    expect(KEY.toString('hex')).not.toContain(swarmKeyFingerprint(KEY))
  })

  it('createSwarmKeyFile writes mode 0600 once and keeps an existing file', async () => {
    const dir = await tempDir('ms-swarm-key-')
    const file = join(dir, 'swarm.key')
    const first = await createSwarmKeyFile(file)
    expect(first.created).toBe(true)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(Buffer.from(await loadSwarmKey(file))).toEqual(Buffer.from(first.key))
    const second = await createSwarmKeyFile(file)
    expect(second.created).toBe(false)
    expect(Buffer.from(second.key)).toEqual(Buffer.from(first.key))
    const bad = join(dir, 'bad.key')
    await writeFile(bad, 'hello\n')
    await expect(createSwarmKeyFile(bad)).rejects.toThrow(SwarmKeyError)
  })

  it('a missing file is a SwarmKeyError naming it', async () => {
    await expect(loadSwarmKey('/nonexistent/swarm.key')).rejects.toThrow(/swarm key \/nonexistent\/swarm\.key: ENOENT/)
    await expect(loadSwarmKey('/nonexistent/swarm.key')).rejects.toBeInstanceOf(SwarmKeyError)
  })
})
