// The image, built here without a Docker daemon (deploy/image/build.sh: debootstrap + umoci) and run with
// runc as Kubernetes would run it under the chart: its numeric user, read-only root, no capabilities, a
// network namespace with nothing but loopback. A seeder container serves a local origin, a fetch container
// downloads from it, and the fetched bytes must equal the origin's. The Dockerfile is linted by hadolint and
// must describe the same image.
import { chown, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { makeModel, treeDigests, type TestModel } from '../support/cli.ts'
import { createNetns, deleteContainers, deleteNetns, getInNetns, loadBundle, startContainer, type ImageBundle } from './runc.ts'
import { ensureDeployTools, INSTALL_TIMEOUT_MS, REPO, runTool, type DeployTools } from './tools.ts'

const TAG = '0.0.0-test'
const IMAGE_UID = 10001
const NETNS = `ms-img-${process.pid}`

let tools: DeployTools
let dir: string
let bundle: ImageBundle
let imageConfig: Record<string, any>
let model: TestModel | undefined

beforeAll(async () => {
  tools = ensureDeployTools()
  dir = await mkdtemp(join(tmpdir(), 'ms-image-'))
  const oci = join(dir, 'oci')
  const build = await runTool(join(REPO, 'deploy/image/build.sh'), ['--oci', oci, '--tag', TAG])
  if (build.code !== 0) throw new Error(`build.sh exited ${build.code}: ${build.stderr.slice(-2000)}`)
  expect(build.stdout.trim()).toBe(`${oci}:${TAG}`)
  const unpack = await runTool('umoci', ['unpack', '--image', `${oci}:${TAG}`, join(dir, 'bundle')])
  if (unpack.code !== 0) throw new Error(`umoci unpack: ${unpack.stderr}`)
  bundle = await loadBundle(join(dir, 'bundle'))
  imageConfig = await readImageConfig(oci)
  await createNetns(NETNS)
}, INSTALL_TIMEOUT_MS)

afterAll(async () => {
  await deleteContainers()
  await deleteNetns(NETNS)
  if (model !== undefined) await rm(model.root, { recursive: true, force: true })
  if (dir !== undefined) await rm(dir, { recursive: true, force: true })
})

describe('deploy/Dockerfile', () => {
  it('passes hadolint', async () => {
    const r = await runTool(tools.hadolint, [join(REPO, 'deploy/Dockerfile')])
    expect(r.stdout + r.stderr).toBe('')
    expect(r.code).toBe(0)
  })

  it('describes the image build.sh builds: user, entrypoint, cmd, workdir, env, ports, volume', async () => {
    const df = finalStage(await readFile(join(REPO, 'deploy/Dockerfile'), 'utf8'))
    expect(imageConfig.User).toBe(df.USER)
    expect(imageConfig.User).toBe(`${IMAGE_UID}:${IMAGE_UID}`)
    expect(imageConfig.Entrypoint).toEqual(JSON.parse(df.ENTRYPOINT!))
    expect(imageConfig.Cmd).toEqual(JSON.parse(df.CMD!))
    expect(imageConfig.WorkingDir).toBe(df.WORKDIR)
    expect(imageConfig.Env).toContain(df.ENV)
    expect(Object.keys(imageConfig.ExposedPorts).sort()).toEqual(df.EXPOSE!.split(' ').map(p => `${p}/tcp`).sort())
    expect(Object.keys(imageConfig.Volumes)).toEqual(JSON.parse(df.VOLUME!))
  })
})

describe('the image, run with runc (read-only root, no capabilities, loopback-only network)', () => {
  it('runs as its numeric non-root user', () => {
    expect(bundle.config.process.user).toMatchObject({ uid: IMAGE_UID, gid: IMAGE_UID })
  })

  it('creates a seeder key, seeds a local origin under that identity, and a fetch container gets the same bytes', async () => {
    model = await makeModel(6 << 20)
    const cache = join(dir, 'cache')
    const out = join(dir, 'out')
    for (const d of [cache, out]) { await mkdir(d); await chown(d, IMAGE_UID, IMAGE_UID) }
    const cacheMount = { source: cache, destination: '/var/lib/modelswarm' }

    const keygen = await startContainer(bundle, { id: `${NETNS}-key`, workDir: dir, netns: NETNS, entrypoint: ['/usr/local/bin/node'], argv: ['/app/deploy/seeder-key.ts', '/var/lib/modelswarm/identity.key'], mounts: [cacheMount] })
    expect(await keygen.exited).toBe(0)
    const key = keygen.json[0]!
    expect(key).toMatchObject({ created: true })
    expect((await stat(join(cache, 'identity.key'))).uid).toBe(IMAGE_UID)

    const seeder = await startContainer(bundle, {
      id: `${NETNS}-seed`,
      workDir: dir,
      netns: NETNS,
      argv: ['seed', '--origin', '/origin', '--listen', '/ip4/127.0.0.1/tcp/4001', '--admin', '127.0.0.1:7070', '--poll-interval', '500ms', '--json'],
      mounts: [cacheMount, { source: model.origin, destination: '/origin', readOnly: true }]
    })
    try {
      const info = await seeder.waitFor(m => typeof m.peerId === 'string')
      expect(info.peerId).toBe(key.peerId)
      expect(await getInNetns(NETNS, 'http://127.0.0.1:7070/healthz')).toMatchObject({ status: 200 })
      const ready = await getInNetns(NETNS, 'http://127.0.0.1:7070/readyz')
      expect(ready.status).toBe(200)
      expect(JSON.parse(ready.body)).toMatchObject({ ok: true, originReachable: true })

      const fetcher = await startContainer(bundle, {
        id: `${NETNS}-fetch`,
        workDir: dir,
        netns: NETNS,
        argv: ['fetch', `${model.name}@${model.version}`, '--out', `/out/${model.name}`, '--bootstrap', info.addrs[0] as string, '--trust', key.peerId as string, '--listen', '/ip4/127.0.0.1/tcp/0', '--json'],
        mounts: [{ source: out, destination: '/out' }]
      })
      const code = await fetcher.exited
      expect(code, fetcher.text.slice(-5).join('\n')).toBe(0)
      expect(fetcher.json.find(m => m.ok === true)).toMatchObject({ name: model.name, version: model.version, bytes: model.size })
      expect(await treeDigests(join(out, model.name))).toEqual(await treeDigests(model.source))
      expect((await stat(join(out, model.name))).uid).toBe(IMAGE_UID)

      // What an operator runs with `kubectl exec`: `modelswarm` from PATH (the launcher's `env node` shebang),
      // from the bundle the image carries (a shorter start than src/: src/cli/bundle.ts).
      const preheat = await startContainer(bundle, {
        id: `${NETNS}-preheat`, workDir: dir, netns: NETNS, entrypoint: ['modelswarm'], argv: ['preheat', `${model.name}@${model.version}`, '--admin', '127.0.0.1:7070', '--json'], env: ['MODELSWARM_DEBUG_LAUNCH=1']
      })
      expect(await preheat.exited, preheat.text.join('\n')).toBe(0)
      expect(preheat.json.find(m => m.name === model!.name)).toMatchObject({ version: model.version })
      expect(preheat.text.join('\n')).toMatch(/^modelswarm launch: bundle \/app\/dist\/cli-[^/]+\/main\.js$/m)
    } finally {
      expect(await seeder.stop()).toBe(0)
    }
  })
})

/** The image config (the OCI config blob) of the layout's only manifest. */
async function readImageConfig (oci: string): Promise<Record<string, any>> {
  const blob = async (digest: string): Promise<any> => JSON.parse(await readFile(join(oci, 'blobs', ...(digest.split(':') as [string, string])), 'utf8'))
  const index = JSON.parse(await readFile(join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  expect(index.manifests.length).toBe(1)
  const manifest = await blob(index.manifests[0]!.digest)
  return (await blob(manifest.config.digest)).config as Record<string, any>
}

/** The last stage's instructions, keyed by name (the last of each), continuation lines joined. */
function finalStage (dockerfile: string): Record<string, string | undefined> {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map(l => l.trim()).filter(l => l !== '' && !l.startsWith('#'))
  const stages = lines.map((l, i) => [l, i] as const).filter(([l]) => /^FROM /i.test(l))
  const out: Record<string, string> = {}
  for (const l of lines.slice(stages.at(-1)![1])) {
    const [, name, rest] = /^(\S+)\s+(.*)$/.exec(l)!
    out[name!.toUpperCase()] = rest!
  }
  return out
}
