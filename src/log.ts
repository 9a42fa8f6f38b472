/** JSON logs to stderr (stdout is for results), one child logger per component. */
import { pino, type Logger } from 'pino'

export type { Logger }

export const DEFAULT_LOG_LEVEL = 'info'

export function createLogger (opts: { level?: string, name?: string } = {}): Logger {
  const level = opts.level ?? process.env.MODELSWARM_LOG_LEVEL ?? DEFAULT_LOG_LEVEL
  return pino({ level, name: opts.name, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }))
}

/** For library use and tests: a logger that drops everything. */
export const silentLogger: Logger = pino({ level: 'silent' })
