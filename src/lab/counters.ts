/**
 * Kernel interface counters of the switch namespace, sampled with `ip -s -j link show` (one process per
 * sample reads every switch-side veth end at once). A switch-side end's rx bytes are what its namespace
 * sent (e.g. `off` rx = bytes that crossed the line from the origin), its tx bytes what it received. The
 * counters include Ethernet/IP/TCP headers, so a payload of F bytes shows as slightly more than F.
 *
 * Each sample also reads the machine's CPU time (/proc/stat): every namespace's processes and the kernel's
 * packet work share the same cores, so a span whose cores were all busy was paced by CPU, not by the links.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export interface IfBytes { rx: number, tx: number }

export interface CounterSample {
  /** ms since the epoch */
  at: number
  /** switch-side interface name → cumulative bytes */
  ifs: Record<string, IfBytes>
  /** The machine's CPU time since boot, all cores (procCpu); absent where /proc/stat cannot be read. */
  cpu?: CpuTime
}

/** CPU time of all cores, in /proc/stat's ticks (USER_HZ): `busy` = `total` less idle and iowait. */
export interface CpuTime { busy: number, total: number }

/**
 * The machine's CPU time from /proc/stat's text (proc(5)): the first line, `cpu  user nice system idle iowait
 * irq softirq steal guest guest_nice`, summed over every core. guest and guest_nice are already counted in
 * user and nice, so they are left out of the total. Undefined when the line is not there.
 */
export function parseProcStat (text: string): CpuTime | undefined {
  const fields = /^cpu\s+(.*)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number)
  if (fields === undefined || fields.length < 4 || fields.some(n => !Number.isFinite(n))) return undefined
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = fields
  const total = user + nice + system + idle + iowait + irq + softirq + steal
  return { busy: total - idle - iowait, total }
}

/** The machine's CPU time now (parseProcStat of /proc/stat); undefined where it cannot be read. */
function procCpu (): CpuTime | undefined {
  try {
    return parseProcStat(readFileSync('/proc/stat', 'utf8'))
  } catch {
    return undefined
  }
}

export async function readCounters (switchNs: string): Promise<CounterSample> {
  const { stdout } = await execFileAsync('ip', ['-n', switchNs, '-s', '-j', 'link', 'show'])
  const at = Date.now()
  const cpu = procCpu()
  const ifs: Record<string, IfBytes> = {}
  for (const link of JSON.parse(stdout) as Array<{ ifname: string, stats64?: { rx: { bytes: number }, tx: { bytes: number } } }>) {
    if (link.stats64 !== undefined) ifs[link.ifname.replace(/@.*$/, '')] = { rx: link.stats64.rx.bytes, tx: link.stats64.tx.bytes }
  }
  return cpu === undefined ? { at, ifs } : { at, ifs, cpu }
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
