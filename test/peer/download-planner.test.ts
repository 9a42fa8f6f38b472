/** The download planner's budgets around a reader, and what a refusal's named holder leaving means (pure, clock passed in). */
import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { DownloadPlanner } from '../../src/peer/download-planner.ts'
import { createRng } from '../../src/util/random.ts'

const MiB = 1024 * 1024
const N = 40

function planner (): DownloadPlanner {
  const known = new Bitfield(N)
  for (let i = 0; i < N; i++) known.set(i)
  const p = new DownloadPlanner({
    chunkSize: MiB,
    lengths: new Array<number>(N).fill(MiB),
    have: new Bitfield(N),
    known,
    rng: createRng(1),
    options: { maxRequestsPerPeer: 4, maxBufferedBytes: 32 * MiB, requestIdleMs: 20_000 }
  })
  const all = new Bitfield(N)
  for (let i = 0; i < N; i++) all.set(i)
  for (const peer of ['a', 'b', 'c', 'd']) p.peerJoined(peer, all, false)
  return p
}

describe('DownloadPlanner', () => {
  it('while a reader waits on chunks it lacks, keeps at most two requests for other chunks in flight', () => {
    const p = planner()
    for (const i of [0, 1, 2]) p.setPriority(i, 1)
    const first = p.fill(['a', 'b', 'c', 'd'], 0)
    expect(first.filter(r => r.index <= 2).length).toBe(3)
    expect(first.filter(r => r.index > 2).length).toBe(2)
    // Nothing more for other chunks while the reader still waits.
    expect(p.fill(['a', 'b', 'c', 'd'], 100)).toEqual([])
    for (const r of first.filter(r => r.index <= 2)) {
      p.received(r.peer, r.index, MiB, 200)
      p.written(r.peer, r.index)
    }
    // Served: the budgets are the usual ones again (4 per peer, 32 MiB).
    expect(p.fill(['a', 'b', 'c', 'd'], 300).length).toBe(16 - 2)
  })
  it('a seeder refused a chunk naming a holder that then leaves: the seeder is asked again at once, told the holder failed', () => {
    const known = new Bitfield(1)
    known.set(0)
    const p = new DownloadPlanner({
      chunkSize: MiB,
      lengths: [MiB],
      have: new Bitfield(1),
      known,
      rng: createRng(1),
      options: { maxRequestsPerPeer: 4, maxBufferedBytes: 32 * MiB, requestIdleMs: 20_000 }
    })
    p.peerJoined('seeder', known, true)
    expect(p.fill(['seeder'], 0)).toEqual([{ peer: 'seeder', index: 0 }])
    expect(p.answered('seeder', 0, { status: 'refused', holders: ['h'] }, 10)).toEqual(['h'])
    // The holder joins as a neighbour, is asked, and leaves (it exited) before answering.
    p.peerJoined('h', known, false)
    expect(p.fill(['seeder', 'h'], 20)).toEqual([{ peer: 'h', index: 0 }])
    expect(p.peerLeft('h')).toEqual([0])
    p.released('h', 0)
    // Without the holder leaving, the refusal keeps the seeder blocked for the chunk for its retryAfterMs (10 s).
    expect(p.fill(['seeder'], 30)).toEqual([{ peer: 'seeder', index: 0 }])
    expect(p.failedHoldersFor(0)).toEqual(['h'])
  })
})
