/**
 * The seeder's cache limits with real processes (a local-directory origin: the policy does not depend
 * on the origin): keep-K retention with preheat on demand, capacity with LRU eviction and pins, and a
 * clear refusal when a version cannot fit.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateModel } from '../../src/cli/demo-model.ts'
import { type Proc, run, type SeederProc, track } from '../support/cli.ts'
import { models, waitForVersion } from '../hdfs/seeder-process.ts'

const MiB = 1024 * 1024
const roots: string[] = []
afterAll(async () => { await Promise.all(roots.map(r => rm(r, { recursive: true, force: true }))) })
const tempRoot = async (): Promise<string> => { const r = await mkdtemp(join(tmpdir(), 'ms-cache-')); roots.push(r); return r }

async function publish (origin: string, name: string, version: string, size: number): Promise<void> {
  const dir = join(origin, name, version)
  await mkdir(dir, { recursive: true })
  await generateModel(dir, size, 1)
  await writeFile(join(dir, '_SUCCESS'), '')
}

async function seed (root: string, extra: string[]): Promise<SeederProc> {
  const p = run(['--log-level', 'info', 'seed', '--origin', join(root, 'origin'), '--cache-dir', join(root, 'cache'), '--listen', '/ip4/127.0.0.1/tcp/0',
    '--admin', '127.0.0.1:0', '--poll-interval', '300ms', '--chunk-size', '1MiB', '--json', ...extra])
  const info = await p.waitFor(m => typeof m.peerId === 'string', 30_000)
  return Object.assign(p, { peerId: info.peerId as string, addr: info.addrs[0] as string, admin: info.admin as string })
}

const held = async (admin: string): Promise<string[]> => (await models(admin)).versions.map(v => `${v.name}@${v.version}:${v.state}`).sort()

describe('seeder cache limits', () => {
  it('with --keep-versions 1 only the newest version is pulled; an older one is pulled on POST /v1/preheat (`modelswarm preheat`)', async () => {
    const root = await tempRoot()
    await publish(join(root, 'origin'), 'llm', 'v1', 4 * MiB)
    await publish(join(root, 'origin'), 'llm', 'v2', 4 * MiB)
    const seeder = track(await seed(root, ['--keep-versions', '1', '--in-use-window', '1h']))
    await waitForVersion(seeder.admin, 'llm@v2', v => v.state === 'ready')
    await seeder.waitFor(m => m.msg === 'version pulled')
    expect(await held(seeder.admin)).toEqual(['llm@v2:ready'])

    const preheat = async (version: string, admin = seeder.admin.replace('http://', '')): Promise<Proc & { code: number | null }> => {
      const p = run(['preheat', `llm@${version}`, '--admin', admin, '--json'])
      return Object.assign(p, { code: await p.exited })
    }
    const accepted = await preheat('v1')
    expect(accepted.code).toBe(0)
    expect(accepted.stdout).toEqual([{ ok: true, name: 'llm', version: 'v1', state: 'pulling' }])
    await waitForVersion(seeder.admin, 'llm@v1', v => v.state === 'ready')
    const missing = await preheat('v3')
    expect(missing.code).toBe(3)
    expect(missing.text.join('\n')).toMatch(/llm@v3: .*v3/)
    const unreachable = await preheat('v1', '127.0.0.1:1')
    expect(unreachable.code).toBe(1)
    expect(unreachable.text.join('\n')).toMatch(/cannot reach the seeder's admin endpoint[\s\S]*hint: check --admin/)
    expect((await fetch(`${seeder.admin}/v1/preheat`, { method: 'POST', body: '{"name":1}' })).status).toBe(400)
    expect(await held(seeder.admin)).toEqual(['llm@v1:ready', 'llm@v2:ready'])
  })

  it('over --cache-capacity the least recently used unpinned version is evicted and stays evicted across a restart; a version that cannot fit is refused with a reason', async () => {
    const root = await tempRoot()
    const origin = join(root, 'origin')
    await publish(origin, 'a', 'v1', 8 * MiB)
    await publish(origin, 'b', 'v1', 8 * MiB)
    const seeder = track(await seed(root, ['--cache-capacity', '20MiB', '--pin', 'a@v1', '--in-use-window', '0s']))
    await waitForVersion(seeder.admin, 'a@v1', v => v.state === 'ready')
    await waitForVersion(seeder.admin, 'b@v1', v => v.state === 'ready')

    await publish(origin, 'c', 'v1', 8 * MiB)
    await waitForVersion(seeder.admin, 'c@v1', v => v.state === 'ready')
    const evicted = await seeder.waitFor(m => m.msg === 'version evicted')
    expect(evicted).toMatchObject({ version: 'b@v1', reason: 'room for c@v1' })
    await expect(stat(join(root, 'cache', 'versions', 'b', 'v1.modelswarm'))).rejects.toThrow(/ENOENT/)
    expect(await held(seeder.admin)).toEqual(['a@v1:ready', 'c@v1:ready'])

    // 30 MiB cannot fit beside the pinned 8 MiB: refused, and nothing is evicted for it.
    await publish(origin, 'd', 'v1', 30 * MiB)
    const refused = await waitForVersion(seeder.admin, 'd@v1', v => v.state === 'failed')
    expect(refused.error).toMatch(/d@v1 needs \d+ bytes but the cache can hold only \d+ more/)
    expect(await held(seeder.admin)).toEqual(['a@v1:ready', 'c@v1:ready', 'd@v1:failed'])
    // b was evicted and is not pulled back unasked, by this run or the next.
    expect((await models(seeder.admin)).versions.some(v => v.name === 'b')).toBe(false)
    await seeder.kill('SIGTERM')
    const again = track(await seed(root, ['--cache-capacity', '20MiB', '--pin', 'a@v1', '--in-use-window', '0s']))
    await waitForVersion(again.admin, 'd@v1', v => v.state === 'failed')
    await new Promise(resolve => setTimeout(resolve, 1500)) // several more polls
    const after = await models(again.admin)
    expect(after.versions.map(v => `${v.name}@${v.version}:${v.state}`).sort()).toEqual(['a@v1:ready', 'c@v1:ready', 'd@v1:failed'])
    expect(after.line.originBytesRead).toBe(0)
  })
})
