import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors.ts'
import { scenariosFrom } from '../../src/sim/cli.ts'
import { readLabComparison } from '../../src/sim/lab-figures.ts'
import { tempDir } from '../support/temp.ts'

const MiB = 1024 * 1024

async function file (content: unknown): Promise<string> {
  const path = join(await tempDir('lab-figures-'), 'results.json')
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

describe('simulate --compare', () => {
  it('replays a lab run\'s results.json: its settings, and the last host of each warm or cold modelswarm run', async () => {
    const params = { hosts: 16, size: 64 * MiB, files: 4, line: 3_125_000, up: 781_250, down: 3_125_000, seederUp: 1_562_500, scenarios: ['warm', 'cold'] }
    const done = (ms: number[]): Array<{ doneMs: number }> => ms.map(doneMs => ({ doneMs }))
    const path = await file({
      params,
      runs: [
        { system: 'modelswarm', scenario: 'warm', hosts: done([90_000, 99_500]) },
        { system: 'modelswarm', scenario: 'cold', hosts: [...done([95_000]), {}] }, // a host that never finished: no figure
        { system: 'bittorrent', scenario: 'warm', hosts: done([105_550]) },
        { system: 'modelswarm', scenario: 'cold', hosts: [] }
      ]
    })
    const { figures, settings } = readLabComparison(path)
    expect(figures).toEqual([{ hosts: 16, start: 'warm', lastS: 99.5 }])
    const [s] = scenariosFrom(settings)
    expect(s).toMatchObject({ hosts: 16, modelBytes: 64 * MiB, files: 4, chunkSize: 128 * 1024, warm: true })
    expect(s).toMatchObject({ up: 781_250, down: 3_125_000, seederUp: 1_562_500, line: 3_125_000 })
  })

  it('takes a hand-written list of figures, and names the file and both forms for anything else', async () => {
    expect(readLabComparison(await file([{ hosts: 8, start: 'cold', lastS: 21.3 }])).figures).toEqual([{ hosts: 8, start: 'cold', lastS: 21.3 }])
    for (const bad of ['{not json', [{ hosts: 8 }], { params: {}, runs: [] }]) {
      const path = await file(bad)
      expect(() => readLabComparison(path)).toThrow(InvalidInputError)
      expect(() => readLabComparison(path)).toThrow(path)
    }
  })
})
