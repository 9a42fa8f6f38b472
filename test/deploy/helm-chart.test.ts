// The Helm chart rendered with several values sets: every object passes the Kubernetes schemas (strict,
// oldest supported and newest version), uses only flags and env vars modelswarm has, and wires trust,
// bootstrap, probes, Secrets, security and NetworkPolicy together.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAllDocuments, stringify } from 'yaml'
import { multiaddr } from '@multiformats/multiaddr'
import { cliOptions, type CliOptions } from './cli-options.ts'
import { CHART, ensureDeployTools, INSTALL_TIMEOUT_MS, runTool, type DeployTools } from './tools.ts'

const PEER = '12D3KooWFuzjb3G5476Z626JRY9eQJVweb71AjMvv6bFRbgB88xn'
const OTHER_PEER = '12D3KooWLkFbUcY3faR1dcYb46nCvgKeP4RJhwdXpafQfYEUzhHa'
const NS = 'models'
const APP_VERSION = '0.1.0'
// The image's numeric user (deploy/image/build.sh IMAGE_UID).
const IMAGE_UID = 10001
// helm built by `go install` defaults to Kubernetes 1.20; the chart needs >= 1.29 (native sidecars).
const KUBE_VERSIONS = ['1.29.0', '1.37.0']
const HDFS = { seeder: { origin: { hdfs: { namenodes: ['http://nn1:9870', 'http://nn2:9870'], user: 'modelswarm' } } } }

const VALUE_SETS: Record<string, Record<string, unknown>> = {
  'defaults (seeder only, HDFS)': HDFS,
  'everything on': {
    seeder: {
      peerId: PEER,
      identity: { existingSecret: 'modelswarm-seeder-identity' },
      origin: { hdfs: { namenodes: ['http://nn1:9870'], tokenSecret: { name: 'hdfs-token', key: 'token' } } },
      env: { MODELSWARM_LINE_RATE: '400MiB/s', MODELSWARM_KEEP_VERSIONS: '3' }
    },
    swarm: { extraTrust: [OTHER_PEER], extraBootstrap: [`/dns4/seeder.other.svc.cluster.local/tcp/4001/p2p/${OTHER_PEER}`] },
    agent: { enabled: true, models: ['qa-llm', 'embedder@2026-11-24T10-00'] },
    inference: { enabled: true },
    networkPolicy: { adminFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
    metrics: { podAnnotations: true, serviceMonitor: { enabled: true } }
  },
  'local origin, init container on the host cache, bulk on': {
    seeder: { peerId: PEER, origin: { local: { path: '/data/models', volume: { persistentVolumeClaim: { claimName: 'models' } } } } },
    agent: { enabled: true, models: ['qa-llm'], hostCache: { chown: false } },
    inference: { enabled: true, fetchMode: 'init', volume: 'hostCache' },
    networkPolicy: { enabled: false },
    image: { tag: '0.2.0-rc.1' }
  },
  'fetchers only, trusting another release, ephemeral bulk port': {
    seeder: { enabled: false },
    swarm: { extraTrust: [OTHER_PEER], extraBootstrap: [`/dns4/seeder.other.svc.cluster.local/tcp/4001/p2p/${OTHER_PEER}`], bulk: { port: null } },
    agent: { enabled: true, models: ['qa-llm'] }
  },
  'fetch -- <server> in the server container, through the host cache, members only': {
    seeder: { ...HDFS.seeder, peerId: PEER },
    swarm: { swarmKey: { existingSecret: 'modelswarm-swarm-key' } },
    agent: { enabled: true, models: ['qa-llm'] },
    inference: { enabled: true, fetchMode: 'wrap', volume: 'hostCache' }
  },
  'members only: swarm key, allow-lists, admin token': {
    seeder: { ...HDFS.seeder, peerId: PEER, adminToken: { existingSecret: 'modelswarm-admin', key: 'bearer' } },
    swarm: { swarmKey: { existingSecret: 'modelswarm-swarm-key' }, allowCidr: ['10.244.0.0/16', 'fd00::/8'], allowPeers: [PEER, OTHER_PEER] },
    agent: { enabled: true, models: ['qa-llm', 'embedder'] },
    inference: { enabled: true }
  }
}

type Obj = Record<string, any>

let tools: DeployTools
let dir: string
let seedOptions: CliOptions
let fetchOptions: CliOptions

beforeAll(async () => {
  tools = ensureDeployTools()
  dir = await mkdtemp(join(tmpdir(), 'ms-helm-'))
  seedOptions = cliOptions('seed')
  fetchOptions = cliOptions('fetch')
}, INSTALL_TIMEOUT_MS)
afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

async function render (
  values: Record<string, unknown>, kubeVersion = KUBE_VERSIONS[0]!
): Promise<{ code: number, yaml: string, stderr: string, file: string }> {
  const file = join(dir, `values-${Math.random().toString(36).slice(2)}.yaml`)
  await writeFile(file, stringify(values))
  const r = await runTool(tools.helm, ['template', 'ms', CHART, '--namespace', NS, '--kube-version', kubeVersion, '-f', file])
  return { code: r.code, yaml: r.stdout, stderr: r.stderr, file }
}

function objects (yaml: string): Obj[] {
  return parseAllDocuments(yaml).map(d => d.toJS() as Obj | null).filter((o): o is Obj => o !== null)
}

function podSpecs (objs: Obj[]): Array<{ owner: Obj, spec: Obj }> {
  return objs.filter(o => ['StatefulSet', 'DaemonSet', 'Deployment'].includes(o.kind)).map(o => ({ owner: o, spec: o.spec.template.spec }))
}

function envMap (c: Obj): Map<string, Obj> {
  return new Map((c.env ?? []).map((e: Obj) => [e.name as string, e]))
}

describe.each(Object.entries(VALUE_SETS))('chart rendered with %s', (_name, values) => {
  let objs: Obj[]
  let yamlText: string

  beforeAll(async () => {
    const r = await render(values)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    yamlText = r.yaml
    objs = objects(r.yaml)
    expect(objs.length).toBeGreaterThan(0)
  })

  it.each(KUBE_VERSIONS)('passes kubernetes-validate --strict for Kubernetes %s', async kube => {
    const r = await render(values, kube)
    const file = join(dir, `rendered-${kube}.yaml`)
    await writeFile(file, r.yaml)
    const v = await runTool(tools.kubernetesValidate, ['--strict', '-k', kube, file])
    expect(v.stdout + v.stderr).not.toMatch(/^(ERROR|WARN) .*(?<!ServiceMonitor with api version monitoring\.coreos\.com\/v1 for kubernetes version [\d.]+)$/m)
    expect(v.code).toBe(0)
    const passed = (v.stdout + v.stderr).match(/passed for resource/g) ?? []
    expect(passed.length).toBe(objs.filter(o => o.kind !== 'ServiceMonitor').length)
  })

  it('passes helm lint', async () => {
    const r = await render(values)
    const lint = await runTool(tools.helm, ['lint', CHART, '--namespace', NS, '--kube-version', KUBE_VERSIONS[0]!, '-f', r.file])
    expect(lint.stdout).toContain('0 chart(s) failed')
    expect(lint.code).toBe(0)
  })

  it('pins the image and runs every modelswarm container non-root, read-only, without capabilities', () => {
    for (const { owner, spec } of podSpecs(objs)) {
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: IMAGE_UID, runAsGroup: IMAGE_UID, fsGroup: IMAGE_UID, seccompProfile: { type: 'RuntimeDefault' } })
      expect(spec.automountServiceAccountToken).toBe(false)
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        if (!(c.image as string).includes('/modelswarm:')) continue
        expect(c.image, `${owner.kind} ${c.name}`).toMatch(new RegExp(`:(${APP_VERSION}|0\\.2\\.0-rc\\.1)$`))
        expect(c.securityContext.readOnlyRootFilesystem).toBe(true)
        expect(c.securityContext.allowPrivilegeEscalation).toBe(false)
        expect(c.securityContext.capabilities.drop).toEqual(['ALL'])
        expect(c.resources.requests.memory).toBeDefined()
        expect(c.resources.limits.memory).toBeDefined()
        if (c.name === 'chown-host-cache') {
          // The one root container: chown of the hostPath, nothing else.
          expect(c.securityContext.capabilities.add).toEqual(['CHOWN'])
          expect(c.command[0]).toBe('chown')
          continue
        }
        expect(c.securityContext.runAsUser ?? spec.securityContext.runAsUser).toBe(IMAGE_UID)
      }
    }
  })

  it('uses only flags and env vars that `modelswarm seed` / `fetch` have', () => {
    const used: string[] = []
    for (const { spec } of podSpecs(objs)) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        if (!(c.image as string).includes('/modelswarm:') || c.command !== undefined) continue
        const [sub, ...args] = c.args as string[]
        expect(['seed', 'fetch']).toContain(sub)
        const known = sub === 'seed' ? seedOptions : fetchOptions
        for (const a of args.filter(a => a.startsWith('--'))) { used.push(a); expect(known.flags, `${c.name}: ${a}`).toContain(a) }
        for (const name of envMap(c).keys()) { used.push(name); expect(known.env, `${c.name}: ${name}`).toContain(name) }
        for (const ref of c.envFrom ?? []) {
          const cm = objs.find(o => o.kind === 'ConfigMap' && o.metadata.name === ref.configMapRef.name)
          expect(cm, `ConfigMap ${ref.configMapRef.name}`).toBeDefined()
          for (const name of Object.keys(cm!.data)) expect(known.env, `${c.name}: ${name} from ${cm!.metadata.name}`).toContain(name)
        }
      }
    }
    expect(used.length).toBeGreaterThan(0)
    // Boolean options act on the variable's presence: a "false" would switch them on.
    expect(yamlText).not.toMatch(/MODELSWARM_(NO_BULK|JSON)\s*\n\s*value: "?(false|0)"?/)
  })

  it('wires the seeder: probes on its admin port, cache PVC, identity Secret, HDFS token Secret, headless Service', () => {
    const sts = objs.find(o => o.kind === 'StatefulSet')
    const seederOn = (values.seeder as Obj | undefined)?.enabled !== false
    expect(sts !== undefined).toBe(seederOn)
    if (sts === undefined) return
    const c = sts.spec.template.spec.containers[0]
    const env = envMap(c)
    const adminPort = Number(env.get('MODELSWARM_ADMIN')!.value.split(':').pop())
    expect(env.get('MODELSWARM_ADMIN')!.value).toMatch(/^0\.0\.0\.0:/) // kubelet probes come from outside the pod
    const named = (name: string): number => c.ports.find((p: Obj) => p.name === name).containerPort
    expect(named('admin')).toBe(adminPort)
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' })
    expect(c.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' })
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' })
    expect(env.get('MODELSWARM_LISTEN')!.value).toBe(`/ip4/0.0.0.0/tcp/${named('libp2p')}`)
    const cacheDir = env.get('MODELSWARM_CACHE_DIR')!.value
    expect(c.volumeMounts.find((m: Obj) => m.name === 'cache').mountPath).toBe(cacheDir)
    expect(sts.spec.volumeClaimTemplates[0].metadata.name).toBe('cache')
    const identity = c.volumeMounts.find((m: Obj) => m.name === 'identity')
    const secretName = (values.seeder as Obj).identity?.existingSecret
    if (secretName === undefined) expect(identity).toBeUndefined()
    else {
      expect(identity).toMatchObject({ mountPath: `${cacheDir}/identity.key`, subPath: 'identity.key', readOnly: true })
      expect(sts.spec.template.spec.volumes.find((v: Obj) => v.name === 'identity').secret.secretName).toBe(secretName)
    }
    const token = (values.seeder as Obj).origin?.hdfs?.tokenSecret
    if (token !== undefined) expect(env.get('MODELSWARM_HDFS_TOKEN')!.valueFrom.secretKeyRef).toEqual(token)
    else expect(env.has('MODELSWARM_HDFS_TOKEN')).toBe(false)
    for (const [name, value] of Object.entries((values.seeder as Obj).env ?? {})) expect(env.get(name)!.value).toBe(value)
    const svc = objs.find(o => o.kind === 'Service')!
    expect(svc.spec.clusterIP).toBe('None')
    expect(sts.spec.serviceName).toBe(svc.metadata.name)
    expect(svc.spec.selector).toEqual(sts.spec.selector.matchLabels)
    expect(svc.spec.ports.map((p: Obj) => [p.name, p.port])).toEqual([['libp2p', named('libp2p')], ['admin', adminPort]])
    const annotations = sts.spec.template.metadata.annotations ?? {}
    if ((values.metrics as Obj | undefined)?.podAnnotations === true) expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(adminPort), 'prometheus.io/path': '/metrics' })
    else expect(annotations['prometheus.io/scrape']).toBeUndefined()
    const sm = objs.find(o => o.kind === 'ServiceMonitor')
    if (sm !== undefined) {
      expect(svc.metadata.labels).toMatchObject(sm.spec.selector.matchLabels)
      expect(svc.spec.ports.map((p: Obj) => p.name)).toContain(sm.spec.endpoints[0].port)
    }
  })

  it('publishes trust and bootstrap once, by Service DNS name, and every fetcher reads them from there', () => {
    const cm = objs.find(o => o.kind === 'ConfigMap')
    const fetchers = podSpecs(objs).flatMap(({ spec }) => [...(spec.initContainers ?? []), ...spec.containers]).filter(c => c.args?.[0] === 'fetch')
    if (fetchers.length === 0) return
    expect(cm).toBeDefined()
    const trust = (cm!.data.MODELSWARM_TRUST as string).split(',')
    const bootstrap = (cm!.data.MODELSWARM_BOOTSTRAP as string).split(',')
    const own = (values.seeder as Obj).peerId as string | undefined
    const svc = objs.find(o => o.kind === 'Service')
    if (own !== undefined) {
      expect(trust[0]).toBe(own)
      expect(bootstrap[0]).toBe(`/dns4/${svc!.metadata.name}.${NS}.svc.cluster.local/tcp/4001/p2p/${own}`)
    }
    expect(trust).toEqual([own, ...((values.swarm as Obj | undefined)?.extraTrust ?? [])].filter(Boolean))
    expect(bootstrap.length).toBe(trust.length)
    for (const [i, addr] of bootstrap.entries()) {
      const ma = multiaddr(addr)
      expect(ma.toString()).toBe(addr)
      expect(addr.endsWith(`/p2p/${trust[i]}`)).toBe(true)
    }
    for (const c of fetchers) {
      expect(c.envFrom).toEqual([{ configMapRef: { name: cm!.metadata.name } }])
      expect(JSON.stringify(c)).not.toContain('12D3KooW') // no peer id pasted into a pod spec
      const out = c.args[c.args.indexOf('--out') + 1] as string
      expect(c.volumeMounts.some((m: Obj) => out.startsWith(`${m.mountPath as string}/`))).toBe(true)
    }
  })

  it('keeps agents and inference fetchers seeding after their download', () => {
    const ds = objs.find(o => o.kind === 'DaemonSet')
    if (ds !== undefined) {
      const models = (values.agent as Obj).models as string[]
      expect(ds.spec.template.spec.containers.map((c: Obj) => c.args[1])).toEqual(models)
      const ports = ds.spec.template.spec.containers.map((c: Obj) => c.ports[0].containerPort)
      expect(new Set(ports).size).toBe(models.length) // one pod network: one libp2p port per container
      for (const c of ds.spec.template.spec.containers) {
        expect(c.args).toContain('--linger')
        expect(envMap(c).get('MODELSWARM_LISTEN')!.value).toBe(`/ip4/0.0.0.0/tcp/${c.ports[0].containerPort as number}`)
      }
      expect(ds.spec.template.spec.volumes.find((v: Obj) => v.name === 'host-cache').hostPath.path).toBe('/var/lib/modelswarm-host')
    }
    const dep = objs.find(o => o.kind === 'Deployment')
    const inference = values.inference as Obj | undefined
    if (dep !== undefined && inference?.fetchMode === 'wrap') {
      // One container: fetch, then the server's own arguments after `--`.
      const [server] = dep.spec.template.spec.containers
      expect(dep.spec.template.spec.initContainers).toBeUndefined()
      expect(server.command).toEqual(['modelswarm'])
      expect(server.args.slice(0, 2)).toEqual(['fetch', inference.model ?? 'qa-llm'])
      const out = server.args[server.args.indexOf('--out') + 1]
      expect(server.args.slice(server.args.indexOf('--') + 1)).toEqual(['--model', out])
      expect(server.args).toContain('--upload-rate')
    } else if (dep !== undefined) {
      const fetch = dep.spec.template.spec.initContainers.find((c: Obj) => c.name === 'fetch-model')
      const out = fetch.args[fetch.args.indexOf('--out') + 1]
      expect(dep.spec.template.spec.containers[0].args).toContain(out)
      if (inference?.fetchMode === 'init') {
        expect(fetch.restartPolicy).toBeUndefined()
        expect(fetch.args).not.toContain('--linger')
      } else {
        expect(fetch.restartPolicy).toBe('Always')
        expect(fetch.args).toContain('--linger')
        expect(fetch.startupProbe.exec.command).toEqual(['test', '-d', out])
      }
    }
    // With the host cache, every fetcher on a node shares it: the version crosses the network once per node.
    const fetcher = [...(dep?.spec.template.spec.initContainers ?? []), ...(dep?.spec.template.spec.containers ?? [])].find((c: Obj) => c.args?.[0] === 'fetch')
    if (fetcher !== undefined && (values.inference as Obj).volume === 'hostCache') {
      expect(fetcher.args[fetcher.args.indexOf('--cache-dir') + 1]).toBe('/var/lib/modelswarm-host')
      expect(fetcher.volumeMounts.find((m: Obj) => m.name === 'host-cache').mountPath).toBe('/var/lib/modelswarm-host')
      expect(dep!.spec.template.spec.volumes.find((v: Obj) => v.name === 'host-cache').hostPath.path).toBe('/var/lib/modelswarm-host')
    }
  })

  it('gives every member the swarm key Secret and the allow-lists, and the seeder its admin token Secret', () => {
    const swarm = (values.swarm as Obj | undefined) ?? {}
    for (const { owner, spec } of podSpecs(objs)) {
      for (const c of [...(spec.initContainers ?? []), ...spec.containers].filter(c => ['seed', 'fetch'].includes(c.args?.[0]))) {
        const env = envMap(c)
        const where = `${owner.kind} ${c.name as string}`
        if (swarm.swarmKey?.existingSecret === undefined) {
          expect(env.has('MODELSWARM_SWARM_KEY_FILE'), where).toBe(false)
        } else {
          const file = env.get('MODELSWARM_SWARM_KEY_FILE')!.value as string
          const mount = c.volumeMounts.find((m: Obj) => file.startsWith(`${m.mountPath as string}/`))
          expect(mount, where).toMatchObject({ name: 'swarm-key', readOnly: true })
          const volume = spec.volumes.find((v: Obj) => v.name === mount.name)
          expect(volume.secret.secretName).toBe(swarm.swarmKey.existingSecret)
          expect(volume.secret.items).toEqual([{ key: 'swarm.key', path: file.split('/').pop() }])
        }
        expect(env.get('MODELSWARM_ALLOW_CIDR')?.value, where).toBe(swarm.allowCidr?.join(','))
        // Peer ids are published once, in the swarm ConfigMap fetchers read; the seeder has them as env.
        const cm = objs.find(o => o.kind === 'ConfigMap')
        const allowPeers = c.args[0] === 'seed' ? env.get('MODELSWARM_ALLOW_PEERS')?.value : cm?.data.MODELSWARM_ALLOW_PEERS
        expect(allowPeers, where).toBe(swarm.allowPeers?.join(','))
      }
    }
    const sts = objs.find(o => o.kind === 'StatefulSet')
    if (sts === undefined) return
    const c = sts.spec.template.spec.containers[0]
    const token = (values.seeder as Obj).adminToken
    const file = envMap(c).get('MODELSWARM_ADMIN_TOKEN_FILE')?.value as string | undefined
    if (token === undefined) { expect(file).toBeUndefined(); return }
    const mount = c.volumeMounts.find((m: Obj) => file!.startsWith(`${m.mountPath as string}/`))
    const volume = sts.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name)
    expect(volume.secret).toMatchObject({ secretName: token.existingSecret, items: [{ key: token.key, path: file!.split('/').pop() }] })
  })

  it('opens exactly the libp2p, bulk and admin ports in its NetworkPolicies; a bulk port it cannot open turns the bulk path off', () => {
    const policies = objs.filter(o => o.kind === 'NetworkPolicy')
    const npOn = (values.networkPolicy as Obj | undefined)?.enabled !== false
    const fixedBulk = (values.swarm as Obj | undefined)?.bulk?.port !== null
    const members = podSpecs(objs).flatMap(({ spec }) => [...(spec.initContainers ?? []), ...spec.containers]).filter(c => ['seed', 'fetch'].includes(c.args?.[0]))
    for (const c of members) {
      const env = envMap(c)
      expect(env.get('MODELSWARM_NO_BULK')?.value, c.name).toBe(npOn && !fixedBulk ? 'true' : undefined)
      const bulk = c.ports.find((p: Obj) => (p.name as string).startsWith('bulk'))
      if (fixedBulk) {
        // The port the process listens on is the one declared (and so opened) for this container.
        expect(env.get('MODELSWARM_BULK_PORT')!.value, c.name).toBe(String(bulk.containerPort))
        const libp2p = c.ports.find((p: Obj) => (p.name as string).startsWith('libp2p'))
        expect(bulk.containerPort - 4101).toBe(libp2p.containerPort - 4001)
      } else {
        expect(bulk).toBeUndefined()
        expect(env.has('MODELSWARM_BULK_PORT')).toBe(false)
      }
    }
    if (!npOn) { expect(policies).toEqual([]); return }
    for (const np of policies) {
      const selects = (owner: any): boolean => Object.entries(np.spec.podSelector.matchLabels).every(([k, v]) => owner.spec.selector.matchLabels[k] === v)
      const target = podSpecs(objs).find(({ owner }) => selects(owner))
      expect(target, np.metadata.name).toBeDefined()
      const open = np.spec.ingress.flatMap((r: Obj) => r.ports.map((p: Obj) => [p.port, p.endPort ?? p.port]))
      const declared = target!.spec.containers.flatMap((c: Obj) => c.ports.map((p: Obj) => p.containerPort as number)).sort((a: number, b: number) => a - b)
      const covered = declared.filter((p: number) => open.some(([lo, hi]: number[]) => p >= lo! && p <= hi!))
      expect(covered).toEqual(declared)
      const width = open.reduce((n: number, [lo, hi]: number[]) => n + hi! - lo! + 1, 0)
      expect(width).toBe(declared.length)
    }
  })
})

describe('chart refuses what cannot work', () => {
  beforeAll(async () => {
    tools = ensureDeployTools()
    dir ??= await mkdtemp(join(tmpdir(), 'ms-helm-'))
  }, INSTALL_TIMEOUT_MS)

  it.each([
    ['image tag latest', { ...HDFS, image: { tag: 'latest' } }, /not "latest"/],
    ['bulk ports overlapping the agents\' libp2p ports', { seeder: { ...HDFS.seeder, peerId: PEER }, swarm: { bulk: { port: 4002 } }, agent: { enabled: true, models: ['a', 'b'] } }, /swarm\.bulk\.port 4002\.\.4003 overlaps the libp2p ports 4001\.\.4002/],
    ['a range that is not one', { ...HDFS, swarm: { allowCidr: ['pods'] } }, /does not match pattern/],
    ['an inference volume that is neither', { seeder: { ...HDFS.seeder, peerId: PEER }, inference: { enabled: true, volume: 'nfs' } }, /'\/inference\/volume': value must be one of 'emptyDir', 'hostCache'/],
    ['fetchers with no trusted seeder', { ...HDFS, agent: { enabled: true, models: ['qa-llm'] } }, /seeder\.peerId/],
    ['no origin', {}, /exactly one of/],
    ['two origins', { seeder: { origin: { hdfs: { namenodes: ['http://nn:9870'] }, local: { path: '/data', volume: { emptyDir: {} } } } } }, /exactly one of/],
    ['an agent with no models', { seeder: { ...HDFS.seeder, peerId: PEER }, agent: { enabled: true } }, /agent\.models/],
    ['a misspelled key (values.schema.json)', { seeder: { ...HDFS.seeder, peerID: PEER } }, /additional properties 'peerID' not allowed/],
    ['a peer id that is not one', { seeder: { ...HDFS.seeder, peerId: 'REPLACE_WITH_SEEDER_PEER_ID' } }, /does not match pattern/],
    ['an env var that is not MODELSWARM_*', { seeder: { ...HDFS.seeder, env: { LINE_RATE: '1GiB/s' } } }, /LINE_RATE/]
  ])('%s', async (_name, values, message) => {
    const r = await render(values)
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(message)
  })
})
