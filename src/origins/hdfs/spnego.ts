/**
 * SPNEGO (`Authorization: Negotiate <token>`) for secured WebHDFS NameNodes, through MIT Kerberos via the
 * `kerberos` npm package (mongodb's GSSAPI binding, an optional dependency: it builds against libkrb5-dev).
 * Credentials come from a keytab (`--hdfs-keytab` with `--hdfs-principal`, read by MIT's client-keytab
 * support: KRB5_CLIENT_KTNAME) or from the ticket cache `kinit` filled (KRB5CCNAME or the default).
 * Tokens are handed to the caller and never logged; errors name the flags, never a token.
 */
import { createRequire } from 'node:module'
import { InvalidInputError } from '../../errors.ts'
import { HdfsAuthError } from './webhdfs-errors.ts'

export interface SpnegoOptions {
  /** Client principal (`user@REALM`); without it GSSAPI takes the ticket cache's default principal. */
  principal?: string
  /** Keytab holding `principal`'s keys: tickets are obtained from it as needed (and renewed by that). */
  keytab?: string
}

interface KerberosModule {
  initializeClient: (service: string, options: { principal?: string, mechOID: number }) => Promise<{ step: (challenge: string) => Promise<string> }>
  GSS_MECH_OID_SPNEGO: number
}

/** What to tell a user whose NameNode wants Kerberos and who has given none or a wrong one. */
export const KERBEROS_FLAGS = '--hdfs-principal with --hdfs-keytab (or MODELSWARM_HDFS_PRINCIPAL / MODELSWARM_HDFS_KEYTAB), or a ticket cache from kinit (KRB5CCNAME)'

/** Where the WebHDFS client gets SPNEGO tokens: SpnegoAuth below, or a stand-in in tests. */
export interface SpnegoProvider {
  /** A fresh base64 SPNEGO token for HTTP/host; throws HdfsAuthError. `where` names the request in errors. */
  token: (host: string, where: string) => Promise<string>
}

export class SpnegoAuth implements SpnegoProvider {
  readonly #principal: string | undefined
  #module: KerberosModule | undefined

  /**
   * Setting a keytab points MIT Kerberos at it through the process environment (KRB5_CLIENT_KTNAME) and
   * keeps the tickets it obtains in memory (KRB5CCNAME=MEMORY:…), never in a ticket cache on disk.
   * @throws InvalidInputError for a keytab without a principal.
   */
  constructor (options: SpnegoOptions = {}) {
    if (options.keytab !== undefined) {
      if (options.principal === undefined) throw new InvalidInputError('--hdfs-keytab needs --hdfs-principal (the principal whose keys it holds)')
      process.env.KRB5_CLIENT_KTNAME = options.keytab
      // The keytab's tickets stay in this process: a shared cache would hand them to whoever reads it.
      process.env.KRB5CCNAME = `MEMORY:modelswarm-${process.pid}`
    }
    this.#principal = options.principal
  }

  /**
   * A fresh SPNEGO token (base64) for the HTTP service on `host`, i.e. for principal HTTP/host@REALM.
   * @throws HdfsAuthError when the module is missing or GSSAPI has no usable credentials (the message names the flags).
   */
  async token (host: string, where: string): Promise<string> {
    const kerberos = this.#load(where)
    try {
      const client = await kerberos.initializeClient(`HTTP@${host}`, { principal: this.#principal, mechOID: kerberos.GSS_MECH_OID_SPNEGO })
      return await client.step('')
    } catch (err) {
      throw new HdfsAuthError(`${where}: Kerberos could not authenticate${this.#principal === undefined ? '' : ` ${this.#principal}`} to HTTP/${host}: ${(err as Error).message} — check ${KERBEROS_FLAGS}`, { cause: err })
    }
  }

  #load (where: string): KerberosModule {
    if (this.#module !== undefined) return this.#module
    try {
      // A native module: loaded on the first challenge, so clusters without Kerberos never need it.
      this.#module = createRequire(import.meta.url)('kerberos') as KerberosModule
    } catch (err) {
      throw new HdfsAuthError(`${where}: the NameNode requires Kerberos, but the optional 'kerberos' module did not load (${(err as Error).message}); install libkrb5-dev and run npm rebuild kerberos`, { cause: err })
    }
    return this.#module
  }
}
