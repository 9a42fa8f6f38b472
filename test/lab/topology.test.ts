import { describe, expect, it } from 'vitest'
import { fileLayout, splitSizes } from '../../src/lab/origin.ts'
import { hostAddr, planTopology, tbfArgs } from '../../src/lab/topology.ts'

describe('lab topology', () => {
  it('gives every namespace a unique name and address, the line L both ways, hosts u up and d down', () => {
    const t = planTopology({ id: '42', hosts: 3, line: 100, up: 10, down: 40, seederUp: 20 })
    expect(t.nodes.map(n => n.netns)).toEqual(['msl-42-off', 'msl-42-seed', 'msl-42-h0', 'msl-42-h1', 'msl-42-h2'])
    expect(new Set(t.nodes.map(n => n.addr)).size).toBe(5)
    expect(t.offline.rates).toEqual({ up: 100, down: 100 })
    expect(t.seeder.rates).toEqual({ up: 20 })
    expect(t.hosts[2]!.rates).toEqual({ up: 10, down: 40 })
    expect(t.switchNs).toBe('msl-42-sw')
    expect(t.mtu).toBe(1500)
  })

  it('takes the links\' MTU within what a veth allows', () => {
    const base = { id: 'x', hosts: 1, line: 1, up: 1, down: 1, seederUp: 1 }
    expect(planTopology({ ...base, mtu: 9000 }).mtu).toBe(9000)
    for (const mtu of [67, 65536, 1500.5, Number.NaN]) expect(() => planTopology({ ...base, mtu })).toThrow(RangeError)
  })

  it('keeps host addresses valid past 250 hosts', () => {
    expect(hostAddr(0)).toBe('10.77.1.1')
    expect(hostAddr(249)).toBe('10.77.1.250')
    expect(hostAddr(250)).toBe('10.77.2.1')
    expect(() => planTopology({ id: 'x', hosts: 0, line: 1, up: 1, down: 1, seederUp: 1 })).toThrow(RangeError)
  })

  it('shapes with tbf in bits per second', () => {
    expect(tbfArgs('eth0', 3.125e6)).toEqual(['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', '25000000bit', 'burst', '512kb', 'latency', '100ms'])
  })

  it('splits the model into files that add up to F', () => {
    const sizes = splitSizes(10, 3)
    expect(sizes).toEqual([4, 3, 3])
    expect(splitSizes(64 * 2 ** 20, 4).reduce((a, b) => a + b)).toBe(64 * 2 ** 20)
  })

  it('lays out every version with the same paths and sizes but content of its own', () => {
    const v1 = fileLayout(10, 3, 'v1')
    const v2 = fileLayout(10, 3, 'v2')
    expect(v1).toEqual([{ path: 'part-000.bin', size: 4, seed: 1 }, { path: 'part-001.bin', size: 3, seed: 2 }, { path: 'part-002.bin', size: 3, seed: 3 }])
    expect(v2.map(f => [f.path, f.size])).toEqual(v1.map(f => [f.path, f.size]))
    const seeds = [...v1, ...v2, ...fileLayout(10, 3, 'v3')].map(f => f.seed)
    expect(new Set(seeds).size).toBe(9)
    expect(() => fileLayout(10, 3, 'latest')).toThrow(RangeError)
  })
})
