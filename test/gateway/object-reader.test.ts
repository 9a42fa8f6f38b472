/** How far ahead of a reader the gateway asks for chunks, whatever the chunk size; a response's copy loop when the client goes away. */
import type { FileHandle } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { setImmediate as tick } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { createHeader } from '../../src/chunker/manifest.ts'
import { copyRange, waitForStart } from '../../src/gateway/object-reader.ts'
import { fetchingView } from '../support/swarm-double.ts'

const MiB = 1024 * 1024

describe('read-ahead', () => {
  it.each([
    [128 * 1024, 64], // 8 MiB of small chunks (counted in chunks alone it was 8: 1 MiB)
    [1 * MiB, 8],
    [4 * MiB, 8] // at least 8 chunks, so a few requests are in flight
  ])('with %d-byte chunks, a reader waiting on the first byte gives %d chunks priority until it starts', async (chunkSize, expected) => {
    const header = createHeader({ name: 'm', version: 'v1', chunkSize, files: [{ path: 'a.bin', size: 64 * MiB, mode: 0o644 }] })
    const { view, swarm } = fetchingView(header)
    const started = waitForStart(view, 0, { start: 0, end: 64 * MiB - 1 }, new AbortController().signal)
    expect([...swarm.priorities.keys()]).toEqual(Array.from({ length: expected }, (_, i) => i))
    swarm.verify(0)
    await started
    expect([...swarm.priorities.values()].every(p => p === 0)).toBe(true)
  })
})

describe('copyRange', () => {
  it('a client gone while a disk read is awaited ends the copy with the abort, leaving no unhandled rejection', async () => {
    // The first read returns at once; the second waits until released, as a slow disk would.
    let release!: () => void
    let reads = 0
    const fh = {
      read: async (buf: Uint8Array, offset: number, length: number) => {
        if (++reads === 2) await new Promise<void>(resolve => { release = resolve })
        return { bytesRead: length, buffer: buf }
      }
    } as unknown as FileHandle
    // A client that takes nothing: its writes stay queued until the response is destroyed.
    const out = new Writable({ highWaterMark: 1, write: () => {} })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const ctl = new AbortController()
      const copy = copyRange(fh, 0, 4 * MiB, out, ctl.signal)
      const settled = copy.then(() => 'resolved', (err: Error) => err.message)
      while (reads < 2) await tick()
      ctl.abort(new Error('client gone'))
      // Turns of the event loop while the read is still awaited: where Node reports unhandled rejections.
      for (let k = 0; k < 5; k++) await tick()
      release()
      expect(await settled).toBe('client gone')
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})
