/**
 * The seeder's admin API with a real seeder process: Prometheus metrics whose line-bytes counter equals
 * the model size after a pull, a readiness probe that fails once the origin has been unreachable past its
 * grace period, and a preheat that needs the admin token when one is configured.
 */
import { describe, expect, it } from 'vitest'
import { rename, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { makeModel, run, startSeeder, track } from '../support/cli.ts'

const MiB = 1024 * 1024

/** Prometheus text exposition → sample name with labels → value. */
function parseMetrics (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line)
    expect(m, `not a Prometheus sample line: ${line}`).not.toBeNull()
    out.set(m![1]!, Number(m![2]))
  }
  return out
}

describe('seeder admin API', () => {
  it('serves metrics, fails readiness when the origin is gone past the grace, and guards preheat with the token', async () => {
    const model = await makeModel(8 * MiB)
    const tokenFile = join(model.root, 'admin-token')
    await writeFile(tokenFile, 's3cret-token\n')
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB', '--admin-token-file', tokenFile, '--origin-grace', '1s']))
    await seeder.waitFor(m => m.msg === 'version pulled')

    const res = await fetch(`${seeder.admin}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const metrics = parseMetrics(await res.text())
    const labels = `{model="${model.name}",version="${model.version}"}`
    expect(metrics.get('modelswarm_origin_read_bytes_total')).toBe(model.size)
    expect(metrics.get(`modelswarm_pulled_bytes_total${labels}`)).toBe(model.size)
    expect(metrics.get(`modelswarm_version_state{model="${model.name}",version="${model.version}",state="ready"}`)).toBe(1)
    expect(metrics.get('modelswarm_origin_up')).toBe(1)
    expect(metrics.has('modelswarm_process_cpu_user_seconds_total')).toBe(true)

    expect((await fetch(`${seeder.admin}/healthz`)).status).toBe(200)
    expect((await fetch(`${seeder.admin}/readyz`)).status).toBe(200)
    // A request target no URL parser takes (`//`), before any token check: 400, and the seeder lives on.
    const raw = connect(Number(new URL(seeder.admin).port), '127.0.0.1')
    raw.end('GET // HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n')
    const answer: Buffer[] = []
    for await (const b of raw) answer.push(b as Buffer)
    expect(Buffer.concat(answer).toString()).toMatch(/^HTTP\/1\.1 400 /)
    expect((await fetch(`${seeder.admin}/healthz`)).status).toBe(200)

    const admin = seeder.admin.replace('http://', '')
    const denied = track(run(['preheat', `${model.name}@${model.version}`, '--admin', admin]))
    expect(await denied.exited).toBe(1)
    expect(denied.text.join('\n')).toMatch(/admin token/)
    const allowed = track(run(['preheat', `${model.name}@${model.version}`, '--admin', admin, '--admin-token-file', tokenFile]))
    expect(await allowed.exited).toBe(0)

    // The origin goes away (its root is no longer a directory): after the grace, not ready, with the reason.
    await rename(model.origin, `${model.origin}.gone`)
    await writeFile(model.origin, 'not a directory')
    let ready: Response | undefined
    for (let i = 0; i < 100 && ready?.status !== 503; i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      ready = await fetch(`${seeder.admin}/readyz`)
    }
    expect(ready!.status).toBe(503)
    expect(((await ready!.json()) as { reasons: string[] }).reasons).toEqual([expect.stringMatching(/^origin unreachable for \d+ s/)])
    expect(parseMetrics(await (await fetch(`${seeder.admin}/metrics`)).text()).get('modelswarm_origin_up')).toBe(0)
  })
})
