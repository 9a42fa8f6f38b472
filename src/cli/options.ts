/**
 * Every command-line option once: flag, env var, default, help and parser. Commander's options and
 * the README's table are both derived from this list (`npm run docs:options` rewrites it; a test checks it).
 */
import { constants } from 'node:os'
import { resolve } from 'node:path'
import { InvalidArgumentError, Option } from 'commander'
import { InvalidInputError } from '../errors.ts'
import { parseModelVersion, type ModelVersion } from '../model-version.ts'
import { FETCH_DEFAULTS } from '../peer/fetch.ts'
import { FOLLOW_DEFAULTS } from '../peer/follow.ts'
import { DEFAULT_LISTEN } from '../peer/node.ts'
import { parseCidr } from '../peer/allow-list.ts'
import { DEFAULT_LOG_LEVEL } from '../log.ts'
import { DEFAULT_MARKER } from '../origins/origin.ts'
import { isS3Url, parseEndpoint, parseS3Url } from '../origins/s3/s3-url.ts'
import { DEFAULT_ORIGIN_GRACE_MS } from '../seeder/health.ts'
import { HA_DEFAULTS, parseSeederPeer } from '../seeder/ha-pull.ts'
import { SEEDER_DEFAULTS } from '../seeder/seeder.ts'
import { formatHostPort, parseHostPort } from '../util/host-port.ts'
import { formatBytes, formatDuration, parseBytes, parseDuration, parseRate } from '../util/units.ts'

// Defaults kept here rather than beside the servers: importing the admin server (Prometheus client) and the
// gateway (XML, SigV4) for them made every command, fetch included, load ~150 more modules at start.
/** Loopback by default: the admin API can spend the scarce line (preheat). */
const DEFAULT_ADMIN = '127.0.0.1:7070'
/** Loopback by default: a host's services read through their own host's gateway. */
const DEFAULT_GATEWAY_LISTEN = '127.0.0.1:9000'

export interface OptionSpec {
  flags: string
  env: string
  help: string
  default?: string | string[] | boolean
  parse?: (value: string, previous: unknown) => unknown
}

const list = (value: string, previous: unknown): string[] => [...(Array.isArray(previous) ? previous as string[] : []), ...value.split(',').map(s => s.trim()).filter(s => s !== '')]

export const OPTIONS = {
  listen: { flags: '--listen <multiaddr...>', env: 'MODELSWARM_LISTEN', help: 'libp2p listen addresses', default: [...DEFAULT_LISTEN], parse: list },
  logLevel: { flags: '--log-level <level>', env: 'MODELSWARM_LOG_LEVEL', help: 'trace, debug, info, warn, error or silent', default: DEFAULT_LOG_LEVEL },
  noBulk: { flags: '--no-bulk', env: 'MODELSWARM_NO_BULK', help: 'move chunks over libp2p streams (Noise) instead of the faster TLS-PSK bulk path keyed through libp2p' },
  bulkPort: { flags: '--bulk-port <port>', env: 'MODELSWARM_BULK_PORT', help: 'TCP port of the TLS bulk endpoint, on the same IPs as --listen (0: one the kernel picks; fix it where a firewall or NetworkPolicy opens only known ports, or the bulk path is lost)', default: '0', parse: (v: string) => port(v, '--bulk-port') },
  config: { flags: '--config <file>', env: 'MODELSWARM_CONFIG', help: 'YAML or JSON file of option values under their long flag names (cache-dir: /nvme/modelswarm), at the top level or in a section per command (seed:, fetch: …); flags and env vars override it', parse: (v: string) => absolutePath(v, '--config') },
  swarmKeyFile: { flags: '--swarm-key-file <file>', env: 'MODELSWARM_SWARM_KEY_FILE', help: 'swarm key (go-libp2p/IPFS swarm.key format, made by `modelswarm keygen`; e.g. a mounted Secret): only nodes holding the same key can connect, fetch, serve or use the DHT (a libp2p private network); keygen writes it', parse: (v: string) => absolutePath(v, '--swarm-key-file') },
  allowPeers: { flags: '--allow-peers <peer-id...>', env: 'MODELSWARM_ALLOW_PEERS', help: 'accept connections only from these peer ids, and dial no others (comma-separated in the env var; fetch also admits its --bootstrap and --trust seeders)', parse: list },
  allowCidr: { flags: '--allow-cidr <cidr...>', env: 'MODELSWARM_ALLOW_CIDR', help: 'accept connections (libp2p and bulk) only from these address ranges, e.g. 10.0.0.0/8,fd00::/8, and dial no others; with --allow-peers a node must pass both', parse: (v: string, prev: unknown) => list(v, prev).map(c => { parseCidr(c); return c }) },
  identityFile: { flags: '--identity-file <file>', env: 'MODELSWARM_IDENTITY_FILE', help: 'libp2p identity key: seed creates it when missing (default <cache-dir>/identity.key); fetch needs it made by `modelswarm keygen` (default: a new identity per run) so --allow-peers can name the host; keygen writes it', parse: (v: string) => absolutePath(v, '--identity-file') },
  json: { flags: '--json', env: 'MODELSWARM_JSON', help: 'machine-readable output: JSON result on stdout, JSON progress lines instead of a bar', default: false },
  // seed
  origin: { flags: '--origin <dir|s3-url>', env: 'MODELSWARM_ORIGIN', help: 'origin holding <name>/<version>/ with a completion marker when complete: a local directory, or s3://BUCKET/PREFIX (see the --s3-* options; exactly one of --origin and --hdfs)', parse: (v: string) => isS3Url(v) ? (parseS3Url(v), v) : absolutePath(v, '--origin') },
  hdfs: { flags: '--hdfs <url...>', env: 'MODELSWARM_HDFS', help: 'WebHDFS NameNode URLs, e.g. http://nn1:9870,http://nn2:9870 (all NameNodes of an HA pair; exactly one of --origin and --hdfs)', parse: list },
  hdfsRoot: { flags: '--hdfs-root <path...>', env: 'MODELSWARM_HDFS_ROOT', help: 'HDFS directories holding <name>/<version>/', default: ['/models'], parse: list },
  hdfsUser: { flags: '--hdfs-user <name>', env: 'MODELSWARM_HDFS_USER', help: 'HDFS user (simple authentication, sent as user.name)' },
  hdfsToken: { flags: '--hdfs-token <token>', env: 'MODELSWARM_HDFS_TOKEN', help: 'HDFS delegation token (replaces --hdfs-user on secure clusters); prefer the env var or --hdfs-token-file, which stay out of ps' },
  hdfsTokenFile: { flags: '--hdfs-token-file <file>', env: 'MODELSWARM_HDFS_TOKEN_FILE', help: 'file holding the HDFS delegation token (e.g. a mounted Secret); instead of --hdfs-token', parse: (v: string) => absolutePath(v, '--hdfs-token-file') },
  hdfsPrincipal: { flags: '--hdfs-principal <principal>', env: 'MODELSWARM_HDFS_PRINCIPAL', help: 'Kerberos principal (user@REALM) for secured NameNodes (SPNEGO); without --hdfs-keytab its tickets come from the ticket cache (kinit, KRB5CCNAME)' },
  hdfsKeytab: { flags: '--hdfs-keytab <file>', env: 'MODELSWARM_HDFS_KEYTAB', help: 'keytab holding --hdfs-principal\'s keys: tickets are obtained and renewed from it (the krb5.conf in KRB5_CONFIG or /etc names the KDC)', parse: (v: string) => absolutePath(v, '--hdfs-keytab') },
  hdfsCaFile: { flags: '--hdfs-ca-file <file>', env: 'MODELSWARM_HDFS_CA_FILE', help: 'PEM bundle of the CAs that sign the https:// NameNodes\' and DataNodes\' certificates (replaces the bundled public CAs)', parse: (v: string) => absolutePath(v, '--hdfs-ca-file') },
  s3Endpoint: { flags: '--s3-endpoint <url>', env: 'MODELSWARM_S3_ENDPOINT', help: 'S3-compatible server of an s3:// origin, e.g. http://minio:9000 (unset: AWS, or AWS_ENDPOINT_URL_S3)', parse: (v: string) => parseEndpoint(v) },
  s3Region: { flags: '--s3-region <region>', env: 'MODELSWARM_S3_REGION', help: 'region of the s3:// origin\'s bucket (unset: AWS_REGION or the AWS profile\'s; us-east-1 with --s3-endpoint)' },
  s3PathStyle: { flags: '--s3-path-style', env: 'MODELSWARM_S3_PATH_STYLE', help: 'address the bucket as ENDPOINT/BUCKET/KEY instead of BUCKET.ENDPOINT/KEY (most non-AWS servers need it)', default: false },
  s3Profile: { flags: '--s3-profile <name>', env: 'MODELSWARM_S3_PROFILE', help: 'AWS profile (shared config and credentials files) for the s3:// origin (unset: AWS_PROFILE or default)' },
  s3AccessKeyId: { flags: '--s3-access-key-id <id>', env: 'MODELSWARM_S3_ACCESS_KEY_ID', help: 'access key id for the s3:// origin, with --s3-secret-access-key-file (unset: the standard AWS chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, profiles, web identity, container and instance roles)' },
  s3SecretAccessKeyFile: { flags: '--s3-secret-access-key-file <file>', env: 'MODELSWARM_S3_SECRET_ACCESS_KEY_FILE', help: 'file holding the secret access key (e.g. a mounted Kubernetes Secret): the key itself is never a flag, so it stays out of ps', parse: (v: string) => absolutePath(v, '--s3-secret-access-key-file') },
  marker: { flags: '--marker <file>', env: 'MODELSWARM_MARKER', help: 'file whose presence in a version directory makes the version ready', default: DEFAULT_MARKER },
  cacheCapacity: { flags: '--cache-capacity <bytes>', env: 'MODELSWARM_CACHE_CAPACITY', help: 'cache size limit, e.g. 2TiB; least recently used versions are evicted to make room (unset: the disk\'s free space)', parse: (v: string) => parseBytes(v) },
  keepVersions: { flags: '--keep-versions <n>', env: 'MODELSWARM_KEEP_VERSIONS', help: 'versions kept per model, newest first; older ones are evicted and not pulled unless pinned or preheated (unset: all)', parse: (v: string) => positiveInt(v, '--keep-versions') },
  pin: { flags: '--pin <name@version...>', env: 'MODELSWARM_PIN', help: 'versions always pulled and never evicted', parse: (v: string, prev: unknown) => [...(Array.isArray(prev) ? prev as ModelVersion[] : []), ...list(v, undefined).map(parseModelVersion)] },
  inUseWindow: { flags: '--in-use-window <duration>', env: 'MODELSWARM_IN_USE_WINDOW', help: 'a version downloaded from or resolved within this long is in use and never evicted', default: formatDuration(SEEDER_DEFAULTS.inUseWindowMs), parse: (v: string) => parseDuration(v) },
  cacheDir: { flags: '--cache-dir <dir>', env: 'MODELSWARM_CACHE_DIR', help: 'seeder cache (local NVMe): pulled versions, state and the identity key', default: './modelswarm-cache', parse: (v: string) => absolutePath(v, '--cache-dir') },
  lineRate: { flags: '--line-rate <rate>', env: 'MODELSWARM_LINE_RATE', help: 'budget for pulls from the origin, e.g. 400MiB/s or 2Gbit/s (unset: unshaped)', parse: (v: string) => parseRate(v) },
  pollInterval: { flags: '--poll-interval <duration>', env: 'MODELSWARM_POLL_INTERVAL', help: 'how often to list the origin for new versions', default: formatDuration(SEEDER_DEFAULTS.pollIntervalMs), parse: (v: string) => parseDuration(v) },
  parallelReads: { flags: '--parallel-reads <n>', env: 'MODELSWARM_PARALLEL_READS', help: 'concurrent ranged reads per pull', default: String(SEEDER_DEFAULTS.parallelReads), parse: (v: string) => positiveInt(v, '--parallel-reads') },
  readSize: { flags: '--read-size <bytes>', env: 'MODELSWARM_READ_SIZE', help: 'longest single ranged read from the origin, in whole chunks (fewer, longer reads spare the NameNode and DataNodes per-request work)', default: formatBytes(SEEDER_DEFAULTS.readSize), parse: (v: string) => parseBytes(v) },
  chunkSize: { flags: '--chunk-size <bytes>', env: 'MODELSWARM_CHUNK_SIZE', help: 'fixed chunk size (default: 128 KiB–64 MiB chosen from the model size, ~2,000 chunks)', parse: (v: string) => parseBytes(v) },
  admin: { flags: '--admin <host:port>', env: 'MODELSWARM_ADMIN', help: 'the seeder\'s admin HTTP address: seed serves /healthz, /readyz, /v1/models and POST /v1/preheat there; preheat calls it', default: DEFAULT_ADMIN, parse: (v: string) => formatHostPort(parseHostPort(v, '--admin')) },
  adminTokenFile: { flags: '--admin-token-file <file>', env: 'MODELSWARM_ADMIN_TOKEN_FILE', help: 'file holding the admin API\'s bearer token (e.g. a mounted Kubernetes Secret): seed requires it for POST /v1/preheat, preheat sends it', parse: (v: string) => absolutePath(v, '--admin-token-file') },
  originGrace: { flags: '--origin-grace <duration>', env: 'MODELSWARM_ORIGIN_GRACE', help: 'how long the origin may be unreachable before /readyz fails (cached versions are served meanwhile)', default: formatDuration(DEFAULT_ORIGIN_GRACE_MS), parse: (v: string) => parseDuration(v) },
  seederPeer: { flags: '--seeder-peer <multiaddr...>', env: 'MODELSWARM_SEEDER_PEERS', help: 'the seeders of an HA group on the same origin, each ending in /p2p/<peer id> (comma-separated in the env var; a seeder skips its own, so all may share one list): each version is pulled by one of them and fetched from the swarm by the others, which take the pull over if it stops', parse: (v: string, prev: unknown) => list(v, prev).map(a => { parseSeederPeer(a); return a }) },
  takeoverGrace: { flags: '--takeover-grace <duration>', env: 'MODELSWARM_TAKEOVER_GRACE', help: 'with --seeder-peer: how long the seeder pulling a version may make no progress (killed, cut off, origin failing) before the next one pulls what the swarm lacks', default: formatDuration(HA_DEFAULTS.takeoverGraceMs), parse: (v: string) => parseDuration(v) },
  seeders: { flags: '--seeders <host:port...>', env: 'MODELSWARM_SEEDERS', help: 'admin addresses of the seeders status asks (comma-separated in the env var)', default: [DEFAULT_ADMIN], parse: (v: string, prev: unknown) => list(v, prev).map(a => formatHostPort(parseHostPort(a, '--seeders'))) },
  watch: { flags: '--watch [interval]', env: 'MODELSWARM_WATCH', help: 'redraw every interval (default 2s) until interrupted', parse: (v: string) => parseDuration(v) },
  // fetch
  out: { flags: '--out <dir>', env: 'MODELSWARM_OUT', help: 'output directory; appears complete in one rename (partial state beside it)', parse: (v: string) => absolutePath(v, '--out') },
  bootstrap: { flags: '--bootstrap <multiaddr...>', env: 'MODELSWARM_BOOTSTRAP', help: 'seeder addresses ending in /p2p/<peer id> (comma-separated in the env var)', parse: list },
  trust: { flags: '--trust <peer-id...>', env: 'MODELSWARM_TRUST', help: 'seeder public keys (peer ids) whose signatures are accepted', parse: list },
  linger: { flags: '--linger <duration>', env: 'MODELSWARM_LINGER', help: 'keep seeding this long after the download completes', default: formatDuration(FETCH_DEFAULTS.lingerMs), parse: (v: string) => parseDuration(v) },
  timeout: { flags: '--timeout <duration>', env: 'MODELSWARM_TIMEOUT', help: 'give up after this long without progress', default: formatDuration(FETCH_DEFAULTS.idleTimeoutMs), parse: (v: string) => parseDuration(v) },
  uploadRate: { flags: '--upload-rate <rate>', env: 'MODELSWARM_UPLOAD_RATE', help: 'cap on what fetch uploads to other hosts while it runs and serves, e.g. 50MiB/s or 400Mbit/s, so seeding leaves the NIC to inference traffic (unset: uncapped)', parse: (v: string) => parseRate(v) },
  hostCache: { flags: '--cache-dir <dir>', env: 'MODELSWARM_HOST_CACHE', help: '(fetch, gateway) host cache shared by every fetch and the gateway on the host: a version is downloaded once into <dir>/<name>/<version>/ and hard-linked into each --out, read-only (seed\'s --cache-dir is its own store)', parse: (v: string) => absolutePath(v, '--cache-dir') },
  follow: { flags: '--follow', env: 'MODELSWARM_FOLLOW', help: 'track NAME@latest: fetch each new version into --out/versions/<version>/, switch --out/current to it in one rename, signal the child (see --follow-signal)', default: false },
  followInterval: { flags: '--follow-interval <duration>', env: 'MODELSWARM_FOLLOW_INTERVAL', help: 'how often --follow asks the seeders for the latest version', default: formatDuration(FOLLOW_DEFAULTS.intervalMs), parse: (v: string) => parseDuration(v) },
  followSignal: { flags: '--follow-signal <signal>', env: 'MODELSWARM_FOLLOW_SIGNAL', help: 'signal sent to the child after --follow switches current to a new version', default: FOLLOW_DEFAULTS.signal, parse: (v: string) => signalName(v, '--follow-signal') },
  keep: { flags: '--keep <n>', env: 'MODELSWARM_KEEP', help: 'versions --follow keeps on disk (in --out and the host cache), the current one included; older ones are deleted', default: String(FOLLOW_DEFAULTS.keep), parse: (v: string) => positiveInt(v, '--keep') },
  // gateway
  gatewayListen: { flags: '--gateway-listen <host:port>', env: 'MODELSWARM_GATEWAY_LISTEN', help: 'address of the read gateway\'s S3 endpoint (loopback by default: each host\'s services read through their own host)', default: DEFAULT_GATEWAY_LISTEN, parse: (v: string) => formatHostPort(parseHostPort(v, '--gateway-listen')) },
  keysFile: { flags: '--keys-file <file>', env: 'MODELSWARM_KEYS_FILE', help: 'the gateway\'s S3 access keys, one ACCESS_KEY_ID:SECRET_ACCESS_KEY per line (e.g. a mounted Secret); requests are SigV4-checked against them', parse: (v: string) => absolutePath(v, '--keys-file') },
  anonymous: { flags: '--anonymous', env: 'MODELSWARM_ANONYMOUS', help: 'let the gateway serve unsigned requests too (signed ones are still checked)', default: false },
  // demo
  hosts: { flags: '--hosts <n>', env: 'MODELSWARM_DEMO_HOSTS', help: 'fetch processes the demo starts', default: '8', parse: (v: string) => positiveInt(v, '--hosts') },
  size: { flags: '--size <bytes>', env: 'MODELSWARM_DEMO_SIZE', help: 'size of the generated demo model', default: '256MiB', parse: (v: string) => parseBytes(v) },
  dir: { flags: '--dir <dir>', env: 'MODELSWARM_DEMO_DIR', help: 'work directory for the demo (default: a new temp directory, removed at the end)', parse: (v: string) => absolutePath(v, '--dir') }
} satisfies Record<string, OptionSpec>

export type OptionName = keyof typeof OPTIONS

/**
 * Values a later source replaces rather than extends: a list from the config file or the env var is
 * replaced by `--listen X` on the command line, as a default is (commander passes the current value to the parser).
 */
const replaceable = new WeakSet<object>()
export function markReplaceable (value: unknown): void {
  if (typeof value === 'object' && value !== null) replaceable.add(value)
}

/** A commander Option built from the table; defaults pass through the parser like user input. */
export function option (name: OptionName, opts: { required?: boolean } = {}): Option {
  const spec: OptionSpec = OPTIONS[name]
  const o = new Option(spec.flags, spec.help).env(spec.env)
  const parse = spec.parse
  const defaultValue = spec.default === undefined || typeof spec.default === 'boolean'
    ? undefined
    : spec.parse !== undefined && !Array.isArray(spec.default) ? spec.parse(spec.default, undefined) : spec.default
  // Commander passes the default as `previous` to the first parse: repeatable flags must replace it, not extend it.
  // Commander prints InvalidArgumentError as a usage error naming the flag.
  if (parse !== undefined) {
    o.argParser((v: string, prev: unknown) => {
      try {
        return parse(v, prev === defaultValue || (typeof prev === 'object' && prev !== null && replaceable.has(prev)) ? undefined : prev)
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message)
      }
    })
  }
  if (defaultValue !== undefined) o.default(defaultValue, Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default))
  if (opts.required === true) o.makeOptionMandatory()
  return o
}

/** Values a boolean environment variable may take: anything else is a usage error rather than a guess. */
const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/**
 * Commander turns a boolean flag on when its environment variable is merely present, so
 * `MODELSWARM_JSON=false` meant JSON on and `MODELSWARM_NO_BULK=false` the fast path off. Before parsing,
 * each boolean option's variable is read as a boolean: a false value is removed, a true one kept.
 * Throws InvalidInputError naming the variable for any other value.
 */
export function normalizeBooleanEnv (env: NodeJS.ProcessEnv): void {
  for (const spec of Object.values(OPTIONS as Record<string, OptionSpec>)) {
    if (spec.flags.includes('<')) continue
    const value = env[spec.env]
    if (value === undefined) continue
    const v = value.trim().toLowerCase()
    if (TRUE.has(v)) env[spec.env] = 'true'
    else if (FALSE.has(v)) delete env[spec.env]
    else throw new InvalidInputError(`${spec.env}=${JSON.stringify(value)} is not a boolean: use true/false, 1/0, yes/no or on/off`)
  }
}

/** The README table. */
export function optionsMarkdown (): string {
  const rows = Object.values(OPTIONS as Record<string, OptionSpec>).map(s => `| \`${s.flags}\` | \`${s.env}\` | ${s.default === undefined ? '' : `\`${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}\``} | ${s.help} |`)
  return ['| flag | env var | default | meaning |', '|---|---|---|---|', ...rows].join('\n')
}

/** Paths are made absolute and normalised (`DIR/` and `DIR` are one directory); `/` is no place for a model. */
function absolutePath (v: string, flag: string): string {
  const p = resolve(v)
  if (v.trim() === '' || p === '/') throw new InvalidArgumentError(`${flag} must name a directory other than /, got ${JSON.stringify(v)}`)
  return p
}

/** A signal name such as SIGHUP or HUP, checked against the signals this platform knows. */
function signalName (v: string, flag: string): NodeJS.Signals {
  const name = (v.toUpperCase().startsWith('SIG') ? v.toUpperCase() : `SIG${v.toUpperCase()}`) as NodeJS.Signals
  if (!(name in constants.signals)) throw new InvalidArgumentError(`${flag} must be a signal name such as SIGHUP or SIGUSR1, got ${JSON.stringify(v)}`)
  return name
}

function port (v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 0 || n > 65535 || v.trim() === '') throw new InvalidArgumentError(`${flag} must be a TCP port 0–65535, got ${JSON.stringify(v)}`)
  return n
}

function positiveInt (v: string, flag: string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${flag} must be a positive integer, got ${JSON.stringify(v)}`)
  return n
}
