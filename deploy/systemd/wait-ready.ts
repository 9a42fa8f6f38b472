/**
 * ExecStartPost of modelswarm-seeder.service: returns once the seeder's admin endpoint answers
 * GET /readyz with 200, so `systemctl start` (and units ordered After= it) wait for a serving seeder.
 * The address is MODELSWARM_ADMIN (the unit's environment, default 127.0.0.1:7070); a wildcard host is
 * reached on loopback. Gives up after the seconds in argv[2] (default 120) with exit status 1; systemd's
 * TimeoutStartSec bounds it as well.
 */
const admin = process.env.MODELSWARM_ADMIN ?? '127.0.0.1:7070'
const i = admin.lastIndexOf(':')
const host = admin.slice(0, i).replace(/^\[|\]$/g, '')
const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host
const url = `http://${local.includes(':') ? `[${local}]` : local}:${admin.slice(i + 1)}/readyz`
const deadline = Date.now() + Number(process.argv[2] ?? 120) * 1000

let last = ''
while (Date.now() < deadline) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    if (res.ok) process.exit(0)
    last = `HTTP ${res.status}`
  } catch (err) {
    last = (err as Error).message
  }
  await new Promise(resolve => setTimeout(resolve, 500))
}
process.stderr.write(`wait-ready: ${url} not ready: ${last}\n`)
process.exit(1)
