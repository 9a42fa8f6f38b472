import { describe, expect, it } from 'vitest'
import { formatRow, runOne, scenariosFrom } from '../../src/sim/cli.ts'

describe('simulate CLI', () => {
  it('runs every combination of the listed values, over the lab defaults', () => {
    const runs = scenariosFrom(new Map([['hosts', ['8', '16']], ['start', ['warm', 'cold']], ['chunk', ['1MiB']]]))
    expect(runs.map(s => [s.hosts, s.warm, s.chunkSize])).toEqual([[8, true, 2 ** 20], [8, false, 2 ** 20], [16, true, 2 ** 20], [16, false, 2 ** 20]])
    // the lists are applied to copies: one run's options never leak into another's
    runs[0]!.driver.maxNeighbours = 99
    expect(runs[1]!.driver.maxNeighbours).toBe(12)
    expect(runs[0]!.modelBytes).toBe(64 * 2 ** 20)
  })

  it('chunks the model as the seeder would unless --chunk says otherwise', () => {
    const chunks = (values: Array<[string, string[]]>): number[] => scenariosFrom(new Map(values)).map(s => s.chunkSize)
    expect(chunks([])).toEqual([128 * 1024])
    expect(chunks([['size', ['64MiB', '100GiB']]])).toEqual([128 * 1024, 64 * 2 ** 20])
    expect(chunks([['size', ['100GiB']], ['chunk', ['1MiB']]])).toEqual([2 ** 20])
  })

  it('refuses values it cannot read', () => {
    expect(() => scenariosFrom(new Map([['start', ['tepid']]]))).toThrow(/warm or cold/)
    expect(() => scenariosFrom(new Map([['hosts', ['0']]]))).toThrow(/--hosts/)
    expect(() => scenariosFrom(new Map([['up', ['fast']]]))).toThrow(/invalid rate/)
  })

  it('prints the simulated figures beside a lab figure', () => {
    const row = runOne(scenariosFrom(new Map([['hosts', ['2']], ['size', ['8MiB']]]))[0]!)
    const text = formatRow(row, 2 * row.summary.lastS)
    expect(text).toMatch(/N=2 F=8MiB/)
    expect(text).toMatch(/sim ÷ lab 0\.50$/)
  })

  it('says how far a run got when its CPU limit ended it', () => {
    const row = runOne(scenariosFrom(new Map([['hosts', ['100']], ['chunk', ['256KiB']]]))[0]!, { stop: () => true })
    expect(formatRow(row)).toMatch(/done \d+\/100 \| ended at t = [\d.]+ s \(CPU limit\), chunks held [\d.]+ %/)
  })
})
