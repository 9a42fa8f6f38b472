import { describe, expect, it } from 'vitest'
import { keyPrefix, parseEndpoint, parseS3Url } from '../../../src/origins/s3/s3-url.ts'

describe('s3:// origin URLs', () => {
  it('splits bucket and prefix, with or without trailing slashes, and the bucket root', () => {
    expect(parseS3Url('s3://models/prod/llm')).toEqual({ bucket: 'models', prefix: 'prod/llm' })
    expect(parseS3Url('s3://models/prod/')).toEqual({ bucket: 'models', prefix: 'prod' })
    expect(parseS3Url('s3://models')).toEqual({ bucket: 'models', prefix: '' })
    expect(parseS3Url('s3://models/')).toEqual({ bucket: 'models', prefix: '' })
    expect(parseS3Url('s3://my.models-2/a')).toEqual({ bucket: 'my.models-2', prefix: 'a' })
  })

  it('refuses other schemes, bad bucket names and prefixes that name no directory', () => {
    for (const bad of ['http://models/x', 's3://', 's3:///x', 's3://ab/x', 's3://Models/x', 's3://-models/x', 's3://models/a//b', 's3://models/a/../b', 's3://models/./b']) {
      expect(() => parseS3Url(bad), bad).toThrow(expect.objectContaining({ code: 'MS_INVALID_INPUT' }))
    }
  })

  it('key prefixes of directories under the location end in a slash and never start with one', () => {
    expect(keyPrefix({ bucket: 'b', prefix: 'prod' }, 'llm', 'v1')).toBe('prod/llm/v1/')
    expect(keyPrefix({ bucket: 'b', prefix: '' }, 'llm', 'v1')).toBe('llm/v1/')
    expect(keyPrefix({ bucket: 'b', prefix: '' })).toBe('')
    expect(keyPrefix({ bucket: 'b', prefix: 'prod' })).toBe('prod/')
  })

  it('endpoints are http(s) URLs without credentials, query or fragment', () => {
    expect(parseEndpoint('http://minio:9000/')).toBe('http://minio:9000')
    expect(parseEndpoint('https://s3.example.com')).toBe('https://s3.example.com')
    for (const bad of ['minio:9000', 'ftp://x', 'http://key:secret@minio:9000', 'http://minio:9000/?x=1', '']) {
      expect(() => parseEndpoint(bad), bad).toThrow(expect.objectContaining({ code: 'MS_INVALID_INPUT' }))
    }
    // The message never repeats a credential it refuses.
    expect(() => parseEndpoint('http://key:Zq9pw0rd@minio:9000')).toThrow(expect.not.objectContaining({ message: expect.stringContaining('Zq9pw0rd') }))
  })
})
