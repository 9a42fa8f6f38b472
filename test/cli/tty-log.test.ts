/**
 * Logs on a terminal: pino's JSON lines become human lines written above the progress bar, which is
 * cleared first and redrawn after. Unit tests for the formatter and the line discipline, and a real fetch
 * run under a pseudo-terminal (`script` from util-linux) that must never print raw JSON.
 */
import { describe, expect, it } from 'vitest'
import { spawn, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { pino } from 'pino'
import { formatLogLine, TtyLog, wantsTtyLog } from '../../src/cli/tty-log.ts'
import { BIN, makeModel, startSeeder, track } from '../support/cli.ts'

const CLEAR = '\r\x1b[K'
const MiB = 1024 * 1024

describe('terminal log lines', () => {
  it('a pino line becomes time, level, component, message and the other fields', () => {
    const time = Date.UTC(2026, 10, 30, 3, 4, 5)
    const line = JSON.stringify({ level: 40, time, pid: 7, component: 'fetch', version: 'qa@v1', reason: 'no neighbours', chunks: 3, err: { type: 'Error', message: 'boom', stack: '…' }, msg: 'download stalled' })
    expect(formatLogLine(line, { color: false })).toBe(`${new Date(time).toTimeString().slice(0, 8)} WARN  [fetch] download stalled version=qa@v1 reason="no neighbours" chunks=3 err="boom"`)
    const yellow = formatLogLine(line)
    expect(yellow.startsWith('\x1b[33m') && yellow.endsWith('\x1b[39m') && yellow.includes('download stalled')).toBe(true)
    expect(formatLogLine('not json')).toBe('not json')
  })

  it('formats for a person only on a terminal without --json', () => {
    expect(wantsTtyLog({ isTTY: true }, false)).toBe(true)
    expect(wantsTtyLog({ isTTY: true }, true)).toBe(false)
    expect(wantsTtyLog({}, false)).toBe(false)
  })

  it('a log line clears the status line, prints above it, and draws it again', () => {
    let screen = ''
    const tty = new TtyLog({ write: s => { screen += s } }, { color: false })
    const log = pino({ base: {}, timestamp: false }, tty)
    log.info('before the bar')
    tty.status('m@v1  40% [####......]')
    log.warn({ peer: 'p1' }, 'peer banned')
    tty.status('m@v1  50% [#####.....]')
    tty.endStatus()
    log.info('after the bar')
    expect(screen).toBe([
      ' INFO  before the bar\n',
      `${CLEAR}m@v1  40% [####......]`,
      `${CLEAR} WARN  peer banned peer=p1\nm@v1  40% [####......]`,
      `${CLEAR}m@v1  50% [#####.....]`,
      '\n',
      ' INFO  after the bar\n'
    ].join(''))
  })
})

describe('modelswarm fetch on a terminal', () => {
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('draws the bar and prints logs as lines, never raw JSON', async () => {
    const model = await makeModel(8 * MiB)
    const seeder = track(await startSeeder(model, ['--chunk-size', '1MiB']))
    const quote = (s: string): string => `'${s.replace(/'/g, '\'\\\'\'')}'`
    const fetch = [process.execPath, BIN, '--log-level', 'debug', 'fetch', model.name, '--out', join(model.root, 'out'), '--bootstrap', seeder.addr, '--trust', seeder.peerId, '--listen', '/ip4/127.0.0.1/tcp/0', '--linger', '0s']
    // script(1) runs the command on a new pseudo-terminal and copies what it prints to our stdout.
    const proc = spawn('script', ['-qec', fetch.map(quote).join(' '), '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let screen = ''
    proc.stdout.on('data', (b: Buffer) => { screen += b.toString('utf8') })
    const code = await new Promise(resolve => proc.once('exit', resolve))
    expect(code, screen).toBe(0)
    const lines = screen.replaceAll(CLEAR, '\n').split(/\r\n|\n|\r/).filter(l => l.trim() !== '')
    expect(lines.filter(l => l.trimStart().startsWith('{')), screen).toEqual([])
    expect(lines.some(l => /^\d\d:\d\d:\d\d INFO {2}\[fetch\] download complete .*version=it-llm@v1/.test(l)), screen).toBe(true)
    expect(lines.some(l => /^\d\d:\d\d:\d\d DEBUG \[fetch\] neighbour joined .*role=seeder/.test(l)), screen).toBe(true)
    expect(lines.some(l => l.startsWith('it-llm@v1 100% [##############################] 8MiB/8MiB')), screen).toBe(true)
  })
})
