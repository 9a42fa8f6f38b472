/** `host:port` addresses of HTTP endpoints (the admin API), as flags give them. */
import { InvalidInputError } from '../errors.ts'

export interface HostPort { host: string, port: number }

/**
 * Parses `host:port`, `[v6]:port` or `http://host:port` (a URL as a browser shows it). Throws
 * InvalidInputError naming `flag` when the port is missing or out of range.
 */
export function parseHostPort (text: string, flag: string): HostPort {
  const bare = text.trim().replace(/^http:\/\//, '').replace(/\/+$/, '')
  const i = bare.lastIndexOf(':')
  const host = bare.slice(0, Math.max(0, i)).replace(/^\[|\]$/g, '')
  const port = Number(bare.slice(i + 1))
  if (i <= 0 || host === '' || bare.slice(i + 1) === '' || !Number.isInteger(port) || port < 0 || port > 65535 || /[/\s]/.test(host)) {
    throw new InvalidInputError(`${flag} ${JSON.stringify(text)} must be host:port, e.g. 127.0.0.1:7070 or [::1]:7070`)
  }
  return { host, port }
}

export function formatHostPort ({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
