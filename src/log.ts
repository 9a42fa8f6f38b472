/** JSON logs to stderr (stdout is for results), one child logger per component. */
import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

export const DEFAULT_LOG_LEVEL = 'info'

/** `destination`: where the JSON lines go instead of stderr (the CLI's terminal formatter). */
export function createLogger (opts: { level?: string, name?: string, destination?: DestinationStream } = {}): Logger {
  const level = opts.level ?? process.env.MODELSWARM_LOG_LEVEL ?? DEFAULT_LOG_LEVEL
  // A destination, not pino.transport: a transport's worker is found by a path the CLI bundle (dist/) lacks.
  return pino({ level, name: opts.name, base: { pid: process.pid } }, opts.destination ?? pino.destination({ fd: 2, sync: false }))
}

/** For library use and tests: a logger that drops everything. */
export const silentLogger: Logger = pino({ level: 'silent' })
