/**
 * The download scheduler driven by a mock clock, in-memory neighbours and an in-memory transport: no
 * libp2p, no timers of its own beyond the scheduling tick. A real chunk store on disk holds what it writes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { ChunkStore } from '../../src/chunker/chunk-store.ts'
import { chunkLayout, createHeader, headerId } from '../../src/chunker/manifest.ts'
import { IntegrityError } from '../../src/errors.ts'
import { silentLogger } from '../../src/log.ts'
import { HINTED_ABOVE_LIMIT } from '../../src/peer/download-planner.ts'
import { DownloadScheduler, type Neighbour, type SchedulerOptions } from '../../src/peer/download-scheduler.ts'
import type { ChunkRequest, ChunkResponse } from '../../src/peer/protocols/chunk/codec.ts'
import type { PeerHint, SessionMessage } from '../../src/peer/protocols/session/codec.ts'
import { SwarmLog } from '../../src/peer/swarm-log.ts'
import { createRng } from '../../src/util/random.ts'

const CHUNK = 4096
const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(d => rm(d, { recursive: true, force: true }))) })

interface Peer extends Neighbour { serve: (req: ChunkRequest, signal: AbortSignal) => Promise<ChunkResponse> }

/** `room`: how many more neighbours the set would take (Neighbours#wantMore), 4 above the limit included. */
async function setup (chunks = 6, options: Partial<SchedulerOptions> = {}, room = Infinity) {
  const data = randomBytes(CHUNK * chunks)
  const header = createHeader({ name: 'm', version: 'v1', chunkSize: CHUNK, files: [{ path: 'a.bin', size: data.length, mode: 0o644 }] })
  const layout = chunkLayout(header)
  const dir = await mkdtemp(join(tmpdir(), 'ms-sched-'))
  dirs.push(dir)
  const store = await ChunkStore.open({ dir: join(dir, 'out'), header, reserveBytes: 0 })
  const chunkOf = (i: number): Buffer => data.subarray(i * CHUNK, i * CHUNK + layout.length[i]!)
  const known = new Bitfield(layout.count)
  for (let i = 0; i < layout.count; i++) {
    await store.recordHash(i, createHash('sha256').update(chunkOf(i)).digest())
    known.set(i)
  }
  let clock = 1_000_000
  const peers: Peer[] = []
  const banned = new Set<string>()
  const connected: string[] = []
  const sent: SessionMessage[] = []
  const events = {
    chunks: [] as number[], complete: 0, stalled: [] as string[], fatal: [] as Error[], bans: [] as string[], reported: [] as Array<[string, number]>
  }
  const scheduler = new DownloadScheduler<Peer>({
    headerId: headerId(header),
    store,
    known,
    neighbours: {
      all: () => peers,
      get size () { return peers.length },
      wantMore: (extra = 0) => room - HINTED_ABOVE_LIMIT + extra > connected.length,
      connect: async (p: PeerHint | PeerId) => { connected.push('toMultihash' in p ? p.toString() : p.id) },
      announce: indexes => { sent.push({ type: 'have', indexes }) },
      banned
    },
    fetchChunk: (from, req, signal) => from.serve(req, signal),
    reportCorrupt: (from, index) => { events.reported.push([from.peerKey, index]) },
    // As neighbours.ts does: a banned peer's session closes, so it leaves.
    ban: (from, err) => {
      expect(err).toBeInstanceOf(IntegrityError)
      if (banned.has(from.peerKey)) return
      banned.add(from.peerKey)
      events.bans.push(from.peerKey)
      peers.splice(peers.indexOf(from), 1)
      scheduler.peerLeft(from.peerKey)
    },
    now: () => clock,
    rng: createRng(7),
    log: new SwarmLog(silentLogger),
    options: { maxRequestsPerPeer: 2, maxBufferedBytes: 4 * CHUNK, requestIdleMs: 1000, stallAfterMs: 5000, ...options },
    stats: { bytesDown: 0, chunksDown: 0, rejected: 0, duplicates: 0 },
    events: {
      chunk: i => events.chunks.push(i),
      complete: () => { events.complete++ },
      stalled: r => events.stalled.push(r),
      fatal: e => events.fatal.push(e)
    }
  })
  const honest = (i: number): ChunkResponse => {
    const bytes = Buffer.from(chunkOf(i))
    return { status: 'ok', data: bytes, digest: createHash('sha256').update(bytes).digest() }
  }
  const addPeer = async (serve: Peer['serve'], role: 'peer' | 'seeder' = 'peer'): Promise<Peer> => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const p: Peer = { peer, peerKey: peer.toString(), remoteRole: role, serve }
    peers.push(p)
    const bits = new Bitfield(layout.count)
    for (let i = 0; i < layout.count; i++) bits.set(i)
    scheduler.peerBitfield(p, bits)
    return p
  }
  const settle = async (): Promise<void> => { for (let k = 0; k < 20; k++) await new Promise(resolve => setImmediate(resolve)) }
  /** Waits for the store's real file I/O (the scheduler's own time is the mock clock). */
  const until = async (cond: () => boolean): Promise<void> => { for (let k = 0; k < 500 && !cond(); k++) await new Promise(resolve => setTimeout(resolve, 10)) }
  const advance = (ms: number): number => { clock += ms; return clock }
  return { store, layout, scheduler, peers, events, sent, connected, banned, honest, addPeer, settle, until, advance }
}

/** Flips the byte at `offset` of the store's one file on disk (a rotten sector). */
async function rotByte (store: ChunkStore, offset: number): Promise<void> {
  const file = join(store.dir, 'a.bin')
  const bytes = await readFile(file)
  bytes[offset]! ^= 0xff
  await writeFile(file, bytes)
}

describe('DownloadScheduler', () => {
  it('fetches every chunk from its neighbours, announces each with a HAVE and completes', async () => {
    const t = await setup()
    await t.addPeer(async req => t.honest(req.index))
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.complete > 0)
    expect(t.events.complete).toBe(1)
    expect([...t.events.chunks].sort((a, b) => a - b)).toEqual([...Array(t.layout.count).keys()])
    expect(t.sent.filter(m => m.type === 'have')).toHaveLength(t.layout.count)
    expect(t.store.complete).toBe(true)
    expect(t.scheduler.report({ bytesDown: 1, bytesUp: 2 })).toMatchObject({ have: t.layout.count, total: t.layout.count, state: 'seeding' })
    await t.scheduler.close()
  })

  it('says in each request how many chunks it holds (uploaders serve those furthest behind first)', async () => {
    const t = await setup()
    const told: Array<[number, number | undefined]> = []
    await t.addPeer(async req => {
      told.push([req.index, req.held])
      return t.honest(req.index)
    })
    await t.until(() => t.events.complete > 0)
    // The count when the request went out: never more than the chunks verified before it, and it grows.
    expect(told).toHaveLength(t.layout.count)
    expect(told.map(([, held]) => held)).toEqual(told.map(([, held]) => held).sort((a, b) => a! - b!))
    expect(told[0]![1]).toBe(0)
    expect(told.at(-1)![1]).toBeGreaterThan(0)
    expect(told.every(([, held]) => held! < t.layout.count)).toBe(true)
    await t.scheduler.close()
  })

  it('bans a neighbour whose bytes fail verification and gets the chunk from another', async () => {
    const t = await setup()
    const liar = await t.addPeer(async req => {
      const r = t.honest(req.index)
      if (r.status === 'ok') r.data[0]! ^= 1
      return { status: 'ok', data: r.status === 'ok' ? r.data : Buffer.alloc(0), digest: createHash('sha256').update(r.status === 'ok' ? r.data : Buffer.alloc(0)).digest() }
    })
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.complete > 0)
    expect(t.events.bans).toEqual([liar.peerKey])
    expect(t.events.complete).toBe(1)
    await t.scheduler.close()
  })

  it('says it is stalled, and why, once no chunk arrived for stallAfterMs of the injected clock', async () => {
    const t = await setup()
    t.scheduler.tick(t.advance(4000))
    expect(t.events.stalled).toEqual([])
    t.scheduler.tick(t.advance(2000))
    expect(t.events.stalled).toEqual([expect.stringMatching(/no neighbours/)])
    expect(t.scheduler.report({ bytesDown: 0, bytesUp: 0 })).toMatchObject({ state: 'stalled', reason: expect.stringMatching(/no neighbours/) })
    await t.scheduler.close()
  })

  it('a request with no progress is timed out by the clock, aborted, and the chunk asked of another neighbour', async () => {
    const t = await setup(2)
    const aborted: number[] = []
    await t.addPeer((req, signal) => new Promise<ChunkResponse>((_resolve, reject) => {
      signal.addEventListener('abort', () => { aborted.push(req.index); reject(signal.reason) })
    }))
    await t.settle()
    expect(t.events.chunks).toEqual([])
    // A second, honest neighbour appears; the hung requests are still in flight on the first.
    await t.addPeer(async req => t.honest(req.index))
    t.scheduler.tick(t.advance(2001))
    await t.until(() => t.events.complete > 0)
    expect(t.events.complete).toBe(1)
    expect(aborted.sort()).toEqual([0, 1])
    await t.scheduler.close()
  })

  it('a neighbour that accepts requests and sends nothing is paused, and the seeder behind it asked, long before the idle timeout', async () => {
    // An idle timeout of a minute: only the slow-peer rule (slow-peer.ts, 8 s without a byte) can act here.
    const t = await setup(6, { requestIdleMs: 60_000, stallAfterMs: 120_000 })
    const stalled: number[] = []
    await t.addPeer((req, signal) => new Promise<ChunkResponse>((_resolve, reject) => {
      stalled.push(req.index)
      signal.addEventListener('abort', () => reject(signal.reason))
    }))
    // A holder of last resort: not asked for what another neighbour holds, until that one no longer counts.
    const seederAsked: number[] = []
    await t.addPeer(async req => { seederAsked.push(req.index); return t.honest(req.index) }, 'seeder')
    await t.settle()
    t.scheduler.tick(t.advance(7000))
    await t.settle()
    expect(stalled).toHaveLength(2)
    expect(seederAsked).toEqual([])
    t.scheduler.tick(t.advance(1000))
    await t.until(() => t.events.complete > 0)
    expect(t.events.complete).toBe(1)
    expect(stalled).toHaveLength(2)
    expect(seederAsked).toHaveLength(6)
    await t.scheduler.close()
  })

  it('a paused neighbour is asked again once its pause ends', async () => {
    const t = await setup(2, { requestIdleMs: 60_000, stallAfterMs: 120_000 })
    const stalled: number[] = []
    await t.addPeer((req, signal) => new Promise<ChunkResponse>((_resolve, reject) => {
      stalled.push(req.index)
      signal.addEventListener('abort', () => reject(signal.reason))
    }))
    // The seeder lacks chunk 1: only the staller holds it.
    await t.addPeer(async req => req.index === 1 ? { status: 'missing' } : t.honest(req.index), 'seeder')
    await t.settle()
    expect([...stalled].sort()).toEqual([0, 1])
    t.scheduler.tick(t.advance(8000))
    await t.until(() => t.events.chunks.includes(0))
    t.scheduler.tick(t.advance(9999))
    await t.settle()
    expect(stalled).toHaveLength(2)
    t.scheduler.tick(t.advance(1))
    await t.until(() => stalled.length > 2)
    expect(stalled.slice(2)).toEqual([1])
    await t.scheduler.close()
  })

  it('follows a seeder that refuses and names holders: it dials them', async () => {
    const t = await setup(1)
    const holder = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    await t.addPeer(async () => ({ status: 'refused', holders: [holder] }), 'seeder')
    await t.settle()
    expect(t.connected).toContain(holder)
    await t.scheduler.close()
  })

  it('at its neighbour limit, a host dials one holder a refusal names (a few above the limit), not none', async () => {
    // At the limit with room for 2 above it: each refusal dials one of the holders it names, two in all.
    const t = await setup(3, {}, 2)
    const ids = await Promise.all([0, 1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const named = [ids.slice(0, 2), ids.slice(2)]
    await t.addPeer(async req => req.index < 2 ? { status: 'refused', holders: named[req.index]! } : t.honest(req.index), 'seeder')
    await t.until(() => t.events.chunks.length > 0)
    await t.settle()
    // Before: none (at the limit, named holders were never dialed).
    expect(t.connected.sort()).toEqual([ids[0], ids[2]].sort())
    await t.scheduler.close()
  })

  it('bad bytes from a seeder are reported to it, not banned; from the only source they end the download at once', async () => {
    const t = await setup(2)
    const seeder = await t.addPeer(async req => {
      const r = t.honest(req.index)
      if (r.status !== 'ok' || req.index !== 1) return r
      r.data[0]! ^= 1
      return { ...r, digest: createHash('sha256').update(r.data).digest() }
    }, 'seeder')
    await t.until(() => t.events.fatal.length > 0)
    expect(t.events.reported).toEqual([[seeder.peerKey, 1]])
    expect(t.events.bans).toEqual([])
    expect(t.events.fatal[0]!.message).toMatch(new RegExp(`chunk 1 from seeder ${seeder.peerKey}, the only source`))
    expect(t.events.fatal[0]).toBeInstanceOf(IntegrityError)
    await t.scheduler.close()
  })

  it('a holder the seeder names but that cannot be dialed is reported back, and the seeder then serves the chunk', async () => {
    const t = await setup(1)
    const holder = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const asked: string[][] = []
    await t.addPeer(async req => {
      asked.push([...req.failedHolders ?? []])
      return req.failedHolders?.includes(holder) === true ? t.honest(req.index) : { status: 'refused', holders: [holder] }
    }, 'seeder')
    await t.until(() => t.connected.includes(holder))
    // As neighbours.ts reports a failed dial.
    t.scheduler.holderUnreachable(holder)
    await t.until(() => t.events.complete > 0)
    expect(asked).toEqual([[], [holder]])
    await t.scheduler.close()
  })

  it('a chunk dropped from the store after the download completed (found rotten) is fetched again', async () => {
    const t = await setup(3)
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.complete > 0)
    // One byte of chunk 1 rots on disk; a re-check drops it, as a seeder does when a host reports it.
    await rotByte(t.store, CHUNK + 5)
    expect(await t.store.verifyHeld(1)).toBe(false)
    expect(t.store.have.has(1)).toBe(false)
    t.scheduler.lost(1)
    await t.until(() => t.store.have.has(1))
    expect(t.store.have.complete).toBe(true)
    expect(await readFile(join(t.store.dir, 'a.bin'))).toEqual(Buffer.concat([0, 1, 2].map(i => (t.honest(i) as { data: Buffer }).data)))
    expect(t.events.complete).toBe(1)
    await t.scheduler.close()
  })

  it('a chunk announced as got elsewhere after it was dropped is still fetched again', async () => {
    const t = await setup(3)
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.complete > 0)
    await rotByte(t.store, 2 * CHUNK)
    expect(await t.store.verifyHeld(2)).toBe(false)
    t.scheduler.lost(2)
    // A seeder announces pulled chunks once their hashes are signed, a batch later: this one is gone by then.
    t.scheduler.gained(2)
    await t.until(() => t.store.have.has(2))
    expect(t.store.have.complete).toBe(true)
    await t.scheduler.close()
  })

  it('a failing finalize (the output path taken) is fatal, not an unhandled rejection', async () => {
    const t = await setup(2)
    // A file where the finished directory must appear: the rename fails.
    await writeFile(t.store.dir, 'in the way')
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.fatal.length > 0)
    expect(t.events.fatal[0]!.message).toMatch(/ENOTDIR|EEXIST|EISDIR|not a directory|exists/i)
    expect(t.events.complete).toBe(0)
    await t.scheduler.close()
  })

  it('a local write failure (not the peer\'s fault) is fatal, not a ban', async () => {
    const t = await setup(1)
    await t.store.close()
    await t.addPeer(async req => t.honest(req.index))
    await t.until(() => t.events.fatal.length > 0)
    expect(t.events.fatal).toHaveLength(1)
    expect(t.events.bans).toEqual([])
    await t.scheduler.close()
  })
})
