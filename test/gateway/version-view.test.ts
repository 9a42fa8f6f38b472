import { describe, expect, it } from 'vitest'
import { createHeader } from '../../src/chunker/manifest.ts'
import { READ_PRIORITY, VersionView } from '../../src/gateway/version-view.ts'
import type { VersionSwarm } from '../../src/peer/version-swarm.ts'
import { fetchingView, SwarmDouble } from '../support/swarm-double.ts'

const header = createHeader({ name: 'm', version: 'v1', chunkSize: 1024, files: [{ path: 'a.bin', size: 4096, mode: 0o644 }] })

const fetching = (): ReturnType<typeof fetchingView> => fetchingView(header)

describe('VersionView', () => {
  it('gives the chunks readers wait for priority until the last of them releases them, and never held chunks', () => {
    const { view, swarm } = fetching()
    swarm.verify(0)
    const one = view.prioritize([0, 1, 2])
    const two = view.prioritize([2, 3])
    expect([...swarm.priorities]).toEqual([[1, READ_PRIORITY], [2, READ_PRIORITY], [3, READ_PRIORITY]])
    one()
    one()
    expect([...swarm.priorities]).toEqual([[1, 0], [2, READ_PRIORITY], [3, READ_PRIORITY]])
    two()
    expect([...swarm.priorities]).toEqual([[1, 0], [2, 0], [3, 0]])
  })

  it('hands priorities asked before the swarm existed to it when it attaches', () => {
    const view = new VersionView({ header, dir: '/cache/m/v1', lastModified: new Date(0), complete: false })
    view.prioritize([3])
    const swarm = new SwarmDouble(header)
    view.attach(swarm as unknown as VersionSwarm)
    expect(swarm.priorities.get(3)).toBe(READ_PRIORITY)
  })

  it('wakes a reader once its chunk is verified, not before, and fails readers when the fetch fails', async () => {
    const { view, swarm } = fetching()
    let woke = false
    const waiting = view.waitFor(2, new AbortController().signal).then(() => { woke = true })
    swarm.verify(1)
    await new Promise(resolve => setImmediate(resolve))
    expect(woke).toBe(false)
    swarm.verify(2)
    await waiting
    expect(woke).toBe(true)
    const failing = view.waitFor(3, new AbortController().signal)
    view.fail(new Error('seeders gone'))
    await expect(failing).rejects.toThrow('seeders gone')
    await expect(view.waitFor(3, new AbortController().signal)).rejects.toThrow('seeders gone')
  })

  it('gives one ETag per file, in multipart form, the same whether the version is complete or arriving', () => {
    const done = new VersionView({ header, dir: '/x', lastModified: new Date(0), complete: true })
    const { view } = fetching()
    expect(view.etag(0)).toMatch(/^"[0-9a-f]{32}-4"$/)
    expect(done.etag(0)).toBe(view.etag(0))
  })
})
