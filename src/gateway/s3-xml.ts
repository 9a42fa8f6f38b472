/**
 * The S3 REST API's XML bodies (ListAllMyBucketsResult, ListBucketResult, Error), built with
 * fast-xml-parser's XMLBuilder so escaping is the library's, and the S3 errors the gateway answers.
 */
import { XMLBuilder } from 'fast-xml-parser'

const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/'

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: false, processEntities: true })

function document (root: string, body: Record<string, unknown>): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' + builder.build({ [root]: body }) as string
}

/**
 * An S3 error answer: the HTTP status and the `Code` SDKs map to their exception classes (NoSuchKey,
 * NoSuchBucket, InvalidRange, AccessDenied, SignatureDoesNotMatch, …). These are answers of the S3 protocol,
 * not modelswarm failures, so they are not in src/errors.ts's table.
 */
export class S3Error extends Error {
  readonly status: number
  readonly s3Code: string
  readonly headers: Record<string, string>

  constructor (status: number, s3Code: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'S3Error'
    this.status = status
    this.s3Code = s3Code
    this.headers = headers
  }
}

export function errorXml (err: S3Error, resource: string, requestId: string): string {
  return document('Error', { Code: err.s3Code, Message: err.message, Resource: resource, RequestId: requestId })
}

export function listBucketsXml (buckets: ReadonlyArray<{ name: string, created: Date }>): string {
  return document('ListAllMyBucketsResult', {
    '@_xmlns': S3_NS,
    Owner: { ID: 'modelswarm', DisplayName: 'modelswarm' },
    Buckets: { Bucket: buckets.map(b => ({ Name: b.name, CreationDate: b.created.toISOString() })) }
  })
}

export interface ListResultXml {
  bucket: string
  version: 1 | 2
  prefix: string
  delimiter: string
  maxKeys: number
  encodeUrl: boolean
  truncated: boolean
  contents: ReadonlyArray<{ key: string, size: number, etag: string, lastModified: Date }>
  commonPrefixes: readonly string[]
  /** v2 only. */
  continuationToken?: string
  nextContinuationToken?: string
  startAfter?: string
  /** v1 only. */
  marker?: string
  nextMarker?: string
}

/** ListBucketResult of ListObjects (v1) or ListObjectsV2; keys URL-encoded when the client asked `encoding-type=url`. */
export function listResultXml (r: ListResultXml): string {
  const enc = (s: string): string => r.encodeUrl ? encodeURIComponent(s).replace(/%2F/g, '/') : s
  const opt = (name: string, v: string | undefined): Record<string, string> => v === undefined || v === '' ? {} : { [name]: v }
  return document('ListBucketResult', {
    '@_xmlns': S3_NS,
    Name: r.bucket,
    Prefix: enc(r.prefix),
    ...(r.version === 1 ? { Marker: enc(r.marker ?? ''), ...opt('NextMarker', r.nextMarker === undefined ? undefined : enc(r.nextMarker)) } : {}),
    ...(r.version === 2 ? { KeyCount: r.contents.length + r.commonPrefixes.length, ...opt('ContinuationToken', r.continuationToken), ...opt('NextContinuationToken', r.nextContinuationToken), ...opt('StartAfter', r.startAfter === undefined ? undefined : enc(r.startAfter)) } : {}),
    MaxKeys: r.maxKeys,
    ...opt('Delimiter', r.delimiter === '' ? undefined : enc(r.delimiter)),
    ...(r.encodeUrl ? { EncodingType: 'url' } : {}),
    IsTruncated: r.truncated,
    Contents: r.contents.map(c => ({ Key: enc(c.key), LastModified: c.lastModified.toISOString(), ETag: c.etag, Size: c.size, StorageClass: 'STANDARD' })),
    CommonPrefixes: r.commonPrefixes.map(p => ({ Prefix: enc(p) }))
  })
}

export function locationXml (): string {
  return document('LocationConstraint', { '@_xmlns': S3_NS })
}
