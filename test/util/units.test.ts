import { describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../src/errors.ts'
import { formatBytes, formatRate, parseBytes, parseDuration, parseRate } from '../../src/util/units.ts'

describe('parseBytes', () => {
  it.each([
    ['123', 123],
    ['0', 0],
    ['123B', 123],
    ['64MiB', 64 * 1024 ** 2],
    ['64 MiB', 64 * 1024 ** 2],
    ['64Mi', 64 * 1024 ** 2],
    ['4GB', 4e9],
    ['4G', 4e9],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['2k', 2000],
    ['2KiB', 2048],
    ['1TiB', 1024 ** 4],
    ['1.001KiB', 1025],
    [' 8MB ', 8e6]
  ])('%s → %d', (text, bytes) => {
    expect(parseBytes(text)).toBe(bytes)
  })

  it.each(['', 'MiB', '-1', '1.2.3', '64mb', '64Mb', '64iB', '0.5B', '1.5', '1e3', '99999PiB', 'ten', '64 MiB/s', '1XB'])('rejects %j naming the accepted forms', text => {
    expect(() => parseBytes(text)).toThrow(InvalidInputError)
    expect(() => parseBytes(text)).toThrow(/64MiB, 4GB/)
  })
})

describe('parseRate', () => {
  it.each([
    ['400MiB/s', 400 * 1024 ** 2],
    ['50MB/s', 50e6],
    ['50MBps', 50e6],
    ['1Gbit/s', 1e9 / 8],
    ['100Mbps', 100e6 / 8],
    ['10Mb/s', 10e6 / 8],
    ['1Gibit/s', 1024 ** 3 / 8],
    ['2000B/s', 2000],
    ['8bit/s', 1]
  ])('%s → %d bytes/s', (text, rate) => {
    expect(parseRate(text)).toBe(rate)
  })

  it.each(['', '400', '2000', '400MiB', '/s', 'fast', '-1MB/s', '1Gbit', '1Gbit/h', 'iB/s'])('rejects %j naming the accepted forms', text => {
    expect(() => parseRate(text)).toThrow(InvalidInputError)
    expect(() => parseRate(text)).toThrow(/400MiB\/s.*1Gbit\/s/)
  })
})

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['2d', 172_800_000],
    ['0', 0]
  ])('%s → %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms)
  })

  it.each(['', '30', 's', '5 m', '1h 30m', '-1s', '30sec', '1y', 'ms'])('rejects %j naming the accepted forms', text => {
    expect(() => parseDuration(text)).toThrow(InvalidInputError)
    expect(() => parseDuration(text)).toThrow(/250ms, 30s, 5m/)
  })
})

describe('formatBytes / formatRate', () => {
  it.each([
    [0, '0B'],
    [123, '123B'],
    [1024, '1KiB'],
    [1536, '1.5KiB'],
    [64 * 1024 ** 2, '64MiB'],
    [1.25 * 1024 ** 3, '1.25GiB'],
    [1023.999 * 1024, '1MiB'],
    [3 * 1024 ** 5, '3PiB']
  ])('%d → %s', (n, text) => {
    expect(formatBytes(n)).toBe(text)
  })

  it('round-trips through parseBytes within the three digits shown', () => {
    for (const n of [1, 999, 4096, 5_000_000, 123_456_789_012]) {
      const back = parseBytes(formatBytes(n))
      expect(Math.abs(back - n) / n).toBeLessThan(0.01)
    }
  })

  it('formats rates per second', () => {
    expect(formatRate(400 * 1024 ** 2)).toBe('400MiB/s')
    expect(parseRate(formatRate(400 * 1024 ** 2))).toBe(400 * 1024 ** 2)
  })

  it('refuses negative or non-finite input', () => {
    expect(() => formatBytes(-1)).toThrow(RangeError)
    expect(() => formatBytes(Number.NaN)).toThrow(RangeError)
  })
})
