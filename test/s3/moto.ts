/**
 * A real S3-protocol server for tests: moto's server mode (PyPI `moto[server]`, pinned and installed by
 * pypi-tool.ts), started as its own process on 127.0.0.1. Every failure says why: tests never skip silently.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { pypiTool } from '../support/pypi-tool.ts'
import { exitDescription } from '../../src/util/process-exit.ts'

const START_TIMEOUT_MS = 30_000

/** Installs moto unless present; resolves with the `moto_server` path. Rejects naming what failed. */
export function ensureMoto (): Promise<string> {
  return pypiTool('moto')
}

export interface Moto {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string
  readonly pid: number
  /** The server's request log so far (one werkzeug line per request: method, path, status). */
  readonly requests: string[]
  stop: () => Promise<void>
}

/**
 * Starts `moto_server` on a port the kernel picks. `env` reaches the server (e.g.
 * `INITIAL_NO_AUTH_ACTION_COUNT` to turn on its IAM checks). Rejects with the server's output when it
 * exits or does not listen within 30 s.
 */
export async function startMoto (env: Record<string, string> = {}): Promise<Moto> {
  const server = await ensureMoto()
  const proc: ChildProcess = spawn(server, ['-H', '127.0.0.1', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  const output: string[] = []
  const requests: string[] = []
  const exited = new Promise<void>(resolve => proc.once('exit', () => resolve()))
  const endpoint = await new Promise<string>((resolve, reject) => {
    const fail = (why: string): void => { clearTimeout(timer); reject(new Error(`moto_server ${why}: ${output.slice(-10).join(' | ')}`)) }
    const timer = setTimeout(() => { proc.kill('SIGKILL'); fail(`did not listen within ${START_TIMEOUT_MS} ms`) }, START_TIMEOUT_MS)
    proc.once('error', err => fail(`could not start (${err.message})`))
    proc.once('exit', code => fail(`exited with ${code} before listening`))
    for (const stream of [proc.stdout!, proc.stderr!]) {
      createInterface({ input: stream }).on('line', line => {
        output.push(line)
        if (output.length > 50) output.shift()
        if (/"[A-Z]+ \S+ HTTP\/1\.1"/.test(line)) requests.push(line)
        const m = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
        if (m !== null) { clearTimeout(timer); resolve(m[1]!) }
      })
    }
  })
  return {
    endpoint,
    pid: proc.pid!,
    requests,
    stop: async () => {
      if (exitDescription(proc) === undefined) proc.kill('SIGTERM')
      await exited
    }
  }
}
