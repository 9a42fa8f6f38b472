/**
 * S3 failures as typed errors with stable codes, from what the AWS SDK throws: service errors carry the S3
 * error code as their `name` and the HTTP status in `$metadata`; HEAD answers have no body, so a missing or
 * forbidden object arrives as `NotFound`/`Forbidden`. Messages name the bucket and key and the fix, never
 * a credential (the SDK's errors hold none).
 */
import { ERROR_CODES, ModelswarmError, type ErrorCode } from '../../errors.ts'

export class S3Error extends ModelswarmError {
  /** The S3 error code (`NoSuchBucket`, `AccessDenied`…) or Node's syscall code (`ECONNREFUSED`), when known. */
  readonly s3Code: string | undefined
  /** HTTP status of the answer; undefined when none arrived. */
  readonly status: number | undefined

  constructor (code: ErrorCode, message: string, s3Code: string | undefined, status: number | undefined, options?: ErrorOptions) {
    const hint = (ERROR_CODES[code] as { hint?: string }).hint
    super(code, hint === undefined ? message : `${message} — ${hint}`, options)
    this.s3Code = s3Code
    this.status = status
  }
}

const BY_S3_CODE: Record<string, ErrorCode> = {
  NoSuchBucket: 'MS_S3_NO_SUCH_BUCKET',
  NoSuchKey: 'MS_S3_NO_SUCH_KEY',
  NotFound: 'MS_S3_NO_SUCH_KEY',
  AccessDenied: 'MS_S3_ACCESS_DENIED',
  Forbidden: 'MS_S3_ACCESS_DENIED',
  AllAccessDisabled: 'MS_S3_ACCESS_DENIED',
  InvalidAccessKeyId: 'MS_S3_ACCESS_DENIED',
  SignatureDoesNotMatch: 'MS_S3_ACCESS_DENIED',
  InvalidToken: 'MS_S3_ACCESS_DENIED',
  ExpiredToken: 'MS_S3_ACCESS_DENIED',
  TokenRefreshRequired: 'MS_S3_ACCESS_DENIED',
  AccountProblem: 'MS_S3_ACCESS_DENIED',
  CredentialsProviderError: 'MS_S3_NO_CREDENTIALS'
}

interface SdkError {
  name?: unknown
  message?: unknown
  code?: unknown
  $metadata?: { httpStatusCode?: number }
}

/**
 * The typed error for what an S3 call threw; `where` names the bucket and key asked for (`s3://b/k`).
 * An abort is passed through unchanged, so callers still see their own AbortSignal's reason.
 */
export function s3ErrorFrom (err: unknown, where: string): Error {
  if (err instanceof ModelswarmError) return err
  const e = (err ?? {}) as SdkError
  const name = typeof e.name === 'string' ? e.name : undefined
  if (name === 'AbortError') return err as Error
  const message = typeof e.message === 'string' ? e.message : String(err)
  const status = e.$metadata?.httpStatusCode
  if (message === 'Region is missing') return new S3Error('MS_S3_NO_REGION', `${where}: no region for the S3 client`, name, undefined, { cause: err })
  const mapped = name === undefined ? undefined : BY_S3_CODE[name]
  if (mapped !== undefined) return new S3Error(mapped, `${where}: ${name}: ${message}`, name, status, { cause: err })
  if (status === 403) return new S3Error('MS_S3_ACCESS_DENIED', `${where}: HTTP 403: ${message}`, name, status, { cause: err })
  if (status !== undefined) return new S3Error('MS_S3_REMOTE', `${where}: ${name ?? 'HTTP'} ${status}: ${message}`, name, status, { cause: err })
  // No HTTP answer: refused, reset, unresolvable, timed out.
  const syscall = typeof e.code === 'string' ? e.code : undefined
  return new S3Error('MS_S3_CONNECTION', `${where}: no answer from the object store: ${syscall ?? name ?? 'error'}: ${message}`, syscall ?? name, undefined, { cause: err })
}
