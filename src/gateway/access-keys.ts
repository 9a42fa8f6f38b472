/**
 * The gateway's access keys file (`--keys-file`): one `ACCESS_KEY_ID:SECRET_ACCESS_KEY` per line, as
 * s3fs's passwd file has them; blank lines and lines starting with `#` are skipped. Meant to be a mounted
 * Kubernetes Secret, readable by the gateway alone.
 */
import { readFile } from 'node:fs/promises'
import { InvalidInputError } from '../errors.ts'
import type { AccessKeys } from './sigv4-verify.ts'

/**
 * Parses the file's text. Throws InvalidInputError naming the line for a malformed entry or a key id given twice.
 */
export function parseAccessKeys (text: string, source: string): AccessKeys {
  const keys = new Map<string, string>()
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const cut = line.indexOf(':')
    const id = line.slice(0, cut).trim()
    const secret = line.slice(cut + 1).trim()
    if (cut < 0 || !/^[A-Za-z0-9._-]{1,128}$/.test(id) || secret === '') throw new InvalidInputError(`${source} line ${i + 1}: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY`)
    if (keys.has(id)) throw new InvalidInputError(`${source} line ${i + 1}: access key id ${id} given twice`)
    keys.set(id, secret)
  })
  return keys
}

/** Reads and parses the keys file. Throws InvalidInputError when it cannot be read, is malformed or holds no key. */
export async function readAccessKeys (file: string): Promise<AccessKeys> {
  const text = await readFile(file, 'utf8').catch((err: unknown) => { throw new InvalidInputError(`--keys-file ${file}: ${(err as Error).message}`, { cause: err }) })
  const keys = parseAccessKeys(text, `--keys-file ${file}`)
  if (keys.size === 0) throw new InvalidInputError(`--keys-file ${file} holds no access key`)
  return keys
}
