/** Upload admission: slots, the per-requester limit and the wait queue, and the upload cap (`fetch --upload-rate`) on a real store and a fake clock. */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { manifestFromDirectory } from '../../src/chunker/chunk-hasher.ts'
import { UploadAdmission, type UploadAdmissionInit, type UploadGate } from '../../src/peer/upload-admission.ts'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import type { ServeDecision } from '../../src/peer/protocols/chunk/codec.ts'
import { TokenBucket } from '../../src/util/token-bucket.ts'
import { readSourceChunk } from '../chunker/source-chunk.ts'
import { tempDir } from '../support/temp.ts'

describe('UploadAdmission with an upload budget', () => {
  it('serves while the budget has credit, spends it on what it reads, and answers busy once the debt passes 2 s', async () => {
    const root = await tempDir('ms-upload-')
    const src = join(root, 'src')
    await mkdir(src)
    await writeFile(join(src, 'a.bin'), randomBytes(4096 * 4))
    const manifest = await manifestFromDirectory(src, { name: 'm', version: 'v1', chunkSize: 4096 })
    const store = await ChunkStore.open({ dir: join(root, 'out'), header: manifest })
    try {
      for (let i = 0; i < 4; i++) {
        await store.recordHash(i, manifest.chunks[i]!)
        await store.writeChunk(i, await readSourceChunk(src, manifest, i))
      }
      let now = 0
      // 1 KiB/s, one chunk of credit: the first chunk goes at once, the next two put the bucket 8 s in debt.
      const budget = new TokenBucket({ rate: 1024, burst: 4096, now: () => now })
      const admission = new UploadAdmission({ store, maxUploads: 8, isBanned: () => false, now: () => now, stats: { bytesUp: 0, chunksUp: 0 }, budget })
      const first = admission.serve('p', 0)
      expect(first.status).toBe('ok')
      if (first.status !== 'ok') return
      const bytes = await first.read(0, 4096, Buffer.alloc(4096))
      expect(Buffer.from(bytes)).toEqual(await readSourceChunk(src, manifest, 0))
      expect(budget.reserve(0, now)).toBe(0)
      budget.reserve(4096, now)
      budget.reserve(4096, now)
      expect(admission.serve('p', 1).status).toBe('busy')
      // Seven seconds later the debt is under 2 s: served again.
      now += 7000
      expect(admission.serve('p', 1).status).toBe('ok')
    } finally {
      await store.close()
    }
  })
})

/** An admission over `chunks` full chunks, all held, with no bytes behind them (decisions only). */
function admissionOf (chunks: number, opts: Partial<UploadAdmissionInit>): UploadAdmission {
  const have = new Bitfield(chunks)
  for (let i = 0; i < chunks; i++) have.set(i)
  const store = { have, layout: { count: chunks, length: new Array<number>(chunks).fill(1024) }, header: { chunkSize: 1024 }, readRange: () => { throw new Error('no bytes here') } }
  return new UploadAdmission({ store, maxUploads: 2, isBanned: () => false, now: () => 0, stats: { bytesUp: 0, chunksUp: 0 }, ...opts })
}

/** Ends an admitted upload as a transport does once every byte is sent. */
function finish (d: ServeDecision | { status: 'queued' } | undefined): void {
  if (d?.status !== 'ok') throw new Error(`expected ok, got ${d?.status}`)
  d.onSent?.(d.length)
  d.onEnd?.()
}

describe('UploadAdmission slots and queue', () => {
  it('holds other requesters\' requests while the slots are taken, admits them first come first served (nothing known of what they hold), busy beyond the queue', () => {
    const a = admissionOf(8, { maxUploads: 1, queue: 1 })
    const admitted: Array<[string, ServeDecision]> = []
    const x = a.serve('x', 0, { admitted: d => admitted.push(['x', d]) })
    expect(x.status).toBe('ok')
    expect(a.serve('y', 1, { admitted: d => admitted.push(['y', d]) }).status).toBe('queued')
    expect(a.serve('z', 2, { admitted: d => admitted.push(['z', d]) }).status).toBe('busy')
    // Without a callback to hand a later answer to, nothing waits.
    expect(a.serve('w', 3).status).toBe('busy')
    finish(x)
    expect(admitted.map(([p, d]) => [p, d.status])).toEqual([['y', 'ok']])
    expect(a.queued).toBe(0)
    // An abandoned request leaves the queue and is never answered.
    expect(a.serve('z', 2, { admitted: d => admitted.push(['z', d]) }).status).toBe('queued')
    a.unqueue('z', 2)
    finish(admitted[0]![1])
    expect(admitted).toHaveLength(1)
    expect(a.active).toBe(0)
  })

  it('serves one requester one chunk at a time, its next request waiting in the queue, while others get the free slots', () => {
    const a = admissionOf(8, { maxUploads: 3, maxUploadsPerPeer: 1, queue: 1 })
    const order: string[] = []
    const first = a.serve('x', 0, { admitted: () => {} })
    expect(first.status).toBe('ok')
    expect(a.serve('x', 1, { admitted: d => { order.push('x2'); finish(d) } }).status).toBe('queued')
    expect(a.serve('x', 2, { admitted: () => {} }).status).toBe('busy')
    // Another requester is not held behind x's waiting request: a slot is free for it.
    const y = a.serve('y', 3, { admitted: () => {} })
    expect(y.status).toBe('ok')
    finish(first)
    expect(order).toEqual(['x2'])
    finish(y)
    expect(a.active).toBe(0)
  })

  it('frees the requester\'s own limit once the last byte is handed over, but the slot only when the upload ends (its receipt came)', () => {
    const ended: Array<[string, boolean]> = []
    const gate: UploadGate = {
      decide: () => ({ serve: true }),
      served: () => {},
      uploadEnded: (p, _i, complete) => ended.push([p, complete]),
      peerHas: () => {},
      peerBitfield: () => {},
      peerGone: () => {}
    }
    const a = admissionOf(8, { maxUploads: 2, maxUploadsPerPeer: 1, queue: 2, gate })
    const first = a.serve('x', 0, { admitted: () => {} })
    if (first.status !== 'ok') throw new Error(first.status)
    const later: ServeDecision[] = []
    expect(a.serve('x', 1, { admitted: d => later.push(d) }).status).toBe('queued')
    // Every byte handed to the kernel: x's next chunk may start (a slot is free), the first still counts.
    first.onSent?.(first.length)
    expect(later.map(d => d.status)).toEqual(['ok'])
    expect(a.active).toBe(2)
    expect(ended).toEqual([])
    // Both slots are taken until the first upload's receipt: a third requester waits, then gets the slot.
    const third: ServeDecision[] = []
    expect(a.serve('y', 2, { admitted: d => third.push(d) }).status).toBe('queued')
    first.onEnd?.()
    expect(ended).toEqual([['x', true]])
    expect(third.map(d => d.status)).toEqual(['ok'])
    finish(later[0])
    finish(third[0])
    expect(a.active).toBe(0)
  })

  it('answers what waits busy once the upload cap runs out, instead of holding it with nothing left to wake it', () => {
    let now = 0
    const budget = new TokenBucket({ rate: 1024, burst: 1024, now: () => now })
    const a = admissionOf(8, { maxUploads: 1, queue: 1, budget })
    const x = a.serve('x', 0, { admitted: () => {} })
    const later: ServeDecision[] = []
    expect(a.serve('y', 1, { admitted: d => later.push(d) }).status).toBe('queued')
    for (let i = 0; i < 4; i++) budget.reserve(1024, now)
    finish(x)
    expect(later).toEqual([{ status: 'busy' }])
    now += 10_000
    expect(a.serve('y', 1).status).toBe('ok')
  })

  it('urgent requests (a reader waits on them) wait ahead of the others, first come first served, as many as the queue holds; the seeder\'s gate does not refuse them', () => {
    const gate: UploadGate = {
      decide: () => ({ serve: false, holders: ['h'] }), served: () => {}, uploadEnded: () => {}, peerHas: () => {}, peerBitfield: () => {}, peerGone: () => {}
    }
    const a = admissionOf(8, { maxUploads: 1, queue: 2, gate })
    expect(a.serve('x', 0).status).toBe('refused')
    const first = a.serve('x', 0, { urgent: true })
    expect(first.status).toBe('ok')
    const order: string[] = []
    const next = (name: string) => (d: ServeDecision): void => { order.push(`${name}:${d.status}`); if (d.status === 'ok') finish(d) }
    expect(a.serve('y', 1, { admitted: next('y') }).status).toBe('queued')
    expect(a.serve('z', 2, { admitted: next('z'), urgent: true }).status).toBe('queued')
    expect(a.serve('w', 3, { admitted: next('w'), urgent: true }).status).toBe('queued')
    // Two urgent requests wait already: a third is told busy and asks another holder.
    expect(a.serve('v', 4, { admitted: next('v'), urgent: true }).status).toBe('busy')
    finish(first)
    // z and w in their order, served though the gate refuses everything; y, not urgent, is then refused.
    expect(order).toEqual(['z:ok', 'w:ok', 'y:refused'])
  })

  it('lets a requester far behind take the place, in a full queue, of the one furthest ahead, which is answered busy', () => {
    // 80 chunks: the margin is an eighth, 10 chunks.
    const held: Record<string, number> = { x: 0, y: 40, z: 10, q: 31, v: 5 }
    const a = admissionOf(80, { maxUploads: 1, queue: 2, held: p => held[p] ?? 0 })
    const answers: string[] = []
    const next = (name: string) => (d: ServeDecision): void => { answers.push(`${name}:${d.status}`); if (d.status === 'ok') finish(d) }
    const first = a.serve('x', 0, { admitted: next('x') })
    expect(a.serve('y', 1, { admitted: next('y') }).status).toBe('queued')
    expect(a.serve('z', 2, { admitted: next('z') }).status).toBe('queued')
    // q holds 31: y's 40 is not more than 10 above it, so q is answered busy as before.
    expect(a.serve('q', 3, { admitted: next('q') }).status).toBe('busy')
    // v holds 5: y (40, the most) leaves the queue with a busy answer.
    expect(a.serve('v', 4, { admitted: next('v') }).status).toBe('queued')
    expect(answers).toEqual(['y:busy'])
    // Of those waiting now, the one holding fewest goes first.
    finish(first)
    expect(answers).toEqual(['y:busy', 'v:ok', 'z:ok'])
  })

  it('gives a freed slot to the waiting requester holding fewest chunks, first come first served among equals', () => {
    const a = admissionOf(80, { maxUploads: 1, queue: 4 })
    const order: string[] = []
    const next = (name: string) => (d: ServeDecision): void => { order.push(name); if (d.status === 'ok') finish(d) }
    const first = a.serve('x', 0, { admitted: () => {}, held: 0 })
    for (const [p, held] of [['a', 60], ['b', 20], ['c', 50], ['d', 20]] as const) expect(a.serve(p, 1, { admitted: next(p), held }).status).toBe('queued')
    finish(first)
    expect(order).toEqual(['b', 'd', 'c', 'a'])
  })

  it('goes by what a request says its requester holds rather than what its HAVEs told this node, but never below that', () => {
    // A node is not told of chunks it holds (haveFor): to an uploader ahead of it, a host looks as if it held
    // almost nothing. Here the HAVEs say w, u and v hold nothing and z holds 50; the requests say w 60, u 2.
    const heard: Record<string, number> = { z: 50 }
    const a = admissionOf(80, { maxUploads: 1, queue: 1, held: p => heard[p] ?? 0 })
    const answers: string[] = []
    const next = (name: string) => (d: ServeDecision): void => { answers.push(`${name}:${d.status}`); if (d.status === 'ok') finish(d) }
    const first = a.serve('x', 0, { admitted: () => {} })
    expect(a.serve('w', 1, { admitted: next('w'), held: 60 }).status).toBe('queued')
    // u holds 58 fewer than w: it takes w's place (by the HAVEs, 0 against 0, it would have been turned away).
    expect(a.serve('u', 2, { admitted: next('u'), held: 2 }).status).toBe('queued')
    expect(answers).toEqual(['w:busy'])
    // A request that says nothing is weighed by the HAVEs: v (0 heard) takes nobody's place from u (2).
    expect(a.serve('v', 3, { admitted: next('v') }).status).toBe('busy')
    // z says 0, but its HAVEs showed 50: it is weighed as 50 and takes no place either.
    expect(a.serve('z', 4, { admitted: next('z'), held: 0 }).status).toBe('busy')
    finish(first)
    expect(answers).toEqual(['w:busy', 'u:ok'])
  })

  it('admits a request passed over four times before those holding fewer that came after it', () => {
    const a = admissionOf(80, { maxUploads: 1, queue: 2 })
    const order: string[] = []
    let current = a.serve('x', 0, { admitted: () => {}, held: 0 })
    const track = (name: string) => (d: ServeDecision): void => { order.push(name); current = d }
    expect(a.serve('ahead', 1, { admitted: track('ahead'), held: 70 }).status).toBe('queued')
    // Hosts behind keep arriving; each takes the freed slot ahead of the one far ahead, four times.
    for (let i = 0; i < 5; i++) {
      expect(a.serve(`behind${i}`, 2, { admitted: track(`behind${i}`), held: 60 }).status).toBe('queued')
      finish(current)
    }
    expect(order).toEqual(['behind0', 'behind1', 'behind2', 'behind3', 'ahead'])
  })

  it('passes over the requester holding fewest while it is at its own limit, and admits the next', () => {
    const a = admissionOf(80, { maxUploads: 2, maxUploadsPerPeer: 1, queue: 3 })
    const order: string[] = []
    const lo = a.serve('lo', 0, { admitted: () => {}, held: 1 })
    const other = a.serve('o', 1, { admitted: () => {}, held: 50 })
    expect([lo.status, other.status]).toEqual(['ok', 'ok'])
    // lo's second request waits, lowest of all, but lo already has its one upload.
    expect(a.serve('lo', 2, { admitted: d => { order.push('lo'); finish(d) }, held: 1 }).status).toBe('queued')
    expect(a.serve('mid', 3, { admitted: d => { order.push('mid'); finish(d) }, held: 30 }).status).toBe('queued')
    finish(other)
    expect(order).toEqual(['mid'])
    finish(lo)
    expect(order).toEqual(['mid', 'lo'])
  })

  it('never displaces an urgent request', () => {
    const held: Record<string, number> = { x: 0, r: 70, m: 40, n: 0 }
    const a = admissionOf(80, { maxUploads: 1, queue: 1, held: p => held[p] ?? 0 })
    const first = a.serve('x', 0, { admitted: () => {} })
    const answers: string[] = []
    const next = (name: string) => (d: ServeDecision): void => { answers.push(`${name}:${d.status}`); if (d.status === 'ok') finish(d) }
    expect(a.serve('r', 1, { admitted: next('r'), urgent: true }).status).toBe('queued')
    expect(a.serve('m', 2, { admitted: next('m') }).status).toBe('queued')
    // n displaces m, though the urgent r holds more: r keeps its place.
    expect(a.serve('n', 3, { admitted: next('n') }).status).toBe('queued')
    finish(first)
    expect(answers).toEqual(['m:busy', 'r:ok', 'n:ok'])
  })

  it('tells the gate how each upload it let through ended: every byte sent, or not', () => {
    const ended: string[] = []
    const gate: UploadGate = {
      decide: () => ({ serve: true }), served: () => {}, uploadEnded: (peer, index, complete) => { ended.push(`${peer}:${index}:${complete}`) }, peerHas: () => {}, peerBitfield: () => {}, peerGone: () => {}
    }
    const a = admissionOf(8, { maxUploads: 4, gate })
    finish(a.serve('x', 0))
    const cut = a.serve('y', 1)
    if (cut.status !== 'ok') throw new Error(cut.status)
    cut.onSent?.(100)
    cut.onEnd?.()
    // Past the gate (a reader waits on it): the gate decided nothing, so it is told nothing.
    finish(a.serve('z', 2, { urgent: true }))
    expect(ended).toEqual(['x:0:true', 'y:1:false'])
  })
})
