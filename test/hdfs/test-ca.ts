/**
 * A private CA made for one test (openssl): a server certificate for localhost and 127.0.0.1 signed by it,
 * packed as the PKCS12 key store MiniHdfs's --https takes, and the CA certificate as the PEM bundle
 * clients pass to --hdfs-ca-file. A second, unrelated CA gives the "wrong CA" case.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface TestCa {
  /** PEM file of the CA that signed the server certificate. */
  caFile: string
  /** PEM file of another CA, which signed nothing here. */
  otherCaFile: string
  keystore: string
  passwordFile: string
}

async function makeCa (dir: string, name: string): Promise<{ key: string, cert: string }> {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.pem`)
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=modelswarm test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', key, '-out', cert])
  return { key, cert }
}

/** Options for a Node TLS server presenting the test CA's server certificate. */
export async function serverTlsOptions (ca: TestCa): Promise<{ pfx: Buffer, passphrase: string }> {
  return { pfx: await readFile(ca.keystore), passphrase: (await readFile(ca.passwordFile, 'utf8')).trim() }
}

/** Writes the CA, the server key store and its password file into `dir`. */
export async function createTestCa (dir: string): Promise<TestCa> {
  const ca = await makeCa(dir, 'ca')
  const other = await makeCa(dir, 'other-ca')
  const key = join(dir, 'server.key')
  const csr = join(dir, 'server.csr')
  const cert = join(dir, 'server.pem')
  const ext = join(dir, 'server.ext')
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost', '-keyout', key, '-out', csr])
  await writeFile(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', cert])
  const password = randomBytes(12).toString('hex')
  const passwordFile = join(dir, 'keystore.password')
  await writeFile(passwordFile, password, { mode: 0o600 })
  const keystore = join(dir, 'keystore.p12')
  await run('openssl', ['pkcs12', '-export', '-name', 'server', '-in', cert, '-inkey', key, '-certfile', ca.cert,
    '-out', keystore, '-passout', `file:${passwordFile}`])
  return { caFile: ca.cert, otherCaFile: other.cert, keystore, passwordFile }
}
