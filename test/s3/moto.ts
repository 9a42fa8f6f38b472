/**
 * A real S3-protocol server for tests: moto's server mode (PyPI `moto[server]`, pinned), installed once
 * into a venv in a cache directory and started as its own process on 127.0.0.1.
 *
 * Installing: `python3 -m venv` + `pip install moto[server]==MOTO_VERSION` into
 * `$MODELSWARM_TEST_TOOLS/moto-<version>` (default `~/.cache/modelswarm-test-tools`), done by the vitest
 * global setup; a `.installed` file written last marks a finished install, so a killed one is redone.
 * Every failure says why (no python3, pip failing, the server exiting): tests never skip silently.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { access, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'

export const MOTO_VERSION = '5.2.5'
const TOOLS = process.env.MODELSWARM_TEST_TOOLS ?? join(homedir(), '.cache', 'modelswarm-test-tools')
const VENV = join(TOOLS, `moto-${MOTO_VERSION}`)
const SERVER = join(VENV, 'bin', 'moto_server')
const INSTALLED = join(VENV, '.installed')
const START_TIMEOUT_MS = 30_000

let install: Promise<string> | undefined

/** Installs moto unless present; resolves with the `moto_server` path. Rejects naming what failed. */
export function ensureMoto (): Promise<string> {
  install ??= (async () => {
    if (await access(INSTALLED).then(() => true, () => false)) return SERVER
    await rm(VENV, { recursive: true, force: true })
    const run = promisify(execFile)
    const python = process.env.MODELSWARM_PYTHON ?? 'python3'
    try {
      await run(python, ['-m', 'venv', VENV], { timeout: 120_000 })
      await run(join(VENV, 'bin', 'pip'), ['install', '-q', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`], { timeout: 600_000, maxBuffer: 16 << 20 })
    } catch (err) {
      const e = err as { stderr?: string, message: string }
      throw new Error(`cannot install moto ${MOTO_VERSION} (the S3 server the S3 origin tests run against) into ${VENV} with ${python}: ${e.stderr?.trim().split('\n').slice(-5).join(' | ') || e.message}`, { cause: err })
    }
    await writeFile(INSTALLED, `moto[server]==${MOTO_VERSION}\n`)
    return SERVER
  })()
  install.catch(() => { install = undefined })
  return install
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
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM')
      await exited
    }
  }
}
