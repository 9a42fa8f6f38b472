/**
 * npm run build [-- --root DIR]
 * Bundles the CLI (src/cli/main.ts and every module it imports, its commands' dynamic imports as chunks of
 * their own) into a new DIR/dist/cli-<build>/ with rolldown and points DIR/dist/cli.json at it, with the
 * digests of its inputs (src/cli/bundle.ts says why and how the launcher checks them). The pointer is
 * switched in one rename; the previous build's folder stays (a process started from it may still load a
 * chunk), older ones are removed. Native addons (os-lock, kerberos) stay outside and load from node_modules.
 * Source maps are written beside the chunks: NODE_OPTIONS=--enable-source-maps gives stack traces in src/.
 * Exit status: 0 built; 1 the build failed, or src/ changed while it ran (the CLI keeps running the
 * previous build while that matches src/, else src/).
 */
import { readdirSync, realpathSync } from 'node:fs'
import { rename, rm, writeFile } from 'node:fs/promises'
import { join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { BUNDLE_POINTER, BUNDLE_PREFIX, digestInputs, pinFiles, readBundlePointer, type BundlePointer } from '../src/cli/bundle.ts'

const { values: args } = parseArgs({ options: { root: { type: 'string' } } })
// Real path: rolldown names modules by theirs, and a root reached through a symlink would match none.
const root = realpathSync(resolve(args.root ?? fileURLToPath(new URL('..', import.meta.url))))
const dir = `${BUNDLE_PREFIX}${Date.now().toString(36)}-${process.pid}`
const pointerPath = join(root, BUNDLE_POINTER)

/** Every file under src/, relative to root. */
function srcFiles (): string[] {
  return readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter(e => e.isFile()).map(e => relative(root, join(e.parentPath, e.name)))
}

const started = Date.now()
try {
  // Imported here, so that an install without dev dependencies (npm ci --omit=dev runs this as `prepare`)
  // says what is missing in one line.
  const { build } = await import('rolldown').catch((err: Error) => { throw new Error(`rolldown did not load (a dev dependency: npm ci without --omit=dev): ${err.message}`) })
  // Digests before and after: an input saved while rolldown read it must not be recorded as built.
  const pins = pinFiles(root)
  const before = digestInputs(root, [...srcFiles(), ...pins])
  const graph = new Set<string>()
  const result = await build({
    input: { main: join(root, 'src/cli/main.ts') },
    platform: 'node',
    external: [/^os-lock$/, /^kerberos$/],
    // Node strips types without reading tsconfig.json; the bundle must not compile differently.
    tsconfig: false,
    logLevel: 'warn',
    // The whole module graph, tree-shaken modules included: an edit can give one code to run.
    plugins: [{ name: 'modelswarm-inputs', buildEnd () { for (const id of this.getModuleIds()) graph.add(id) } }],
    // keepNames: error classes and log lines name functions and classes as in src/.
    output: { dir: join(root, dir), format: 'esm', keepNames: true, sourcemap: true }
  })
  const src = join(root, 'src') + sep
  const files = [...pins, ...[...graph].filter(id => id.startsWith(src)).map(id => relative(root, id))]
  if (!files.includes('src/cli/main.ts')) throw new Error(`the module graph names no file of ${src} (${graph.size} modules)`)
  const inputs = digestInputs(root, files)
  const changed = files.find(f => before[f] !== inputs[f])
  if (changed !== undefined) throw new Error(`${changed} changed while the bundle was built; run npm run build again`)

  const previous = readBundlePointer(root)?.dir
  const tmp = `${pointerPath}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ dir, inputs } satisfies BundlePointer, null, 1) + '\n')
  await rename(tmp, pointerPath)
  const keep = new Set([dir, previous])
  for (const e of readdirSync(join(root, 'dist'))) {
    const p = `dist/${e}`
    if ((p.startsWith(BUNDLE_PREFIX) && !keep.has(p)) || (p.startsWith(`${BUNDLE_POINTER}.`) && p.endsWith('.tmp'))) await rm(join(root, p), { recursive: true, force: true })
  }
  const chunks = result.output.filter(o => o.type === 'chunk').length
  process.stdout.write(`modelswarm build: ${dir}: ${chunks} chunks from ${files.length - pins.length} files of src/ in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
} catch (err) {
  await rm(join(root, dir), { recursive: true, force: true })
  process.stderr.write(`modelswarm build: ${(err as Error).message}\nThe CLI runs the previous build while it matches src/, else src/.\n`)
  process.exitCode = 1
}
