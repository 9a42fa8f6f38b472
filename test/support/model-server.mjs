// A stand-in inference server for the entrypoint tests (plain JavaScript: it runs under whatever Node the
// test runs). It writes what it was given (the MODELSWARM_ model variables and a SHA-256 of every file it
// finds in the model directory when it starts) to REPORT, appends each SIGHUP/SIGTERM it gets to
// REPORT.signals, and on SIGTERM exits 42 — or, with the argument `die`, lets the signal end it.
import { createHash } from 'node:crypto'
import { appendFileSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const [report, onTerm = 'exit-42'] = process.argv.slice(2)
const dir = process.env.MODELSWARM_MODEL_DIR

function digests (root, prefix = '', into = {}) {
  for (const e of readdirSync(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`
    if (e.isDirectory()) digests(root, rel, into)
    else into[rel] = createHash('sha256').update(readFileSync(join(root, rel))).digest('hex')
  }
  return into
}

function target () {
  try { return readlinkSync(dir) } catch { return undefined }
}

const record = signal => appendFileSync(`${report}.signals`, JSON.stringify({ signal, at: Date.now(), target: target() }) + '\n')
process.on('SIGHUP', () => record('SIGHUP'))
if (onTerm !== 'die') process.on('SIGTERM', () => { record('SIGTERM'); process.exit(42) })

const env = Object.fromEntries(['MODELSWARM_MODEL_DIR', 'MODELSWARM_MODEL_NAME', 'MODELSWARM_MODEL_VERSION', 'MODELSWARM_MANIFEST_ID'].map(k => [k, process.env[k]]))
writeFileSync(`${report}.tmp`, JSON.stringify({ env, files: digests(dir), target: target(), at: Date.now() }))
renameSync(`${report}.tmp`, report)
setInterval(() => {}, 1 << 30)
