// The seeder's persistent key: created once (0600) and reused; a full disk while creating it leaves no
// cut-short key file behind (which would fail every later start), so the next start after freeing space works.
import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateKey } from '../../src/seeder/identity.ts'
import { canMount, mountTmpfs } from '../support/tmpfs.ts'

const cleanups: Array<() => Promise<unknown>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

describe('loadOrCreateKey', () => {
  it('creates a 0600 key once and returns the same key after', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ms-identity-'))
    cleanups.push(() => rm(root, { recursive: true, force: true }))
    const path = join(root, 'cache', 'identity.key')
    const first = await loadOrCreateKey(path)
    expect(first.created).toBe(true)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const second = await loadOrCreateKey(path)
    expect(second.created).toBe(false)
    expect(second.key.equals(first.key)).toBe(true)
    expect(await readdir(join(root, 'cache'))).toEqual(['identity.key'])
  })

  it.skipIf(!canMount)('a full disk while creating leaves no key file; after freeing space the key is created', async () => {
    const fs = await mountTmpfs(1024 * 1024)
    cleanups.push(fs.destroy)
    const path = join(fs.dir, 'identity.key')
    await fs.fill(0)
    await expect(loadOrCreateKey(path)).rejects.toMatchObject({ code: 'ENOSPC' })
    expect((await readdir(fs.dir)).sort()).toEqual(['filler'])
    await fs.drain()
    expect((await loadOrCreateKey(path)).created).toBe(true)
    expect((await loadOrCreateKey(path)).created).toBe(false)
  })
})
