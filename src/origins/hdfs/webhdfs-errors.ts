/**
 * WebHDFS failures as typed errors with stable codes. NameNodes and DataNodes report Java exceptions as
 * `{"RemoteException":{"exception","javaClassName","message"}}`; the classes a caller acts on differently
 * (try another NameNode, wait, fix permissions, give up on a path) each get their own class.
 * Messages name the endpoint by origin and path only: query strings may carry a delegation token.
 */
import { ModelswarmError, type ErrorCode } from '../../errors.ts'

export interface RemoteException {
  exception: string
  javaClassName: string
  message: string
}

/** Base class of every failure raised by the WebHDFS client. */
export class WebHdfsError extends ModelswarmError {}

/** HDFS answered with a RemoteException; subclasses below for the ones callers treat specially. */
export class HdfsRemoteError extends WebHdfsError {
  readonly exception: string
  readonly javaClassName: string
  readonly status: number

  constructor (code: ErrorCode, remote: RemoteException, status: number, where: string) {
    super(code, `${where}: ${remote.exception}: ${remote.message}`)
    this.exception = remote.exception
    this.javaClassName = remote.javaClassName
    this.status = status
  }
}

export class HdfsFileNotFoundError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_FILE_NOT_FOUND', remote, status, where) }
}

/** Permission denied, or credentials (user, delegation token) refused. */
export class HdfsAccessControlError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_ACCESS_DENIED', remote, status, where) }
}

/** This NameNode is a standby: another NameNode in the list should be active. */
export class HdfsStandbyError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_STANDBY', remote, status, where) }
}

export class HdfsSafeModeError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_SAFE_MODE', remote, status, where) }
}

/** HDFS asks to retry later (e.g. a NameNode still starting up). */
export class HdfsRetriableError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_RETRIABLE', remote, status, where) }
}

/** Any other RemoteException; `exception`/`javaClassName` say which. */
export class HdfsUnknownRemoteError extends HdfsRemoteError {
  constructor (remote: RemoteException, status: number, where: string) { super('MS_HDFS_REMOTE', remote, status, where) }
}

/** An HTTP answer that is neither what WebHDFS documents nor a RemoteException. */
export class HdfsHttpError extends WebHdfsError {
  readonly status: number

  constructor (status: number, message: string) {
    super('MS_HDFS_HTTP', message)
    this.status = status
  }
}

/** No HTTP answer at all: refused, reset, unreachable. `syscallCode` is Node's (ECONNREFUSED…). */
export class HdfsConnectionError extends WebHdfsError {
  readonly syscallCode: string | undefined

  constructor (where: string, cause: unknown) {
    const syscallCode = (cause as { code?: unknown } | null)?.code
    const code = typeof syscallCode === 'string' ? syscallCode : undefined
    super('MS_HDFS_CONNECTION', `${where}: ${code ?? (cause as Error)?.message ?? 'connection failed'}`, { cause })
    this.syscallCode = code
  }
}

/** The NameNode wants Kerberos (SPNEGO) and none was configured, or it refused the credentials given. */
export class HdfsAuthError extends WebHdfsError {
  constructor (message: string, options?: ErrorOptions) { super('MS_HDFS_AUTH', message, options) }
}

/** The TLS certificate of a NameNode or DataNode did not verify against the trusted CAs. */
export class HdfsTlsError extends WebHdfsError {
  /** Node's verification code, e.g. UNABLE_TO_VERIFY_LEAF_SIGNATURE or ERR_TLS_CERT_ALTNAME_INVALID. */
  readonly tlsCode: string

  constructor (where: string, cause: Error & { code?: string }) {
    const tlsCode = cause.code ?? 'TLS'
    super('MS_HDFS_TLS', `${where}: TLS certificate not trusted (${tlsCode}: ${cause.message}) — pass the CA bundle (PEM) that signed it with --hdfs-ca-file`, { cause })
    this.tlsCode = tlsCode
  }
}

/** Node's codes for a certificate that failed verification (as opposed to a connection that failed). */
const TLS_VERIFY_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE', 'CERT_REJECTED', 'ERR_TLS_CERT_ALTNAME_INVALID'])

/** A transport failure as its typed error: certificate failures as HdfsTlsError, the rest as HdfsConnectionError. */
export function connectionError (where: string, cause: unknown): HdfsTlsError | HdfsConnectionError {
  const code = (cause as { code?: unknown } | null)?.code
  if (typeof code === 'string' && TLS_VERIFY_CODES.has(code)) return new HdfsTlsError(where, cause as Error & { code: string })
  return new HdfsConnectionError(where, cause)
}

export interface NameNodeFailure {
  namenode: string
  error: Error
}

/** Every NameNode failed (standby, down, timing out) in every round; `failures` lists each attempt. */
export class NameNodesUnavailableError extends WebHdfsError {
  readonly failures: NameNodeFailure[]

  constructor (what: string, failures: NameNodeFailure[]) {
    const last = new Map(failures.map(f => [f.namenode, f.error.message]))
    const detail = [...last].map(([nn, msg]) => `${nn} → ${msg}`).join('; ')
    super('MS_HDFS_NO_NAMENODE', `no NameNode could serve ${what}: ${detail}`, { cause: failures.at(-1)?.error })
    this.failures = failures
  }
}

const REMOTE_CLASSES: Record<string, new (remote: RemoteException, status: number, where: string) => HdfsRemoteError> = {
  FileNotFoundException: HdfsFileNotFoundError,
  AccessControlException: HdfsAccessControlError,
  SecurityException: HdfsAccessControlError,
  InvalidToken: HdfsAccessControlError,
  StandbyException: HdfsStandbyError,
  SafeModeException: HdfsSafeModeError,
  RetriableException: HdfsRetriableError
}

/** The error for a non-success answer: its RemoteException when the body holds one, else an HdfsHttpError. */
export function errorFromResponse (status: number, body: string, where: string): WebHdfsError {
  let remote: unknown
  try {
    remote = (JSON.parse(body) as { RemoteException?: unknown } | null)?.RemoteException
  } catch {
    // not JSON: a proxy or servlet error page
  }
  if (isRemoteException(remote)) {
    const Class = REMOTE_CLASSES[remote.exception] ?? HdfsUnknownRemoteError
    return new Class({ ...remote, message: redactTokens(remote.message) }, status, where)
  }
  return new HdfsHttpError(status, `${where}: HTTP ${status}: ${redactTokens(body).slice(0, 200)}`)
}

/** Error pages may echo the request URI, whose query carries a delegation token on secure clusters. */
export function redactTokens (text: string): string {
  return text.replace(/(delegation=)[^&\s"'<]+/gi, '$1<redacted>')
}

function isRemoteException (value: unknown): value is RemoteException {
  const r = value as Partial<RemoteException> | null | undefined
  return typeof r?.exception === 'string' && typeof r.message === 'string' && typeof r.javaClassName === 'string'
}
