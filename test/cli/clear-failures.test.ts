/**
 * Inputs that used to hang, spin or wait out a 10-minute timeout, run as a user runs them (the real
 * binary, real processes): each now ends at once with a clear error and its documented status, or works.
 */
import { describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { BIN, run, startFetch, startSeeder, type TestModel, track } from '../support/cli.ts'
import { tempDir } from '../support/temp.ts'


async function emptyModel (): Promise<TestModel> {
  const root = await tempDir('ms-failures-')
  const source = join(root, 'origin', 'it-llm', 'v1')
  await mkdir(source, { recursive: true })
  await writeFile(join(source, 'empty.txt'), '')
  await writeFile(join(source, '_SUCCESS'), '')
  return { root, origin: join(root, 'origin'), source, name: 'it-llm', version: 'v1', size: 0 }
}

describe('clear failures instead of hangs', () => {
  it('a version whose files are all empty completes, and --out DIR/ is DIR', async () => {
    const model = await emptyModel()
    const seeder = track(await startSeeder(model))
    const out = join(model.root, 'out')
    const f = track(startFetch(seeder, `${out}/`, ['--timeout', '60s']))
    expect(await f.exited).toBe(0)
    expect((await readdir(model.root)).sort()).toEqual(['origin', 'out', 'out.modelswarm', 'seeder'])
    expect(await readdir(out)).toEqual(['empty.txt'])
    // The same directory without the slash is the same store: the rerun finds it complete.
    const again = track(startFetch(seeder, out))
    expect(await again.exited).toBe(0)
  })

  it('--out under /proc is a usage error at once, not a spin', async () => {
    const model = await emptyModel()
    const seeder = track(await startSeeder(model))
    const f = track(startFetch(seeder, '/proc/modelswarm-nope', ['--timeout', '10m']))
    expect(await f.exited).toBe(2)
    expect(f.text.join('\n')).toMatch(/cannot create \/proc\/modelswarm-nope/)
  })

  it('a bootstrap address whose /p2p/ names another peer is an integrity error at once', async () => {
    const model = await emptyModel()
    const seeder = track(await startSeeder(model))
    const other = track(await startSeeder({ ...model, root: join(model.root, 'other') }))
    const wrong = seeder.addr.replace(seeder.peerId, other.peerId)
    const f = track(startFetch({ addr: wrong, peerId: other.peerId }, join(model.root, 'x'), ['--timeout', '10m']))
    expect(await f.exited).toBe(4)
    expect(f.text.join('\n')).toMatch(/not the peer the address names/)
  })

  it('seed --admin without a port is a usage error, and an admin port in use ends the seeder', async () => {
    const model = await emptyModel()
    const noPort = track(run(['seed', '--origin', model.origin, '--cache-dir', join(model.root, 'a'), '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', 'localhost']))
    expect(await noPort.exited).toBe(2)
    expect(noPort.text.join('\n')).toMatch(/--admin "localhost" must be host:port/)
    const busy = createServer()
    await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
    const port = (busy.address() as { port: number }).port
    try {
      const inUse = track(run(['seed', '--origin', model.origin, '--cache-dir', join(model.root, 'b'), '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', `127.0.0.1:${port}`]))
      expect(await inUse.exited).toBe(1)
      expect(inUse.text.join('\n')).toMatch(/EADDRINUSE/)
    } finally {
      busy.close()
    }
  })

  it('a seeder whose cache directory vanished still stops on SIGTERM', async () => {
    const model = await emptyModel()
    const seeder = track(await startSeeder(model))
    await seeder.waitFor(m => m.msg === 'version pulled')
    await rm(join(model.root, 'seeder'), { recursive: true, force: true })
    expect(await seeder.kill('SIGTERM')).not.toBeNull()
  })

  it('the launcher under an older Node forwards SIGTERM to its Node 24 child and ends with it', async () => {
    const model = await emptyModel()
    const system = '/usr/bin/node'
    const proc = spawn(system, [BIN, 'seed', '--origin', model.origin, '--cache-dir', join(model.root, 'c'), '--listen', '/ip4/127.0.0.1/tcp/0', '--admin', '127.0.0.1:0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] })
    await new Promise(resolve => proc.stdout.once('data', resolve))
    const child = await childOf(proc.pid!)
    expect(child).toBeDefined()
    const exited = new Promise(resolve => proc.once('exit', resolve))
    proc.kill('SIGTERM')
    await exited
    expect(alive(child!)).toBe(false)
  })
})

async function childOf (pid: number): Promise<number | undefined> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  const first = text.trim().split(/\s+/)[0]
  return first === undefined || first === '' ? undefined : Number(first)
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
