/**
 * The S3 client an s3:// origin reads through (`@aws-sdk/client-s3`), configured from flags with the
 * standard AWS chain behind them: explicit keys when given, else `fromNodeProviderChain` (AWS_* env vars,
 * `~/.aws` profiles, SSO, web identity, container and instance roles), a profile from --s3-profile.
 */
import { S3Client } from '@aws-sdk/client-s3'
import { fromNodeProviderChain } from '@aws-sdk/credential-providers'
import { InvalidInputError } from '../../errors.ts'

export interface S3ClientOptions {
  /** An S3-compatible server (MinIO, Ceph RGW, moto…); unset: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  endpoint?: string
  /** Unset: AWS_REGION or the profile's region; us-east-1 against a non-AWS endpoint, where it only enters signatures. */
  region?: string
  /** `ENDPOINT/BUCKET/KEY` rather than `BUCKET.ENDPOINT/KEY` (what most non-AWS servers need). @default false */
  pathStyle?: boolean
  /** Static credentials: both or neither. */
  accessKeyId?: string
  secretAccessKey?: string
  /** A named profile of the shared AWS config files, for the credential chain and the region. */
  profile?: string
}

/** Idle time allowed between bytes of an answer: a stalled read fails and is retried by the puller. */
const SOCKET_IDLE_MS = 60_000
const CONNECT_MS = 10_000

/** Throws InvalidInputError when only one half of a static key pair is given. */
export function createS3Client (opts: S3ClientOptions): S3Client {
  if ((opts.accessKeyId === undefined) !== (opts.secretAccessKey === undefined)) {
    throw new InvalidInputError('give both --s3-access-key-id and --s3-secret-access-key-file, or neither (the standard AWS credential chain then applies)')
  }
  return new S3Client({
    endpoint: opts.endpoint,
    region: opts.region ?? (opts.endpoint !== undefined && opts.profile === undefined && process.env.AWS_REGION === undefined ? 'us-east-1' : undefined),
    forcePathStyle: opts.pathStyle ?? false,
    // A bucket in another region than the one configured answers 301: follow it instead of failing.
    followRegionRedirects: true,
    profile: opts.profile,
    credentials: opts.accessKeyId !== undefined
      ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey! }
      : fromNodeProviderChain(opts.profile === undefined ? {} : { profile: opts.profile }),
    // Reads are ranged, so no whole-object checksum could be checked; and non-AWS servers differ in what they accept.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { connectionTimeout: CONNECT_MS, socketTimeout: SOCKET_IDLE_MS }
  })
}
