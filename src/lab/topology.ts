/**
 * The lab's network, as data: which namespaces exist, their addresses, which interface carries which
 * traffic, and how each is shaped. Pure — `netns.ts` turns it into `ip`/`tc` commands.
 *
 * One bridge in a switch namespace; every other namespace has one veth (`eth0`) into it, whose switch-side
 * end is named after the role (`off`, `seed`, `h<i>`). A namespace's upload is shaped by tbf on its own
 * `eth0`, its download by tbf on the switch-side end (FACTS.md "Network lab": `rate R burst 512kb latency 100ms`).
 * The offline namespace's link is the line: shaped to L both ways. All counters are read on the switch
 * side: an end's rx bytes are what its namespace sent, its tx bytes what the namespace received.
 */

export interface LinkRates {
  /** bytes/s the namespace may send; undefined: unshaped */
  up?: number
  /** bytes/s the namespace may receive; undefined: unshaped */
  down?: number
}

export interface LabNode {
  /** `off`, `seed` or `h<i>`: also the name of the switch-side veth end */
  role: string
  netns: string
  /** IPv4 address on the lab subnet (10.77.0.0/16) */
  addr: string
  rates: LinkRates
}

export interface Topology {
  switchNs: string
  /** Every link's MTU, bytes */
  mtu: number
  nodes: LabNode[]
  offline: LabNode
  seeder: LabNode
  hosts: LabNode[]
}

export interface TopologyInput {
  /** unique per lab run, e.g. the controller's pid: namespace names are global */
  id: string
  hosts: number
  /** bytes/s, both directions of the origin's line */
  line: number
  /** bytes/s, each host's upload and download */
  up: number
  down: number
  /** bytes/s, the seeder's upload */
  seederUp: number
  /** every link's MTU, bytes. @default DEFAULT_MTU */
  mtu?: number
}

/**
 * Ethernet's MTU, the links' by default. Each full 1,500-byte packet carries 1,448 bytes of TCP payload
 * (IP and TCP headers with timestamps) in a 1,514-byte frame, and the ACKs of a host's download ride on its
 * upload: with the session's own messages, hosts' uplinks carried 1.083 bytes of frames per byte of chunks
 * in a follow run. `--mtu 9000` (jumbo frames, common inside data centres) puts headers and ACKs under 1 %
 * (1.052 in the same run), which tells the wire's share of a run from the swarm's.
 */
export const DEFAULT_MTU = 1500
/** Linux's range for a veth's MTU that IPv4 allows, bytes. */
export const MTU_RANGE = [68, 65535] as const

/** `mtu` when it is a whole number in MTU_RANGE. @throws RangeError otherwise */
export function checkMtu (mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < MTU_RANGE[0] || mtu > MTU_RANGE[1]) throw new RangeError(`mtu must be a whole number of bytes, ${MTU_RANGE[0]}…${MTU_RANGE[1]}, got ${mtu}`)
  return mtu
}

/** Hosts per /24 of the lab subnet, so addresses stay valid for large N. */
const PER_SUBNET = 250
export const LAB_PREFIX_LEN = 16

export function hostAddr (i: number): string {
  return `10.77.${1 + Math.floor(i / PER_SUBNET)}.${1 + (i % PER_SUBNET)}`
}

export function planTopology (t: TopologyInput): Topology {
  if (!Number.isInteger(t.hosts) || t.hosts < 1 || t.hosts > PER_SUBNET * 250) throw new RangeError(`hosts must be 1…${PER_SUBNET * 250}, got ${t.hosts}`)
  const mtu = checkMtu(t.mtu ?? DEFAULT_MTU)
  const ns = (role: string): string => `msl-${t.id}-${role}`
  const offline: LabNode = { role: 'off', netns: ns('off'), addr: '10.77.0.1', rates: { up: t.line, down: t.line } }
  const seeder: LabNode = { role: 'seed', netns: ns('seed'), addr: '10.77.0.2', rates: { up: t.seederUp } }
  const hosts = Array.from({ length: t.hosts }, (_, i): LabNode => ({ role: `h${i}`, netns: ns(`h${i}`), addr: hostAddr(i), rates: { up: t.up, down: t.down } }))
  return { switchNs: ns('sw'), mtu, nodes: [offline, seeder, ...hosts], offline, seeder, hosts }
}

/** tc argv (after `tc -n NS`) for a tbf on `dev` at `rate` bytes/s; tc's `bit` unit keeps the rate exact. */
export function tbfArgs (dev: string, rate: number): string[] {
  return ['qdisc', 'replace', 'dev', dev, 'root', 'tbf', 'rate', `${Math.round(rate * 8)}bit`, 'burst', '512kb', 'latency', '100ms']
}
