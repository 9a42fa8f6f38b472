/**
 * The Grafana dashboard in deploy/grafana: it parses, its panels are well formed, every metric it queries
 * is one a real seeder exports (scraped from /metrics after a pull and a fetch), and every modelswarm
 * metric beyond Node's process metrics is on it.
 */
import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { makeModel, startFetch, startSeeder, track } from '../support/cli.ts'

const MiB = 1024 * 1024
const DASHBOARD = new URL('../../deploy/grafana/modelswarm.json', import.meta.url)

interface Panel { id: number, type: string, title: string, targets?: Array<{ expr: string, refId: string }>, panels?: Panel[] }

/** Metric name → sample count, from Prometheus text (TYPE lines give the names of metrics with no sample yet). */
function exported (text: string): Map<string, number> {
  const names = new Map<string, number>()
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) /.exec(line)
    if (type !== null) names.set(type[1]!, names.get(type[1]!) ?? 0)
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line)
    if (sample !== null) names.set(sample[1]!, (names.get(sample[1]!) ?? 0) + 1)
  }
  return names
}

const metricNames = (expr: string): string[] => [...expr.matchAll(/\bmodelswarm_[a-z0-9_]+\b/g)].map(m => m[0])

describe('Grafana dashboard', () => {
  it('queries only metrics a real seeder exports, and shows every seeder metric', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8')) as { uid: string, panels: Panel[], templating: { list: Array<{ query?: unknown, definition?: string }> } }
    const panels = dashboard.panels.flatMap(p => [p, ...(p.panels ?? [])])
    expect(new Set(panels.map(p => p.id)).size).toBe(panels.length)
    const exprs = panels.flatMap(p => p.targets ?? []).map(t => t.expr)
    for (const p of panels.filter(p => p.type !== 'row')) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0)
      expect(new Set(p.targets!.map(t => t.refId)).size, p.title).toBe(p.targets!.length)
    }
    for (const expr of exprs) {
      expect(metricNames(expr).length, expr).toBeGreaterThan(0)
      // Brackets balance (there is no PromQL parser here; a dropped parenthesis is the usual slip).
      for (const [open, close] of [['(', ')'], ['{', '}'], ['[', ']']] as const) expect(expr.split(open).length, expr).toBe(expr.split(close).length)
    }
    const queried = new Set([...exprs, ...dashboard.templating.list.map(v => v.definition ?? '')].flatMap(metricNames))

    const model = await makeModel(4 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    await seeder.waitFor(m => m.msg === 'version pulled')
    const host = track(startFetch(seeder, join(model.root, 'host'), ['--linger', '0s']))
    expect(await host.exited).toBe(0)
    const metrics = exported(await (await fetch(`${seeder.admin}/metrics`)).text())

    const missing = [...queried].filter(name => !metrics.has(name))
    expect(missing, 'queried but not exported').toEqual([])
    const empty = [...queried].filter(name => metrics.get(name) === 0)
    expect(empty, 'queried but without a sample after a pull and a fetch').toEqual([])
    const own = [...metrics.keys()].filter(n => n.startsWith('modelswarm_') && !n.startsWith('modelswarm_process_') && !n.startsWith('modelswarm_nodejs_'))
    expect(own.filter(n => !queried.has(n)), 'exported but not on the dashboard').toEqual([])
  })
})
