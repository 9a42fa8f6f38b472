/** How far ahead of a reader the gateway asks for chunks, whatever the chunk size. */
import { describe, expect, it } from 'vitest'
import { createHeader } from '../../src/chunker/manifest.ts'
import { waitForStart } from '../../src/gateway/object-reader.ts'
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
