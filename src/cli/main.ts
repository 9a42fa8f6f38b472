/** The `modelswarm` command line: seed, fetch, gateway, preheat, status, keygen, demo and completion. */
import { readFileSync } from 'node:fs'
import { Argument, Command, CommanderError } from 'commander'
import { EXIT, exitCodeFor, hintFor } from '../errors.ts'
import { normalizeBooleanEnv, option } from './options.ts'
import { applyConfigFile } from './config-file.ts'
import { completionScript, SHELLS, type Shell } from './completion.ts'

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }

// `modelswarm --help | head` closes the pipe early: that is the reader's choice, not an error to report.
process.stdout.on('error', err => { if ((err as NodeJS.ErrnoException).code === 'EPIPE') process.exit(EXIT.ok) })

// Each command's module is imported when that command runs (and options.ts keeps clear of the servers'
// modules): a fetch process loads 780 modules instead of 1,045, 0.63 → ~0.57 CPU-s to its first dial and
// 9 MiB less resident, and the network lab starts 16 of them at once on 2 cores.
const program = new Command('modelswarm')
  .description('Peer-to-peer distribution of model versions: one pull from the origin, verified chunks from the swarm.')
  .version(PACKAGE.version)
  .exitOverride()
  .showHelpAfterError('(run with --help for usage)')
  .addOption(option('logLevel'))
  .addOption(option('config'))
  // The file's values go in before the subcommand parses its flags and env vars, which then override them.
  .hook('preSubcommand', async (_, command) => { await applyConfigFile(program, command) })

program.command('seed')
  .description('Run a seeder: watch the origin, pull each new version once, serve it to the swarm while pulling.')
  .addOption(option('origin'))
  .addOption(option('hdfs'))
  .addOption(option('hdfsRoot'))
  .addOption(option('hdfsUser'))
  .addOption(option('hdfsToken'))
  .addOption(option('s3Endpoint'))
  .addOption(option('s3Region'))
  .addOption(option('s3PathStyle'))
  .addOption(option('s3Profile'))
  .addOption(option('s3AccessKeyId'))
  .addOption(option('s3SecretAccessKeyFile'))
  .addOption(option('hdfsTokenFile'))
  .addOption(option('hdfsPrincipal'))
  .addOption(option('hdfsKeytab'))
  .addOption(option('hdfsCaFile'))
  .addOption(option('marker'))
  .addOption(option('cacheDir'))
  .addOption(option('cacheCapacity'))
  .addOption(option('keepVersions'))
  .addOption(option('pin'))
  .addOption(option('inUseWindow'))
  .addOption(option('listen'))
  .addOption(option('lineRate'))
  .addOption(option('pollInterval'))
  .addOption(option('parallelReads'))
  .addOption(option('readSize'))
  .addOption(option('chunkSize'))
  .addOption(option('admin'))
  .addOption(option('adminTokenFile'))
  .addOption(option('originGrace'))
  .addOption(option('seederPeer'))
  .addOption(option('takeoverGrace'))
  .addOption(option('noBulk'))
  .addOption(option('bulkPort'))
  .addOption(option('swarmKeyFile'))
  .addOption(option('allowPeers'))
  .addOption(option('allowCidr'))
  .addOption(option('identityFile'))
  .addOption(option('json'))
  .addHelpText('after', `
Example:
  modelswarm seed --origin /data/models --cache-dir /nvme/modelswarm --listen /ip4/0.0.0.0/tcp/4001 --line-rate 400MiB/s
  modelswarm seed --hdfs http://nn1:9870,http://nn2:9870 --hdfs-root /models --hdfs-user modelswarm \\
    --cache-dir /nvme/modelswarm --cache-capacity 2TiB --keep-versions 3 --line-rate 400MiB/s
  modelswarm seed --origin s3://models-bucket/prod --s3-endpoint http://minio:9000 --s3-path-style \\
    --cache-dir /nvme/modelswarm   (credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role)
  modelswarm seed --hdfs https://nn1:9871,https://nn2:9871 --hdfs-ca-file /etc/pki/hadoop-ca.pem \\
    --hdfs-principal modelswarm@EXAMPLE.COM --hdfs-keytab /etc/security/modelswarm.keytab --cache-dir /nvme/modelswarm
  (prints the peer id that fetchers pass to --trust and the address they pass to --bootstrap)`)
  .action(async (opts) => { await (await import('./seed-command.ts')).runSeed({ ...opts, logLevel: program.opts().logLevel }) })

program.command('fetch')
  .description('Download NAME[@VERSION] (default @latest) from the swarm into --out, verifying every chunk; then optionally run CMD with it.')
  .argument('<model>', 'NAME or NAME@VERSION')
  .argument('[command...]', 'after --: a command to run once the model is complete (an inference server), seeding while it runs')
  .addOption(option('out', { required: true }))
  .addOption(option('bootstrap', { required: true }))
  .addOption(option('trust', { required: true }))
  .addOption(option('listen'))
  .addOption(option('linger'))
  .addOption(option('timeout'))
  .addOption(option('uploadRate'))
  .addOption(option('hostCache'))
  .addOption(option('follow'))
  .addOption(option('followInterval'))
  .addOption(option('followSignal'))
  .addOption(option('keep'))
  .addOption(option('noBulk'))
  .addOption(option('bulkPort'))
  .addOption(option('swarmKeyFile'))
  .addOption(option('allowPeers'))
  .addOption(option('allowCidr'))
  .addOption(option('identityFile'))
  .addOption(option('json'))
  .addHelpText('after', `
With -- CMD ARGS: once the model is complete, CMD runs with MODELSWARM_MODEL_DIR (the model's directory),
MODELSWARM_MODEL_NAME, MODELSWARM_MODEL_VERSION and MODELSWARM_MANIFEST_ID in its environment; SIGTERM,
SIGINT and SIGHUP are passed on to it; fetch seeds (under --upload-rate) until it exits, then exits with
its status (128 + signal number if a signal ended it).

With --follow: --out holds versions/<version>/ and a link current -> versions/<version>, switched in one
rename when a new version is complete; the child is started once (MODELSWARM_MODEL_DIR is --out/current)
and gets --follow-signal on each switch.

Exit status: 0 done, 2 usage, 3 not found, 4 integrity, 5 timeout, 6 disk full, 7 directory locked, 8 refused by the swarm, 127 command not found, 130 interrupted.
With -- CMD, once the command has started: the command's status.

Examples:
  modelswarm fetch qa-llm@2026-11-24T10-00 --out /models/qa-llm \\
    --bootstrap /dns4/modelswarm-seeder/tcp/4001/p2p/12D3KooW... --trust 12D3KooW...
  modelswarm fetch qa-llm --out /models/qa-llm --cache-dir /var/cache/modelswarm --upload-rate 100MiB/s \\
    --bootstrap ... --trust ... -- python -m server --model-dir /models/qa-llm
  modelswarm fetch qa-llm --follow --out /models/qa-llm --bootstrap ... --trust ... -- ./serve.sh`)
  .action(async (model: string, command: string[], opts) => { await (await import('./fetch-command.ts')).runFetch(model, command, { ...opts, logLevel: program.opts().logLevel }) })

program.command('preheat')
  .description('Ask a running seeder to pull NAME@VERSION now, before hosts ask for it.')
  .argument('<model>', 'NAME@VERSION')
  .addOption(option('admin'))
  .addOption(option('adminTokenFile'))
  .addOption(option('json'))
  .addHelpText('after', `
Exit status: 0 accepted (the pull runs in the seeder; watch /v1/models), 2 usage, 3 no such ready version at the origin, 6 no room in the cache, 1 otherwise.

Example:
  modelswarm preheat qa-llm@2026-11-24T10-00 --admin seeder-0.modelswarm:7070`)
  .action(async (model: string, opts) => { await (await import('./preheat-command.ts')).runPreheat(model, opts) })

program.command('status')
  .description('Show what the seeders see: each version, who holds it, who is stuck; or one version\'s hosts.')
  .argument('[model]', 'NAME@VERSION for its hosts')
  .addOption(option('seeders'))
  .addOption(option('watch'))
  .addOption(option('json'))
  .addHelpText('after', `
Columns: PULLED is the share of the version the seeders hold, LINE the bytes it took over the line, HOSTS
counts hosts done, fetching, stalled (no progress, or no report for 30 s while its connection stays open
or was cut for not answering pings: frozen or unreachable; with the reason) and gone (no report for 30 s,
connection closed), OFFLOAD the bytes hosts sent each other for every byte the seeders sent.

Example:
  modelswarm status --seeders seeder-0.modelswarm:7070,seeder-1.modelswarm:7070
  modelswarm status qa-llm@2026-11-24T10-00 --watch`)
  .action(async (model: string | undefined, opts) => { await (await import('./status-command.ts')).runStatus(model, { ...opts, watch: opts.watch === true ? 2000 : opts.watch }) })

program.command('gateway')
  .description('Serve the host cache as a read-only S3 endpoint (bucket = model, key = VERSION/path or latest/path); a version the host lacks is fetched from the swarm, and ranged reads return as soon as their chunks are verified.')
  .addOption(option('gatewayListen'))
  .addOption(option('keysFile'))
  .addOption(option('anonymous'))
  .addOption(option('hostCache', { required: true }))
  .addOption(option('bootstrap', { required: true }))
  .addOption(option('trust', { required: true }))
  .addOption(option('listen'))
  .addOption(option('linger'))
  .addOption(option('timeout'))
  .addOption(option('noBulk'))
  .addOption(option('bulkPort'))
  .addOption(option('json'))
  .addHelpText('after', `
Example:
  modelswarm gateway --cache-dir /nvme/modelswarm --keys-file /etc/modelswarm/keys \\
    --bootstrap /dns4/modelswarm-seeder/tcp/4001/p2p/12D3KooW... --trust 12D3KooW...
  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://qa-llm/latest/`)
  .action(async (opts) => { await (await import('./gateway-command.ts')).runGateway({ ...opts, logLevel: program.opts().logLevel }) })
program.command('keygen')
  .description('Create a swarm key (members only) and/or an identity key, each with mode 0600; an existing file is kept.')
  .addOption(option('swarmKeyFile'))
  .addOption(option('identityFile'))
  .addOption(option('json'))
  .addHelpText('after', `
Example:
  modelswarm keygen --swarm-key-file /etc/modelswarm/swarm.key --identity-file /etc/modelswarm/identity.key
  kubectl create secret generic modelswarm-swarm-key --from-file=swarm.key=/etc/modelswarm/swarm.key`)
  .action(async (opts) => { await (await import('./keygen-command.ts')).runKeygen(opts) })

program.command('demo')
  .description('Generate a model, start a seeder and several fetch processes on loopback, and report.')
  .addOption(option('hosts'))
  .addOption(option('size'))
  .addOption(option('lineRate'))
  .addOption(option('dir'))
  .action(async (opts) => { await (await import('./demo-command.ts')).runDemo({ ...opts, logLevel: program.opts().logLevel }) })

program.command('completion')
  .description('Print a shell completion script (bash, zsh or fish) for modelswarm\'s commands and flags.')
  .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
  .addHelpText('after', `
Example:
  source <(modelswarm completion bash)        # in ~/.bashrc
  source <(modelswarm completion zsh)         # in ~/.zshrc, after compinit
  modelswarm completion fish > ~/.config/fish/completions/modelswarm.fish`)
  .action((shell: Shell) => { process.stdout.write(completionScript(program, shell)) })

try {
  normalizeBooleanEnv(process.env)
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage
  } else {
    const hint = hintFor(err)
    process.exitCode = exitCodeFor(err)
    process.stderr.write(`modelswarm: ${(err as Error).message}${hint === undefined ? '' : `\n  hint: ${hint}`}\n`)
    // Scripts that asked for JSON get the failure as JSON too, on stdout where they read the result.
    if (wantsJson()) {
      const code = (err as { code?: unknown }).code
      process.stdout.write(JSON.stringify({ ok: false, code: typeof code === 'string' ? code : undefined, message: (err as Error).message, hint, exit: process.exitCode }) + '\n')
    }
  }
}
// The command has ended, its stops awaited, however it went: end now rather than when the last timer fires.
// libp2p (3.3.11) leaves its address manager's 1 s debounce (set by 'transport:close' during stop, never
// cleared) behind, which held every fetch and stopped seeder 1 s after its work, and a failed start or stop
// may leave a socket. First what is written must be out: writes to a pipe complete asynchronously, and
// process.exit() dropped all but the first 64 KiB of `status --json | jq` on a large swarm; pino flushes its
// own asynchronous destination in its 'exit' hook.
await Promise.all([drained(process.stdout), drained(process.stderr)])
process.exit()

/** Resolves once everything written to `stream` so far has been handed to the OS (writes complete in order). */
async function drained (stream: NodeJS.WriteStream): Promise<void> {
  await new Promise<void>(resolve => stream.write('', () => { resolve() }))
}

function wantsJson (): boolean {
  // From a flag, the env var or the config file, once parsed; from the raw arguments if parsing failed first.
  return process.argv.includes('--json') || process.env.MODELSWARM_JSON === 'true' || program.commands.some(c => c.opts().json === true)
}
