import { Hash } from '@smithy/hash-node'
import { HttpRequest } from '@smithy/protocol-http'
import { SignatureV4 } from '@smithy/signature-v4'
import { describe, expect, it } from 'vitest'
import { parseAccessKeys } from '../../src/gateway/access-keys.ts'
import { verifyRequest, type IncomingRequest } from '../../src/gateway/sigv4-verify.ts'

const keys = parseAccessKeys('# keys\nAKIDONE:secret-one\n\nAKIDTWO:secret/two+\n', 'test')
const when = new Date('2026-11-30T03:00:00Z')

/** A GET signed as an S3 client signs it, turned into what the gateway's HTTP server sees. */
async function signed (secret: string, path: string, query: Record<string, string>, at = when): Promise<IncomingRequest> {
  const signer = new SignatureV4({ credentials: { accessKeyId: 'AKIDTWO', secretAccessKey: secret }, region: 'us-east-1', service: 's3', sha256: Hash.bind(null, 'sha256'), uriEscapePath: false })
  const req = await signer.sign(new HttpRequest({
    method: 'GET', protocol: 'http:', hostname: '127.0.0.1', port: 9000, path, query,
    headers: { host: '127.0.0.1:9000', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', range: 'bytes=0-7' }
  }), { signingDate: at })
  const headers: Record<string, string> = {}
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v
  return { method: 'GET', path, query: new URLSearchParams(query), headers }
}

async function code (p: Promise<unknown>): Promise<string> {
  return await p.then(() => 'ok', (err: { s3Code: string }) => err.s3Code)
}

describe('verifyRequest', () => {
  it('accepts a request signed with a configured key, query and encoded path included', async () => {
    const req = await signed('secret/two+', '/it-llm/v1/dir%20a/f%2Bg.bin', { 'list-type': '2', prefix: 'v1/a b' })
    expect(await verifyRequest(req, keys, when)).toBe('AKIDTWO')
  })

  it('refuses a wrong secret, a changed request, an unknown key and a skewed clock', async () => {
    expect(await code(verifyRequest(await signed('wrong', '/it-llm/v1/a', {}), keys, when))).toBe('SignatureDoesNotMatch')
    const req = await signed('secret/two+', '/it-llm/v1/a', {})
    expect(await code(verifyRequest({ ...req, path: '/it-llm/v1/b' }, keys, when))).toBe('SignatureDoesNotMatch')
    expect(await code(verifyRequest({ ...req, headers: { ...req.headers, range: 'bytes=0-8' } }, keys, when))).toBe('SignatureDoesNotMatch')
    expect(await code(verifyRequest(req, parseAccessKeys('AKIDONE:secret-one', 'test'), when))).toBe('InvalidAccessKeyId')
    expect(await code(verifyRequest(req, keys, new Date(when.getTime() + 16 * 60_000)))).toBe('RequestTimeTooSkewed')
  })

  it('lets the caller decide on unsigned requests and refuses presigned URLs and other schemes', async () => {
    expect(await verifyRequest({ method: 'GET', path: '/', query: new URLSearchParams(), headers: {} }, keys, when)).toBeUndefined()
    expect(await code(verifyRequest({ method: 'GET', path: '/b/k', query: new URLSearchParams('X-Amz-Signature=ab'), headers: {} }, keys, when))).toBe('AccessDenied')
    expect(await code(verifyRequest({ method: 'GET', path: '/', query: new URLSearchParams(), headers: { authorization: 'AWS AKIDONE:abc' } }, keys, when))).toBe('AccessDenied')
  })
})

describe('parseAccessKeys', () => {
  it('reads ID:SECRET lines and names the line of a malformed or repeated entry', () => {
    expect([...keys]).toEqual([['AKIDONE', 'secret-one'], ['AKIDTWO', 'secret/two+']])
    expect(() => parseAccessKeys('AKID:a\nnocolon\n', 'f')).toThrow(/f line 2/)
    expect(() => parseAccessKeys('AKID:a\nAKID:b\n', 'f')).toThrow(/given twice/)
  })
})
