/**
 * Logs on a terminal. pino writes JSON lines for machines; on a TTY (and without --json) they become short
 * human lines (`12:01:02 WARN  download stalled reason="no neighbours"`), written above the status line
 * (the progress bar): the bar is cleared first and drawn again after, so a log line never lands inside it.
 * A small formatter rather than pino-pretty, whose dozen dependencies buy colours and options not needed here.
 */
import { styleText } from 'node:util'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }
/** Fields every line carries, shown in the prefix or not at all. */
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'component', 'name'])
const CLEAR_LINE = '\r\x1b[K'

export interface TtyLogOptions {
  /** Colour WARN and above. @default true */
  color?: boolean
}

/** Whether logs are formatted for a person: on a terminal, unless --json asked for machine output. */
export function wantsTtyLog (stream: { isTTY?: boolean }, json: boolean): boolean {
  return stream.isTTY === true && !json
}

/**
 * One pino JSON line as a human line: local time, level, `[component]`, message, then the other fields as
 * `key=value` (strings quoted when they hold spaces, errors by their message). A line that is not JSON is
 * returned as it is.
 */
export function formatLogLine (line: string, opts: TtyLogOptions = {}): string {
  let rec: Record<string, unknown>
  try {
    rec = JSON.parse(line) as Record<string, unknown>
  } catch {
    return line
  }
  if (rec === null || typeof rec !== 'object') return line
  const level = LEVELS[rec.level as number] ?? String(rec.level)
  const time = typeof rec.time === 'number' ? new Date(rec.time).toTimeString().slice(0, 8) : ''
  const head = `${time} ${level.padEnd(5)}${typeof rec.component === 'string' ? ` [${rec.component}]` : ''} ${String(rec.msg ?? '')}`
  const fields = Object.entries(rec).filter(([k]) => !HIDDEN.has(k)).map(([k, v]) => `${k}=${fieldText(v)}`)
  const text = [head, ...fields].join(' ')
  if (opts.color === false || (rec.level as number) < 40) return text
  return styleText((rec.level as number) >= 50 ? 'red' : 'yellow', text, { validateStream: false })
}

function fieldText (v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)
  // pino's error serializer: { type, message, stack }
  if (typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string') return JSON.stringify((v as { message: string }).message)
  return JSON.stringify(v)
}

/**
 * A pino destination for a terminal that also owns its status line. Writes are synchronous, so a log
 * line and the bar never interleave mid-line.
 */
export class TtyLog {
  readonly #out: { write: (s: string) => unknown }
  readonly #opts: TtyLogOptions
  #status = ''

  constructor (out: { write: (s: string) => unknown }, opts: TtyLogOptions = {}) {
    this.#out = out
    this.#opts = opts
  }

  /** pino calls this with one or more JSON lines. */
  write (chunk: string): void {
    const lines = chunk.split('\n').filter(l => l !== '').map(l => formatLogLine(l, this.#opts))
    if (lines.length === 0) return
    this.#out.write(`${this.#status === '' ? '' : CLEAR_LINE}${lines.join('\n')}\n${this.#status}`)
  }

  /** Draws `line` as the status line, in place of the last one. */
  status (line: string): void {
    this.#status = line
    this.#out.write(`${CLEAR_LINE}${line}`)
  }

  /** Leaves the status line on screen as it is and moves below it; logs after this print plainly. */
  endStatus (): void {
    if (this.#status !== '') this.#out.write('\n')
    this.#status = ''
  }
}
