/**
 * Human units for flags, config and logs. Sizes and rates follow Kubernetes quantities: SI prefixes are
 * decimal (k = 1000), IEC prefixes binary (Ki = 1024). Case says bytes or bits: `B` is a byte and `b` a bit,
 * so `100Mb/s` is a network link in megabits and `64mb` is refused rather than guessed.
 */
import { InvalidInputError } from '../errors.ts'

const NUMBER = String.raw`(\d+(?:\.\d+)?)`
const PREFIX = String.raw`([kKmMgGtTpP]?)([iI]?)`
const SIZE_RE = new RegExp(String.raw`^${NUMBER}\s*${PREFIX}(B?)$`)
// A unit is required: a bare `400` read as bytes per second silently throttled a line to 400 B/s.
const RATE_RE = new RegExp(String.raw`^${NUMBER}\s*${PREFIX}(B|b|bit)(?:/s|ps)$`)
const DURATION_PART_RE = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y

const SIZE_FORMS = 'a whole number of bytes or a number with a unit, e.g. 123, 64MiB, 4GB, 1.5GiB (k/KB M/MB G/GB T/TB are powers of 1000, KiB MiB GiB TiB powers of 1024)'
const RATE_FORMS = 'bytes or bits per second with a unit, e.g. 400MiB/s, 50MB/s, 1Gbit/s, 100Mbps, 2000B/s'
const DURATION_FORMS = 'one or more number+unit pairs with units ms, s, m, h, d, e.g. 250ms, 30s, 5m, 1h30m (a bare 0 is also accepted)'

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** Parses a size such as `64MiB`, `4GB` or `123` into a whole number of bytes (plain byte counts must be whole). */
export function parseBytes (text: string): number {
  const m = SIZE_RE.exec(text.trim())
  if (m === null || (m[2] === '' && (m[3] !== '' || m[1]!.includes('.')))) throw new InvalidInputError(`invalid size "${text}": expected ${SIZE_FORMS}`)
  // Fractions of a unit round to the byte, so formatBytes output ("4.77MiB") reads back.
  const bytes = Math.round(Number(m[1]) * multiplier(m[2]!, m[3] !== ''))
  if (!Number.isSafeInteger(bytes)) throw new InvalidInputError(`invalid size "${text}": above 2^53 bytes; expected ${SIZE_FORMS}`)
  return bytes
}

/** Parses a rate such as `400MiB/s` or `1Gbit/s` into bytes per second (possibly fractional). */
export function parseRate (text: string): number {
  const m = RATE_RE.exec(text.trim())
  if (m === null || (m[2] === '' && m[3] !== '')) throw new InvalidInputError(`invalid rate "${text}": expected ${RATE_FORMS}`)
  const perBit = m[4] === 'b' || m[4] === 'bit' ? 1 / 8 : 1
  const rate = Number(m[1]) * multiplier(m[2] ?? '', m[3] !== undefined && m[3] !== '') * perBit
  if (!Number.isFinite(rate)) throw new InvalidInputError(`invalid rate "${text}": expected ${RATE_FORMS}`)
  return rate
}

/** Parses a duration such as `250ms`, `30s` or `1h30m` into milliseconds. */
export function parseDuration (text: string): number {
  const s = text.trim()
  if (s === '0') return 0
  if (s === '') throw new InvalidInputError(`invalid duration "${text}": expected ${DURATION_FORMS}`)
  let ms = 0
  DURATION_PART_RE.lastIndex = 0
  while (DURATION_PART_RE.lastIndex < s.length) {
    const m = DURATION_PART_RE.exec(s)
    if (m === null) throw new InvalidInputError(`invalid duration "${text}": expected ${DURATION_FORMS}`)
    ms += Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS]
  }
  return ms
}

/** Formats bytes with a binary unit and at most three significant digits, e.g. `64MiB`, `1.5GiB`; parseBytes reads it back. */
export function formatBytes (bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`cannot format ${bytes} bytes`)
  let i = 0
  let value = bytes
  while (i < IEC_UNITS.length - 1 && round3(value) >= 1024) {
    value /= 1024
    i++
  }
  return `${round3(value)}${IEC_UNITS[i]!}`
}

/** Formats milliseconds in the largest unit that divides them, e.g. `5s`, `10m`, `250ms`; parseDuration reads it back. */
export function formatDuration (ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`cannot format a duration of ${ms} ms`)
  if (ms === 0) return '0s'
  const unit = (['d', 'h', 'm', 's', 'ms'] as const).find(u => ms % DURATION_MS[u] === 0)!
  return `${ms / DURATION_MS[unit]}${unit}`
}

/** Formats bytes per second, e.g. `400MiB/s`. */
export function formatRate (bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`
}

function multiplier (prefix: string, binary: boolean): number {
  const power = ' kmgtp'.indexOf(prefix.toLowerCase() || ' ')
  return (binary ? 1024 : 1000) ** power
}

function round3 (v: number): number {
  return Number(v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0))
}
