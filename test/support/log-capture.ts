/** A pino logger at debug whose lines a test reads back as objects. */
import { Writable } from 'node:stream'
import { pino } from 'pino'

export function captureLog (): { log: pino.Logger, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const sink = new Writable({ write (chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } })
  return { log: pino({ level: 'debug' }, sink), lines }
}
