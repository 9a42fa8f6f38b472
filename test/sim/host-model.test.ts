import { describe, expect, it } from 'vitest'
import { Bitfield } from '../../src/chunker/bitfield.ts'
import { DRIVER_DEFAULTS, HostModel, type DriverOptions, type HostIo } from '../../src/sim/host-model.ts'
import { createRng } from '../../src/util/random.ts'

const MiB = 1024 * 1024

function bits (n: number, indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(n)
  for (const i of indexes) b.set(i)
  return b
}

/** A peer over `n` chunks (all hashes known, none held) whose io records what it asks for. */
function peer (n: number, options: Partial<DriverOptions> = {}, chunkSize = 4 * MiB) {
  const calls = {
    dial: [] as string[], request: [] as Array<[string, number, readonly string[] | undefined]>, cancel: [] as Array<[string, number]>, announce: [] as number[]
  }
  const deferred: Array<() => void> = []
  let now = 0
  const io: HostIo = {
    now: () => now,
    dial: p => calls.dial.push(p),
    request: (p, i, f) => calls.request.push([p, i, f]),
    cancel: (p, i) => calls.cancel.push([p, i]),
    announce: i => calls.announce.push(i),
    publish: () => {},
    hint: () => {},
    discover: () => [],
    soon: fn => deferred.push(fn),
    later: (_ms, fn) => deferred.push(fn),
    complete: () => {}
  }
  const all = bits(n, Array.from({ length: n }, (_, i) => i))
  const host = new HostModel({
    id: 'me', role: 'peer', chunkSize, lengths: new Array<number>(n).fill(chunkSize), have: new Bitfield(n), known: all, rng: createRng(2), io, options: { ...DRIVER_DEFAULTS, endgameThreshold: 0, ...options }
  })
  const flush = (): void => { while (deferred.length > 0) deferred.shift()!() }
  return { host, calls, flush, all, setNow: (t: number) => { now = t } }
}

describe('HostModel (the real download planner and upload admission, driven by simulated events)', () => {
  it('keeps at most maxRequestsPerPeer per neighbour and max(2, buffer ÷ chunk) in all', () => {
    const { host, calls, flush, all } = peer(40, { maxBufferedBytes: 24 * MiB })
    host.attach('a', 'peer', all)
    host.attach('b', 'peer', all)
    flush()
    // budget 24 MiB ÷ 4 MiB = 6, at most 4 from one peer
    expect(calls.request).toHaveLength(6)
    const perPeer = new Map<string, number>()
    for (const [p] of calls.request) perPeer.set(p, (perPeer.get(p) ?? 0) + 1)
    expect(Math.max(...perPeer.values())).toBe(4)
    expect(new Set(calls.request.map(r => r[1])).size).toBe(6)
  })

  it('frees a slot when a chunk is delivered and written, and announces it', () => {
    const { host, calls, flush, all } = peer(10, { maxBufferedBytes: 8 * MiB })
    host.attach('a', 'peer', all)
    flush()
    expect(calls.request).toHaveLength(2)
    const [p, i] = calls.request[0]!
    expect(host.onDelivered(p, i, 4 * MiB)).toBe(true)
    flush()
    // still two chunks' worth of memory in use: one in flight, one being verified
    expect(calls.request).toHaveLength(2)
    host.onWritten(p, i)
    flush()
    expect(calls.request).toHaveLength(3)
    expect(calls.announce).toEqual([i])
    expect(host.have.has(i)).toBe(true)
  })

  it('asks the seeder only for what no peer has, and tells it which holders failed', () => {
    const { host, calls, flush, all } = peer(4)
    host.attach('s', 'seeder', all)
    host.attach('a', 'peer', bits(4, [0, 1]))
    flush()
    const bySource = new Map(calls.request.map(([p, i, f]) => [i, { p, f }]))
    expect(bySource.get(0)?.p).toBe('a')
    expect(bySource.get(1)?.p).toBe('a')
    expect(bySource.get(2)).toEqual({ p: 's', f: [] })
    expect(bySource.get(3)).toEqual({ p: 's', f: [] })
    // a says it lacks chunk 0 after all: a failed holder, reported to the seeder when the chunk is asked of it
    host.onResponse('a', 0, { status: 'missing' })
    flush()
    expect(calls.request.at(-1)).toEqual(['s', 0, ['a']])
  })

  it('on a refusal dials the named holders and blocks the chunk on that node for retryAfterMs; a busy node is left alone for busyRetryMs', () => {
    const { host, calls, flush, all, setNow } = peer(1, { retryAfterMs: 1000, busyRetryMs: 100 })
    host.attach('s', 'seeder', all)
    flush()
    expect(calls.request).toEqual([['s', 0, []]])
    host.onResponse('s', 0, { status: 'refused', holders: ['x', 'y'] })
    flush()
    expect(calls.dial).toEqual(['x', 'y'])
    expect(calls.request).toHaveLength(1)
    setNow(1001)
    host.tick()
    flush()
    expect(calls.request).toHaveLength(2)
    host.onResponse('s', 0, { status: 'busy' })
    expect(calls.dial).toEqual(['x', 'y'])
    setNow(1050)
    host.tick()
    flush()
    expect(calls.request).toHaveLength(2)
    setNow(1102)
    host.tick()
    flush()
    expect(calls.request).toHaveLength(3)
  })

  it('after a busy answer asks another holder for the chunk at once, and the busy one for nothing until busyRetryMs', () => {
    const { host, calls, flush, all, setNow } = peer(2, { busyRetryMs: 100, maxRequestsPerPeer: 1, maxBufferedBytes: 4 * MiB })
    host.attach('a', 'peer', all)
    flush()
    const [, first] = calls.request[0]!
    host.attach('b', 'peer', bits(2, [first]))
    host.onResponse('a', first, { status: 'busy' })
    flush()
    expect(calls.request.slice(1)).toEqual([['b', first, undefined]])
    setNow(50)
    host.onResponse('b', first, { status: 'busy' })
    flush()
    expect(calls.request).toHaveLength(2)
    setNow(101)
    host.tick()
    flush()
    // a's back-off (from 0) is over, b's (from 50) is not
    expect(calls.request.slice(2).map(r => r[0])).toEqual(['a'])
  })

  it('with busyBackoff chunk, a busy node is asked for its next chunk at once', () => {
    const { host, calls, flush, all } = peer(2, { busyBackoff: 'chunk', maxRequestsPerPeer: 1, maxBufferedBytes: 4 * MiB })
    host.attach('a', 'peer', all)
    flush()
    const [, first] = calls.request[0]!
    host.onResponse('a', first, { status: 'busy' })
    flush()
    expect(calls.request.slice(1)).toEqual([['a', 1 - first, undefined]])
  })

  it('asks the seeder again at once, naming the holder, when a holder its refusal named cannot be dialed', () => {
    const { host, calls, flush, all } = peer(1, { retryAfterMs: 10_000 })
    host.attach('s', 'seeder', all)
    flush()
    host.onResponse('s', 0, { status: 'refused', holders: ['x'] })
    flush()
    expect(calls.request).toHaveLength(1)
    host.dialFailed('x')
    flush()
    expect(calls.request.at(-1)).toEqual(['s', 0, ['x']])
  })

  it('stops dialing at maxNeighbours peers (seeders and inbound sessions beyond it are kept)', () => {
    const { host, calls } = peer(1, { maxNeighbours: 2 })
    host.attach('s', 'seeder', new Bitfield(1))
    host.onHints(['a', 'b', 'c'])
    expect(calls.dial).toEqual(['a', 'b'])
    host.attach('a', 'peer', new Bitfield(1))
    host.attach('z', 'peer', new Bitfield(1))
    host.dialFailed('b')
    host.onHints(['c'])
    expect(calls.dial).toEqual(['a', 'b'])
    expect(host.neighbours).toBe(3)
  })

  it('cancels the requests to a neighbour that leaves, and asks elsewhere', () => {
    const { host, calls, flush, all } = peer(1)
    host.attach('a', 'peer', all)
    flush()
    expect(calls.request).toEqual([['a', 0, undefined]])
    host.attach('b', 'peer', all)
    host.detach('a')
    flush()
    expect(calls.cancel).toEqual([['a', 0]])
    expect(calls.request.at(-1)).toEqual(['b', 0, undefined])
  })
})
