/**
 * `modelswarm preheat NAME@VERSION`: asks a running seeder, through its admin endpoint, to pull a version
 * now rather than when a host first asks for it.
 */
import { ERROR_CODES, ModelswarmError, NotFoundError, type ErrorCode } from '../errors.ts'
import { formatModelVersion, parseModelVersion } from '../model-version.ts'
import { readToken } from './seed-command.ts'

export interface PreheatCommandOptions {
  /** The seeder's admin address, host:port. */
  admin: string
  /** File holding the admin API's bearer token. */
  adminTokenFile?: string
  json: boolean
}

/** The seeder could not be reached, or answered with something other than a preheat result. */
export class AdminUnavailableError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_ADMIN_UNAVAILABLE', message, options) }
}

export async function runPreheat (model: string, opts: PreheatCommandOptions): Promise<void> {
  const { name, version } = parseModelVersion(model)
  const url = `http://${opts.admin}/v1/preheat`
  let res: Response
  try {
    const token = await readToken(opts.adminTokenFile)
    const headers = token === undefined ? undefined : { authorization: `Bearer ${token}` }
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ name, version }), signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    if (err instanceof ModelswarmError) throw err
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS error) is its cause.
    const cause = (err as { cause?: { code?: string, message?: string } }).cause
    throw new AdminUnavailableError(`cannot reach the seeder's admin endpoint at ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err })
  }
  const body = await res.json().catch(() => ({})) as { state?: string, error?: string, code?: string }
  if (res.status === 202) {
    process.stdout.write(opts.json ? JSON.stringify({ ok: true, name, version, state: body.state }) + '\n' : `${formatModelVersion({ name, version })}: ${body.state ?? 'accepted'}\n`)
    return
  }
  const message = `${formatModelVersion({ name, version })}: ${body.error ?? `HTTP ${res.status}`}`
  if (res.status === 404) throw new NotFoundError(message)
  throw new ModelswarmError(body.code !== undefined && Object.hasOwn(ERROR_CODES, body.code) ? body.code as ErrorCode : 'MS_ADMIN_UNAVAILABLE', message)
}
