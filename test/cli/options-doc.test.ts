import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { README, withOptionsTable } from '../../src/cli/options-doc.ts'
import { OPTIONS } from '../../src/cli/options.ts'

describe('options documentation', () => {
  it('the README table is the one generated from the options table (run `npm run docs:options`)', async () => {
    const readme = await readFile(README, 'utf8')
    expect(withOptionsTable(readme)).toBe(readme)
  })

  it('every option has a MODELSWARM_ env var and help', () => {
    for (const spec of Object.values(OPTIONS)) {
      expect(spec.env).toMatch(/^MODELSWARM_[A-Z][A-Z0-9_]*$/)
      expect(spec.help.length).toBeGreaterThan(10)
    }
  })
})
