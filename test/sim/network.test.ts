import { describe, expect, it } from 'vitest'
import { EventQueue } from '../../src/sim/event-queue.ts'
import { Link, Network } from '../../src/sim/network.ts'

describe('Network', () => {
  it('sends a flow at its narrowest link', () => {
    const q = new EventQueue()
    const net = new Network(q)
    const up = new Link(100)
    const down = new Link(400)
    let doneAt = -1
    net.start([up, down], 250, () => { doneAt = q.now })
    q.run()
    expect(doneAt).toBeCloseTo(2500, 9)
    expect(up.carried).toBe(250)
    expect(down.carried).toBe(250)
  })

  it('splits a link equally and gives the share back when a flow ends', () => {
    // 100 B/s shared by flows of 100 B and 300 B: 50 B/s each until t = 2 s, then 100 B/s for the last 200 B.
    const q = new EventQueue()
    const net = new Network(q)
    const link = new Link(100)
    const done: number[] = []
    net.start([link], 100, () => done.push(q.now))
    net.start([link], 300, () => done.push(q.now))
    q.run()
    expect(done[0]).toBeCloseTo(2000, 9)
    expect(done[1]).toBeCloseTo(4000, 9)
    expect(link.carried).toBeCloseTo(400, 9)
  })

  it('limits a flow by the busier of its two links', () => {
    // Sender A (100 B/s) serves receivers X and Y; X also receives from B. X's link (100 B/s) splits in two,
    // so A→X and B→X get 50 B/s, and A→Y gets A's equal share, 50 B/s: equal shares, not max-min.
    const q = new EventQueue()
    const net = new Network(q)
    const a = new Link(100)
    const b = new Link(1000)
    const x = new Link(100)
    const y = new Link(1000)
    const done = new Map<string, number>()
    net.start([a, x], 100, () => done.set('ax', q.now))
    net.start([b, x], 100, () => done.set('bx', q.now))
    net.start([a, y], 100, () => done.set('ay', q.now))
    q.run()
    expect(done.get('ax')).toBeCloseTo(2000, 9)
    expect(done.get('bx')).toBeCloseTo(2000, 9)
    expect(done.get('ay')).toBeCloseTo(2000, 9)
  })

  it('counts the bytes an aborted flow sent, and speeds up the rest', () => {
    const q = new EventQueue()
    const net = new Network(q)
    const link = new Link(100)
    const first = net.start([link], 1000, () => { throw new Error('aborted flow completed') })
    let doneAt = -1
    net.start([link], 200, () => { doneAt = q.now })
    let sent = -1
    q.at(1000, () => { sent = net.abort(first) })
    q.run()
    expect(sent).toBeCloseTo(50, 9)
    // 50 B by t = 1 s at half the link, the other 150 B at the whole link: done at 2.5 s.
    expect(doneAt).toBeCloseTo(2500, 9)
    expect(link.carried).toBeCloseTo(250, 9)
  })
})
