/**
 * A real HDFS for tests and benches: builds test/hdfs (Maven, once, skipped while target/ is newer than
 * the sources) and runs MiniHdfs.java, whose stdin/stdout line protocol is documented at the top of that file.
 */
import { spawn, execFile, type ChildProcessByStdio } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { promisify } from 'node:util'

const HDFS_DIR = import.meta.dirname
const POM = join(HDFS_DIR, 'pom.xml')
const SOURCE = join(HDFS_DIR, 'src/main/java/dev/modelswarm/hdfs/MiniHdfs.java')
const CLASSES = join(HDFS_DIR, 'target/classes')
const CLASS_FILE = join(CLASSES, 'dev/modelswarm/hdfs/MiniHdfs.class')
const CLASSPATH_FILE = join(HDFS_DIR, 'target/classpath.txt')
const STDERR_TAIL_BYTES = 8192

export interface MiniHdfsOptions {
  /** Two NameNodes (NN0 active) instead of one. */
  ha?: boolean
  /** Limit for the JVM to print its ready line (the Maven build has its own). @default 120_000 */
  startTimeoutMs?: number
  /** Limit for each command's answer; on expiry the JVM is killed. @default 300_000 */
  commandTimeoutMs?: number
  /** Run the JVM inside this network namespace (`ip netns exec`); the network lab's offline namespace. */
  netns?: string
  /** Listen on every address and have WebHDFS redirects name this one (the namespace's address). @default 127.0.0.1 only */
  host?: string
  /** HTTPS only, with this PKCS12 key store (see test-ca.ts); WebHDFS addresses become https://. */
  https?: { keystore: string, passwordFile: string }
  /** A MiniKdc and a Kerberos-secured cluster (needs `https`); addresses become https://localhost:PORT. */
  kerberos?: boolean
}

/** The KDC of a `kerberos` cluster and its client principals. */
export interface MiniKdcInfo {
  realm: string
  kdcHost: string
  kdcPort: number
  /** alice@REALM, whose keys are in `keytab`. */
  principal: string
  keytab: string
  /** bob@REALM, who logs in with `password` (kinit). */
  passwordPrincipal: string
  password: string
}

export interface MiniHdfs {
  /** The JVM's process id (tests stall the whole HDFS with SIGSTOP/SIGCONT). */
  readonly pid: number
  /** WebHDFS base URLs (`http://127.0.0.1:PORT`) in NameNode order. */
  readonly namenodes: string[]
  /** Index of the active NameNode, -1 when none. */
  readonly active: number
  /** Set when started with `kerberos`. */
  readonly kerberos?: MiniKdcInfo
  /** Sends one protocol line; resolves with the answer object, rejects on `{"ok":false}`. */
  command: (line: string) => Promise<Record<string, unknown>>
  /** Writes `size` bytes of `contentBytes(seed, …)` to `path` on the JVM side. */
  writeFile: (path: string, size: number, seed: number, blockSize?: number) => Promise<void>
  /** HA only: makes the other NameNode active and the current one standby. */
  failover: () => Promise<void>
  stop: () => Promise<void>
}

let build: Promise<string> | undefined

async function mtime (path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.mtimeMs ?? -1
}

/** Compiles the launcher unless target/ is up to date; resolves with the java classpath. */
export function ensureBuilt (): Promise<string> {
  build ??= (async () => {
    const built = Math.min(await mtime(CLASS_FILE), await mtime(CLASSPATH_FILE))
    if (built < Math.max(await mtime(POM), await mtime(SOURCE))) {
      await promisify(execFile)('mvn', ['-q', '-B', '-f', POM, 'compile', 'dependency:build-classpath',
        `-Dmdep.outputFile=${CLASSPATH_FILE}`], { timeout: 600_000, maxBuffer: 16 << 20 })
    }
    return `${CLASSES}:${(await readFile(CLASSPATH_FILE, 'utf8')).trim()}`
  })()
  build.catch(() => { build = undefined })
  return build
}

function javaBinary (): string {
  return process.env.JAVA_HOME !== undefined ? join(process.env.JAVA_HOME, 'bin/java') : 'java'
}

export async function startMiniHdfs (options: MiniHdfsOptions = {}): Promise<MiniHdfs> {
  const classpath = await ensureBuilt()
  const baseDir = await mkdtemp(join(tmpdir(), 'mini-hdfs-'))
  // Jetty unpacks web apps into java.io.tmpdir; keep them inside baseDir so stop() removes them too.
  const javaTmp = join(baseDir, 'java-tmp')
  await mkdir(javaTmp)
  // On the class path for ssl-server.xml (--https); it must exist when the JVM starts to be searched.
  await mkdir(join(baseDir, 'conf'))
  const java = [javaBinary(),
    // MiniDFSCluster reflects into these JDK internals on Java 17.
    '--add-opens', 'java.base/java.lang=ALL-UNNAMED',
    '--add-opens', 'java.base/java.util=ALL-UNNAMED',
    '--add-opens', 'java.base/java.nio=ALL-UNNAMED',
    // Hadoop's KerberosUtil reads the default realm from the JDK's Kerberos internals.
    '--add-exports', 'java.security.jgss/sun.security.krb5=ALL-UNNAMED',
    // Hadoop logs through slf4j-simple to stderr, of which a tail goes into our errors.
    `-Dorg.slf4j.simpleLogger.defaultLogLevel=${process.env.MINI_HDFS_LOG_LEVEL ?? 'warn'}`,
    `-Djava.io.tmpdir=${javaTmp}`, '-Xmx1g', '-cp', `${join(baseDir, 'conf')}:${classpath}`, 'dev.modelswarm.hdfs.MiniHdfs', baseDir,
    ...(options.ha === true ? ['--ha'] : []), ...(options.host === undefined ? [] : ['--host', options.host]),
    ...(options.https === undefined ? [] : ['--https', options.https.keystore, options.https.passwordFile]),
    ...(options.kerberos === true ? ['--kerberos'] : [])]
  // `ip netns exec` execs the command, so the child's pid is still the JVM's.
  const argv = options.netns === undefined ? java : ['ip', 'netns', 'exec', options.netns, ...java]
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] })

  let stderrTail = ''
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    stderrTail = (stderrTail + s).slice(-STDERR_TAIL_BYTES)
  })
  const failure = (what: string): Error => new Error(`mini-hdfs: ${what}; JVM stderr tail:\n${stderrTail}`)

  // Never leave a JVM behind; a parent killed with SIGKILL closes stdin, which MiniHdfs treats as "stop".
  const killOnExit = (): void => { child.kill('SIGKILL') }
  process.once('exit', killOnExit)

  const pending: Array<{ resolve: (v: Record<string, unknown>) => void, reject: (e: Error) => void }> = []
  let exited: Error | undefined
  let markExited = (): void => {}
  const exitedPromise = new Promise<void>(resolve => { markExited = resolve })
  const gone = (err: Error): void => {
    if (exited !== undefined) return
    exited = err
    process.removeListener('exit', killOnExit)
    for (const p of pending.splice(0)) p.reject(err)
    markExited()
  }
  child.once('exit', (code, signal) => gone(failure(`JVM exited (code ${code}, signal ${signal})`)))
  child.once('error', err => gone(failure(`cannot run java: ${err.message}`)))
  child.stdin.on('error', () => { /* EPIPE after the JVM died: reported through 'exit' */ })
  createInterface({ input: child.stdout }).on('line', line => {
    let answer: Record<string, unknown>
    try {
      answer = JSON.parse(line) as Record<string, unknown>
    } catch {
      stderrTail += `\n[unexpected stdout line] ${line}`
      return
    }
    const waiter = pending.shift()
    if (waiter === undefined) return
    if (answer.ok === false) waiter.reject(new Error(`mini-hdfs: ${String(answer.error)}`))
    else waiter.resolve(answer)
  })

  function awaitLine (timeoutMs: number, what: string): Promise<Record<string, unknown>> {
    if (exited !== undefined) return Promise.reject(exited)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // The answer stream would desynchronise: kill the JVM, which rejects every waiter.
        reject(failure(`${what}: no answer within ${timeoutMs} ms`))
        child.kill('SIGKILL')
      }, timeoutMs)
      pending.push({
        resolve: v => { clearTimeout(timer); resolve(v) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
    })
  }

  const commandTimeoutMs = options.commandTimeoutMs ?? 300_000
  let active = 0
  async function command (line: string): Promise<Record<string, unknown>> {
    const answer = awaitLine(commandTimeoutMs, line)
    child.stdin.write(`${line}\n`)
    const result = await answer
    if (typeof result.active === 'number') active = result.active
    return result
  }

  let ready: Record<string, unknown>
  try {
    ready = await awaitLine(options.startTimeoutMs ?? 120_000, 'start')
  } catch (err) {
    child.kill('SIGKILL')
    await exitedPromise
    await rm(baseDir, { recursive: true, force: true })
    throw err
  }
  const namenodes = ready.namenodes as string[]

  return {
    pid: child.pid!,
    namenodes,
    kerberos: ready.kerberos as MiniKdcInfo | undefined,
    get active () { return active },
    command,
    async writeFile (path, size, seed, blockSize) {
      if (/\s/.test(path)) throw new Error(`mini-hdfs: no whitespace allowed in ${JSON.stringify(path)}`)
      await command(`write ${path} ${size} ${seed}${blockSize === undefined ? '' : ` ${blockSize}`}`)
    },
    async failover () {
      await command(`failover ${active} ${active === 0 ? 1 : 0}`)
    },
    async stop () {
      if (exited === undefined) {
        const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000)
        child.stdin.end('stop\n')
        await exitedPromise
        clearTimeout(killTimer)
      }
      await rm(baseDir, { recursive: true, force: true })
    }
  }
}
