/**
 * Typed errors and the one table that says what each means to a caller, in the spirit of undici's
 * `lib/core/errors.js`: every failure a user or caller can act on has a class with a stable `code`, and
 * `ERROR_CODES` maps each code to the CLI's exit status, the admin API's HTTP status, whether retrying
 * may help, and a hint naming the fix. Classes specific to one module (WebHDFS, the chunk store) live
 * there; their codes live here, and the type `ErrorCode` makes an unregistered code a compile error.
 */

/** Exit statuses of the `modelswarm` command, as documented in its --help and the README. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  integrity: 4,
  timeout: 5,
  diskFull: 6,
  locked: 7,
  /** Not admitted to the swarm: no or another swarm key, or outside the allow-list. */
  refused: 8,
  /** The command after `fetch … --` could not be started (a shell's "command not found"). */
  childStart: 127,
  interrupted: 130
} as const

interface CodeInfo {
  /** Exit status of the CLI when this error ends it. */
  exit: number
  /** HTTP status when the admin API answers with this error. */
  http: number
  /**
   * Whether the same operation may succeed if tried again later (an origin read, a pull): false only for
   * definite answers (not found, access denied, changed origin, disk full, bad input).
   */
  retriable: boolean
  hint?: string
}

const usage = { exit: EXIT.usage, http: 400, retriable: false } as const
const failure = { exit: EXIT.failure, http: 503, retriable: true } as const
const hdfsHint = 'check --hdfs (every NameNode of the pair) and that the NameNodes and DataNodes are up'
const s3Hint = 'check --s3-endpoint (or AWS_ENDPOINT_URL_S3) and that the object store is up and reachable'
const s3CredentialsHint = '--s3-access-key-id with --s3-secret-access-key-file, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, --s3-profile, or a pod or instance role'

export const ERROR_CODES = {
  MS_INVALID_INPUT: { ...usage, hint: 'see --help' },
  MS_NOT_FOUND: { exit: EXIT.notFound, http: 404, retriable: false, hint: 'check the model name and version; the seeder lists what it holds at /v1/models' },
  MS_INTEGRITY: { exit: EXIT.integrity, http: 502, retriable: true, hint: 'data failed verification; nothing unverified was written' },
  /** Bytes from the network that break a wire protocol: a faulty or incompatible peer, never the user's input. */
  MS_PROTOCOL: { exit: EXIT.integrity, http: 502, retriable: true, hint: 'a peer sent malformed protocol data (a faulty peer, or a different modelswarm version); nothing it sent was written' },
  MS_BAD_MANIFEST: { exit: EXIT.integrity, http: 502, retriable: false, hint: 'the version metadata is malformed; nothing was written' },
  MS_UNTRUSTED: { exit: EXIT.integrity, http: 502, retriable: false, hint: 'pass the seeder\'s peer id with --trust (it prints it at start)' },
  MS_HASH_UNKNOWN: { ...failure },
  MS_TIMEOUT: { exit: EXIT.timeout, http: 504, retriable: true, hint: 'check that a seeder is reachable (--bootstrap) and has the version; rerun to resume' },
  MS_DISK_FULL: { exit: EXIT.diskFull, http: 507, retriable: false, hint: 'free space or choose another --out; verified chunks are kept for the next run' },
  MS_CACHE_FULL: { exit: EXIT.diskFull, http: 507, retriable: true, hint: 'raise --cache-capacity, unpin versions or lower --keep-versions on the seeder' },
  /** A write to the chunk store failed (EIO, no progress): the chunk stays missing and the next open re-verifies. */
  MS_STORE_WRITE: { exit: EXIT.failure, http: 500, retriable: false, hint: 'the output filesystem failed a write (see the cause); verified chunks are kept and re-checked on the next run' },
  MS_STORE_LOCKED: { exit: EXIT.locked, http: 409, retriable: true, hint: 'another modelswarm process is writing the same directory' },
  MS_ORIGIN_CHANGED: { exit: EXIT.integrity, http: 409, retriable: false, hint: 'versions must not change once their completion marker is written; publish changed content under a new version' },
  MS_SHORT_READ: { ...failure },
  MS_ADMIN_UNAVAILABLE: { ...failure, hint: 'check --admin: the seeder prints its admin address at start' },
  MS_ADMIN_UNAUTHORIZED: { exit: EXIT.failure, http: 401, retriable: false, hint: 'pass the seeder\'s admin token with --admin-token-file (or MODELSWARM_ADMIN_TOKEN_FILE)' },
  MS_DEMO: { ...failure },
  /** Every seeder refused this node's connections (swarm key or allow-list), round after round. */
  MS_NOT_MEMBER: { exit: EXIT.refused, http: 403, retriable: false, hint: 'give this host the swarm\'s key (--swarm-key-file, the same file every member uses) and check the seeders\' --allow-peers / --allow-cidr; the seeder logs each refusal' },
  /** A swarm key file that is missing or not in the /key/swarm/psk/1.0.0/ format. */
  MS_SWARM_KEY: { ...usage, hint: 'create one with `modelswarm keygen --swarm-key-file FILE` and give every member the same file' },
  MS_CHILD_START: { exit: EXIT.childStart, http: 500, retriable: false, hint: 'the command after -- must be an executable file on PATH or a path to one' },
  /** The network lab could not set up, run or tear down (a missing tool, not root, a process that failed). */
  MS_LAB: { ...failure, hint: 'the lab needs root, iproute2, Java + Maven, and for its baselines python3-libtorrent (see README, Network lab)' },
  MS_HDFS_FILE_NOT_FOUND: { exit: EXIT.failure, http: 404, retriable: false, hint: 'check --hdfs-root and the version directory' },
  MS_HDFS_ACCESS_DENIED: { exit: EXIT.failure, http: 403, retriable: false, hint: 'check --hdfs-user or --hdfs-token and the directory permissions' },
  MS_HDFS_STANDBY: { ...failure, hint: hdfsHint },
  MS_HDFS_SAFE_MODE: { ...failure, hint: 'the NameNode is in safe mode; it leaves it by itself once enough blocks are reported' },
  MS_HDFS_RETRIABLE: { ...failure, hint: hdfsHint },
  MS_HDFS_REMOTE: { ...failure, hint: hdfsHint },
  MS_HDFS_HTTP: { ...failure, hint: hdfsHint },
  MS_HDFS_CONNECTION: { ...failure, hint: hdfsHint },
  MS_HDFS_NO_NAMENODE: { ...failure, hint: hdfsHint },
  MS_S3_NO_SUCH_BUCKET: { exit: EXIT.failure, http: 404, retriable: false, hint: 'check the bucket in --origin s3://BUCKET/PREFIX, and --s3-endpoint and --s3-region for the server holding it' },
  MS_S3_NO_SUCH_KEY: { exit: EXIT.failure, http: 404, retriable: false, hint: 'check the prefix in --origin s3://BUCKET/PREFIX and the version\'s objects' },
  MS_S3_ACCESS_DENIED: { exit: EXIT.failure, http: 403, retriable: false, hint: `check the S3 credentials (${s3CredentialsHint}) and that they allow s3:ListBucket and s3:GetObject on the bucket` },
  MS_S3_NO_CREDENTIALS: { exit: EXIT.failure, http: 503, retriable: false, hint: `give S3 credentials: ${s3CredentialsHint}` },
  MS_S3_NO_REGION: { ...usage, hint: 'pass --s3-region, or set AWS_REGION or a region in the AWS profile' },
  MS_S3_REMOTE: { ...failure, hint: s3Hint },
  MS_S3_CONNECTION: { ...failure, hint: s3Hint },
  MS_HDFS_AUTH: { exit: EXIT.failure, http: 401, retriable: false, hint: 'the NameNode requires Kerberos: pass --hdfs-principal and --hdfs-keytab, or kinit into a ticket cache (KRB5CCNAME)' },
  MS_HDFS_TLS: { exit: EXIT.failure, http: 502, retriable: false, hint: 'pass the PEM bundle of the CA that signed the NameNode and DataNode certificates with --hdfs-ca-file' }
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export class ModelswarmError extends Error {
  readonly code: ErrorCode

  constructor (code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Input that breaks a documented rule: a bad flag value, a path escaping its root. */
export class InvalidInputError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_INVALID_INPUT', message, options) }
}

/** Bytes from a peer that break a wire protocol (a malformed frame, an oversized message, a bad handshake). */
export class ProtocolError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_PROTOCOL', message, options) }
}

/** Bytes whose SHA-256 does not match the manifest, or data whose signature does not verify. */
export class IntegrityError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_INTEGRITY', message, options) }
}

/** Signed by a key that is not in the trust list. */
export class UntrustedSignerError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_UNTRUSTED', message, options) }
}

/** Not enough free space on the target filesystem (checked up front, or ENOSPC while writing). */
export class DiskFullError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_DISK_FULL', message, options) }
}

/** Another live process holds the store's lock. */
export class StoreLockedError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_STORE_LOCKED', message, options) }
}

/** A model, version, file or chunk that does not exist where it was looked for. */
export class NotFoundError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_NOT_FOUND', message, options) }
}

/** No progress within the allowed time. */
export class TimeoutError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_TIMEOUT', message, options) }
}

/** The swarm's members refused this node: it lacks their swarm key or is outside their allow-list. */
export class NotMemberError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_NOT_MEMBER', message, options) }
}

/** A swarm key file that cannot be read or is not a /key/swarm/psk/1.0.0/ key. */
export class SwarmKeyError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_SWARM_KEY', message, options) }
}

/** A manifest or version header that fails decoding or validation. */
export class ManifestError extends ModelswarmError {
  constructor (message: string, options?: ErrorOptions) { super('MS_BAD_MANIFEST', message, options) }
}

/** A read that ended before the length asked for: the file shrank, or the origin cut the body short. */
export class ShortReadError extends ModelswarmError {
  /** Bytes asked for, and bytes that arrived. */
  readonly expected: number
  readonly received: number

  constructor (where: string, expected: number, received: number, why?: string) {
    super('MS_SHORT_READ', `${where}: expected ${expected} bytes, got ${received}${why === undefined ? '' : ` (${why})`}`)
    this.expected = expected
    this.received = received
  }
}

/**
 * A version's content changed at the origin after it was listed. `republished`: it was rewritten or
 * replaced whole (other bytes under the same name), so it is pulled again as a new revision; otherwise
 * the origin contradicts itself (a file shrank below its listed size, bytes differ from a hash taken
 * earlier) and the version is refused until it is published again. Never a mix either way.
 */
export class OriginChangedError extends ModelswarmError {
  readonly republished: boolean

  constructor (message: string, options?: ErrorOptions & { republished?: boolean }) {
    super('MS_ORIGIN_CHANGED', message, options)
    this.republished = options?.republished ?? false
  }
}

function infoOf (err: unknown): CodeInfo | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined
}

/** The CLI's exit status for `err`: by its code, 1 for anything unregistered. */
export function exitCodeFor (err: unknown): number {
  return infoOf(err)?.exit ?? EXIT.failure
}

/** The admin API's HTTP status for `err`: by its code, 500 for anything unregistered. */
export function httpStatusFor (err: unknown): number {
  return infoOf(err)?.http ?? 500
}

/** A hint naming the fix, when the code has one. */
export function hintFor (err: unknown): string | undefined {
  return infoOf(err)?.hint
}

/** Whether trying again may succeed: false for definite answers (not found, access denied, changed origin, disk full). */
export function isRetriable (err: unknown): boolean {
  return infoOf(err)?.retriable ?? true
}
