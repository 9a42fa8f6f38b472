/**
 * npm run build [-- --root DIR]
 * Bundles the CLI (src/cli/main.ts and every module it imports, its commands' dynamic imports as chunks of
 * their own) into DIR/dist/cli with rolldown, beside the digests of its inputs (src/cli/bundle.ts says why
 * and how the launcher checks them). The new bundle replaces the old one whole: it is written beside it and
 * renamed into place, so a CLI starting meanwhile runs either one or, for an instant, src/. Native addons
 * (os-lock, kerberos) stay outside and load from node_modules as before. Source maps are written beside
 * the chunks: NODE_OPTIONS=--enable-source-maps gives stack traces in src/ positions.
 * Exit status: 0 built; 1 the build failed (the CLI keeps running from src/).
 */
import { rename, rm, writeFile } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BUNDLE_DIR, BUNDLE_INPUTS, digestInputs } from '../src/cli/bundle.ts'

const { values: args } = parseArgs({ options: { root: { type: 'string' } } })
const root = resolve(args.root ?? fileURLToPath(new URL('..', import.meta.url)))
const out = join(root, BUNDLE_DIR)
const staging = `${out}.${process.pid}.tmp`

const started = Date.now()
try {
  // Imported here, so that an install without dev dependencies (npm ci --omit=dev runs this as `prepare`)
  // says what is missing in one line.
  const { build } = await import('rolldown').catch(() => { throw new Error('rolldown is not installed (a dev dependency: npm ci without --omit=dev)') })
  const result = await build({
    input: { main: join(root, 'src/cli/main.ts') },
    platform: 'node',
    external: [/^os-lock$/, /^kerberos$/],
    logLevel: 'warn',
    // keepNames: error classes and log lines name functions and classes as in src/.
    output: { dir: staging, format: 'esm', keepNames: true, sourcemap: true }
  })
  const src = join(root, 'src') + sep
  const files = new Set(['package-lock.json'])
  for (const o of result.output) {
    if (o.type === 'chunk') for (const id of Object.keys(o.modules)) if (id.startsWith(src)) files.add(relative(root, id))
  }
  await writeFile(join(staging, BUNDLE_INPUTS), JSON.stringify(digestInputs(root, [...files]), null, 1) + '\n')
  await rm(out, { recursive: true, force: true })
  await rename(staging, out)
  const chunks = result.output.filter(o => o.type === 'chunk').length
  process.stdout.write(`modelswarm build: ${BUNDLE_DIR}: ${chunks} chunks from ${files.size - 1} files of src/ in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
} catch (err) {
  await rm(staging, { recursive: true, force: true })
  process.stderr.write(`modelswarm build: ${(err as Error).message}\nThe CLI runs from src/ until a build succeeds.\n`)
  process.exitCode = 1
}
