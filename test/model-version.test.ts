import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../src/errors.ts'
import { formatModelRef, formatModelVersion, parseModelRef, parseModelVersion } from '../src/model-version.ts'

describe('model version identity', () => {
  it('parses NAME@VERSION', () => {
    expect(parseModelVersion('qa-llm@2026-11-24T10-00')).toEqual({ name: 'qa-llm', version: '2026-11-24T10-00' })
    expect(() => parseModelVersion('qa-llm')).toThrow(/NAME@VERSION/)
    expect(() => parseModelVersion('@v1')).toThrow(/NAME@VERSION/)
    expect(() => parseModelVersion('qa-llm@latest')).toThrow(/NAME@VERSION/)
  })

  it('parses NAME, NAME@latest and NAME@VERSION as requests; latest means the newest', () => {
    expect(parseModelRef('qa-llm')).toEqual({ name: 'qa-llm', version: undefined })
    expect(parseModelRef('qa-llm@latest')).toEqual({ name: 'qa-llm', version: undefined })
    expect(parseModelRef('qa-llm@v1.2+build:7')).toEqual({ name: 'qa-llm', version: 'v1.2+build:7' })
  })

  it('refuses what could name a path or is not a model at all, as a usage error', () => {
    for (const bad of ['../etc', '.', '', 'a/b', 'qa@', 'qa@v1@v2', 'qa@../x', '-x', 'x'.repeat(129), 'qa llm', 'qa@v 1']) {
      expect(() => parseModelRef(bad), bad).toThrow(InvalidInputError)
    }
  })

  it('formats what it parses', () => {
    expect(formatModelVersion({ name: 'm', version: 'v1' })).toBe('m@v1')
    expect(formatModelRef({ name: 'm', version: undefined })).toBe('m@latest')
    expect(formatModelRef(parseModelRef('m@v2'))).toBe('m@v2')
  })
})
