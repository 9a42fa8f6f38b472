/** `s3://BUCKET/PREFIX` origin locations and S3 endpoint URLs: parsing and validation, no I/O. */
import { InvalidInputError } from '../../errors.ts'

export interface S3Location {
  bucket: string
  /** Key prefix holding `<name>/<version>/`, without leading or trailing slashes; '' for the bucket's root. */
  prefix: string
}

// S3's bucket naming rules (3–63 characters, lowercase letters, digits, dots and hyphens, a letter or digit
// at each end); underscores are let through for older buckets and non-AWS servers that allow them.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/

export function isS3Url (value: string): boolean {
  return value.startsWith('s3://')
}

/**
 * Parses `s3://BUCKET`, `s3://BUCKET/` or `s3://BUCKET/PREFIX[/]`. Throws InvalidInputError for another
 * scheme, a bad bucket name, or a prefix with empty, `.` or `..` segments (`a//b` names no directory).
 */
export function parseS3Url (value: string): S3Location {
  if (!isS3Url(value)) throw new InvalidInputError(`not an s3:// URL: ${JSON.stringify(value)}`)
  const rest = value.slice('s3://'.length)
  const slash = rest.indexOf('/')
  const bucket = slash === -1 ? rest : rest.slice(0, slash)
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '')
  if (!BUCKET.test(bucket)) throw new InvalidInputError(`${JSON.stringify(value)}: ${JSON.stringify(bucket)} is not a bucket name (3–63 lowercase letters, digits, dots and hyphens)`)
  if (prefix !== '' && prefix.split('/').some(s => s === '' || s === '.' || s === '..')) {
    throw new InvalidInputError(`${JSON.stringify(value)}: the prefix must be slash-separated names without empty, . or .. parts`)
  }
  return { bucket, prefix }
}

/** The key prefix of a directory under `location`: `PREFIX/a/b/`, or `a/b/` at the bucket's root. */
export function keyPrefix (location: S3Location, ...parts: string[]): string {
  return [...location.prefix === '' ? [] : [location.prefix], ...parts].map(p => `${p}/`).join('')
}

/**
 * An S3 endpoint URL as given to --s3-endpoint: http or https, no credentials in it (they would show in
 * logs and `ps`), no query or fragment. Returns it without a trailing slash; throws InvalidInputError.
 */
export function parseEndpoint (value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InvalidInputError(`--s3-endpoint must be a URL such as http://minio:9000, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError(`--s3-endpoint must be http:// or https://, got ${url.protocol}`)
  if (url.username !== '' || url.password !== '') throw new InvalidInputError('--s3-endpoint must not hold credentials: give them with --s3-access-key-id and --s3-secret-access-key-file or the AWS environment')
  if (url.search !== '' || url.hash !== '') throw new InvalidInputError(`--s3-endpoint takes no query or fragment, got ${JSON.stringify(value)}`)
  return url.toString().replace(/\/+$/, '')
}
