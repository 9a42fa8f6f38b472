/**
 * Kernel interface counters of the switch namespace, sampled with `ip -s -j link show` (one process per
 * sample reads every switch-side veth end at once). A switch-side end's rx bytes are what its namespace
 * sent (e.g. `off` rx = bytes that crossed the line from the origin), its tx bytes what it received. The
 * counters include Ethernet/IP/TCP headers, so a payload of F bytes shows as slightly more than F.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export interface IfBytes { rx: number, tx: number }

export interface CounterSample {
  /** ms since the epoch */
  at: number
  /** switch-side interface name → cumulative bytes */
  ifs: Record<string, IfBytes>
}

export async function readCounters (switchNs: string): Promise<CounterSample> {
  const { stdout } = await execFileAsync('ip', ['-n', switchNs, '-s', '-j', 'link', 'show'])
  const at = Date.now()
  const ifs: Record<string, IfBytes> = {}
  for (const link of JSON.parse(stdout) as Array<{ ifname: string, stats64?: { rx: { bytes: number }, tx: { bytes: number } } }>) {
    if (link.stats64 !== undefined) ifs[link.ifname.replace(/@.*$/, '')] = { rx: link.stats64.rx.bytes, tx: link.stats64.tx.bytes }
  }
  return { at, ifs }
}

export interface CounterSampler {
  samples: CounterSample[]
  /** Takes a last sample and stops (later calls return that sample). */
  stop: () => Promise<CounterSample>
}

/** Samples every `intervalMs` until stopped; the first sample is taken before this resolves. */
export async function sampleCounters (switchNs: string, intervalMs: number): Promise<CounterSampler> {
  const samples: CounterSample[] = [await readCounters(switchNs)]
  let stopped = false
  let busy: Promise<void> = Promise.resolve()
  const timer = setInterval(() => {
    if (stopped) return
    busy = readCounters(switchNs).then(s => { if (!stopped) samples.push(s) }, () => { /* a namespace being torn down */ })
  }, intervalMs)
  let last: Promise<CounterSample> | undefined
  return {
    samples,
    stop: () => {
      last ??= (async () => {
        clearInterval(timer)
        await busy
        stopped = true
        const s = await readCounters(switchNs)
        samples.push(s)
        return s
      })()
      return last
    }
  }
}

/**
 * What every run reports from the counters: bytes that crossed the line from the origin over the whole
 * run (at the switch-side end of the offline namespace's link), and bytes the seeder's NIC sent from `t0`
 * (the hosts' start: a seeder's earlier pull or read does not count as egress to hosts).
 */
export function runBytes (
  samples: readonly CounterSample[], last: CounterSample, t0: number, topology: { offline: { role: string }, seeder: { role: string } }
): { lineBytes: number, seederEgress: number } {
  const first = samples[0] ?? last
  const atT0 = samples.findLast(x => x.at <= t0) ?? first
  return { lineBytes: delta(first, last, topology.offline.role, 'rx'), seederEgress: delta(atT0, last, topology.seeder.role, 'rx') }
}

/** Bytes `ifname` moved in `dir` between two samples. */
export function delta (from: CounterSample, to: CounterSample, ifname: string, dir: keyof IfBytes): number {
  return (to.ifs[ifname]?.[dir] ?? 0) - (from.ifs[ifname]?.[dir] ?? 0)
}
