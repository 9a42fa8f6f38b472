/**
 * Processes inside lab namespaces. `ip netns exec` execs the command, so a child's pid is the real
 * program's and /proc/<pid> gives its CPU time and peak RSS while it lives (fetches linger after
 * completing, so they are measured before being stopped). Every child is SIGKILLed at teardown.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { LabError } from './lab-error.ts'
import { onTeardown } from './teardown.ts'
import { exitDescription } from '../util/process-exit.ts'

/** Kernel clock ticks per second for /proc/<pid>/stat times (USER_HZ, 100 on Linux x86-64 and arm64). */
const USER_HZ = 100
const TEXT_TAIL = 20
/** How long a stopped process may take to exit before it is killed, in ms. */
export const STOP_GRACE_MS = 30_000

export interface LabProcess {
  name: string
  proc: ChildProcess
  /** ms since the epoch when spawned */
  spawnedAt: number
  /** JSON lines from stdout, with the ms since the epoch each arrived */
  stdout: Array<{ at: number, msg: Record<string, unknown> }>
  /** last non-JSON lines from either stream, for error messages */
  text: string[]
  exited: Promise<number | null>
  /** Resolves with the first stdout JSON line matching `pred`; rejects if the process exits first or after `timeoutMs`. */
  waitFor: (pred: (m: Record<string, unknown>) => boolean, timeoutMs: number) => Promise<{ at: number, msg: Record<string, unknown> }>
  /**
   * Sends `signal` unless the process already exited; resolves on exit. One still running `graceMs`
   * (default STOP_GRACE_MS) later is SIGKILLed, and that is said on stderr: a stop that hangs is a finding,
   * not a reason for the lab to hang.
   */
  stop: (signal?: NodeJS.Signals, graceMs?: number) => Promise<void>
}

export interface ProcStats {
  /** user + system CPU seconds */
  cpuSeconds: number
  /** peak resident set (VmHWM), bytes */
  peakRss: number
}

export interface SpawnOptions {
  /** called with each JSON line on stderr (logs and progress), which is otherwise dropped */
  onStderrJson?: (m: Record<string, unknown>) => void
  env?: Record<string, string>
  cwd?: string
  /** appends every stderr line here (a restarted host keeps one file) */
  logFile?: string
}

export function spawnIn (netns: string, name: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
  const proc = spawn('ip', ['netns', 'exec', netns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env }, cwd: opts.cwd })
  const unregister = onTeardown(() => { if (exitDescription(proc) === undefined) proc.kill('SIGKILL') })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => resolve(code)))
  // The teardown entry is dropped once the process is gone, so long runs do not accumulate them.
  void exited.then(() => unregister())
  const p: LabProcess = {
    name,
    proc,
    spawnedAt: Date.now(),
    stdout: [],
    text: [],
    exited,
    waitFor: (pred, timeoutMs) => new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = p.stdout.find(l => pred(l.msg))
        if (hit !== undefined) resolve(hit)
        return hit !== undefined
      }
      if (check()) return
      const done = (): void => { clearInterval(iv); clearTimeout(timer) }
      const iv = setInterval(() => {
        if (check()) done()
        else if (exitDescription(proc) !== undefined) {
          done()
          reject(new LabError(`${name} exited (${exitDescription(proc)}) before the expected output: ${p.text.slice(-5).join(' | ')}`))
        }
      }, 100)
      const timer = setTimeout(() => { done(); reject(new LabError(`${name}: no expected output within ${timeoutMs} ms: ${p.text.slice(-5).join(' | ')}`)) }, timeoutMs)
    }),
    stop: async (signal = 'SIGTERM', graceMs = STOP_GRACE_MS) => {
      if (exitDescription(proc) !== undefined) return
      proc.kill(signal)
      const timer = setTimeout(() => {
        process.stderr.write(`lab: ${name} did not exit within ${graceMs / 1000} s of ${signal}; SIGKILL\n`)
        proc.kill('SIGKILL')
      }, graceMs)
      await exited
      clearTimeout(timer)
    }
  }
  const keepText = (line: string): void => {
    p.text.push(line)
    if (p.text.length > TEXT_TAIL) p.text.shift()
  }
  createInterface({ input: proc.stdout! }).on('line', line => {
    try {
      p.stdout.push({ at: Date.now(), msg: JSON.parse(line) as Record<string, unknown> })
    } catch { keepText(line) }
  })
  const log = opts.logFile === undefined ? undefined : createWriteStream(opts.logFile, { flags: 'a' })
  void exited.then(() => log?.end())
  createInterface({ input: proc.stderr! }).on('line', line => {
    log?.write(`${line}\n`)
    let msg: Record<string, unknown> | undefined
    try {
      msg = JSON.parse(line) as Record<string, unknown>
    } catch { keepText(line) }
    if (msg !== undefined) {
      if (typeof msg.level === 'number' && msg.level >= 50) keepText(line)
      opts.onStderrJson?.(msg)
    }
  })
  return p
}

/** CPU time and peak RSS of a live process; undefined once it has exited. */
export function procStats (pid: number | undefined): ProcStats | undefined {
  if (pid === undefined) return undefined
  try {
    // Fields after the parenthesised command name: utime and stime are the 14th and 15th of the line.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / USER_HZ
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return { cpuSeconds, peakRss: hwm === null ? 0 : Number(hwm[1]) * 1024 }
  } catch {
    return undefined
  }
}
