/**
 * SigV4 checking of incoming S3 requests (header form, `Authorization: AWS4-HMAC-SHA256 …`): the request is
 * signed again with @smithy/signature-v4 — the signer the AWS SDK itself uses — under the caller's
 * credential scope, date and signed headers, and the two signatures compared in constant time.
 */
import { timingSafeEqual } from 'node:crypto'
import { Hash } from '@smithy/hash-node'
import { HttpRequest } from '@smithy/protocol-http'
import { SignatureV4 } from '@smithy/signature-v4'
import { S3Error } from './s3-xml.ts'

/** How far a request's x-amz-date may be from the gateway's clock, as S3 allows (RequestTimeTooSkewed). */
export const MAX_CLOCK_SKEW_MS = 15 * 60_000

/** Access key id → secret access key. */
export type AccessKeys = ReadonlyMap<string, string>

/** What the verifier needs of an HTTP request; `path` is the raw (still percent-encoded) path. */
export interface IncomingRequest {
  method: string
  path: string
  query: URLSearchParams
  /** Header names in lower case. */
  headers: Record<string, string | string[] | undefined>
}

export interface AuthHeader { accessKeyId: string, date: string, region: string, service: string, signedHeaders: string[], signature: string }

/** Parses `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/aws4_request, SignedHeaders=a;b, Signature=hex`. */
export function parseAuthorization (value: string): AuthHeader | undefined {
  const m = /^AWS4-HMAC-SHA256\s+Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request\s*,\s*SignedHeaders=([a-z0-9;_.-]+)\s*,\s*Signature=([0-9a-f]{64})$/.exec(value.trim())
  if (m === null) return undefined
  return { accessKeyId: m[1]!, date: m[2]!, region: m[3]!, service: m[4]!, signedHeaders: m[5]!.split(';'), signature: m[6]! }
}

/** `20261130T031500Z` → Date; undefined when malformed. */
function parseAmzDate (v: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v)
  if (m === null) return undefined
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!))
  return Number.isNaN(d.getTime()) ? undefined : d
}

function header (req: IncomingRequest, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v.join(',') : v
}

/**
 * Returns the caller's access key id when the request is signed by one of `keys`; undefined for an
 * unsigned request (the caller decides whether anonymous access is allowed).
 * @throws S3Error InvalidAccessKeyId (unknown key), SignatureDoesNotMatch, RequestTimeTooSkewed,
 *   AccessDenied (an authorization this gateway does not check: presigned URLs, SigV2, SigV4a)
 */
export async function verifyRequest (req: IncomingRequest, keys: AccessKeys, now: Date): Promise<string | undefined> {
  const authorization = header(req, 'authorization')
  if (authorization === undefined) {
    if (req.query.has('X-Amz-Signature') || req.query.has('Signature')) throw new S3Error(403, 'AccessDenied', 'presigned URLs are not supported by this gateway; sign requests with SigV4 headers')
    return undefined
  }
  const auth = parseAuthorization(authorization)
  if (auth === undefined) throw new S3Error(403, 'AccessDenied', 'only AWS4-HMAC-SHA256 (SigV4) header authorization is supported')
  const secret = keys.get(auth.accessKeyId)
  if (secret === undefined) throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.')
  const amzDate = header(req, 'x-amz-date')
  const signingDate = amzDate === undefined ? undefined : parseAmzDate(amzDate)
  if (signingDate === undefined || !auth.signedHeaders.includes('x-amz-date') || !amzDate!.startsWith(auth.date)) {
    throw new S3Error(403, 'AccessDenied', 'a signed x-amz-date header matching the credential scope is required')
  }
  if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_CLOCK_SKEW_MS) throw new S3Error(403, 'RequestTimeTooSkewed', 'The difference between the request time and the server\'s time is too large.')
  const signedHeaders: Record<string, string> = {}
  for (const name of auth.signedHeaders) {
    const v = header(req, name)
    if (v === undefined) throw new S3Error(403, 'SignatureDoesNotMatch', `signed header ${name} is missing from the request`)
    signedHeaders[name] = v
  }
  const query: Record<string, string | string[]> = {}
  for (const key of new Set(req.query.keys())) {
    const all = req.query.getAll(key)
    query[key] = all.length === 1 ? all[0]! : all
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: auth.accessKeyId, secretAccessKey: secret },
    region: auth.region,
    service: auth.service,
    sha256: Hash.bind(null, 'sha256'),
    // S3 signs the path as sent, encoded once.
    uriEscapePath: false,
    applyChecksum: false
  })
  // Only the headers the caller signed, all signed: the same canonical request as the caller's.
  const request = new HttpRequest({ method: req.method, path: req.path, query, headers: signedHeaders, hostname: signedHeaders.host ?? '' })
  if (signedHeaders['x-amz-content-sha256'] === undefined) throw new S3Error(403, 'AccessDenied', 'a signed x-amz-content-sha256 header is required')
  const signed = await signer.sign(request, { signingDate, signableHeaders: new Set(auth.signedHeaders) })
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers.authorization))?.[1] ?? ''
  if (!timingSafeEqual(Buffer.from(expected.padEnd(64, '0')), Buffer.from(auth.signature))) {
    throw new S3Error(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.')
  }
  return auth.accessKeyId
}
