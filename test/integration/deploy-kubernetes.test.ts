/**
 * deploy/kubernetes against the real kube-apiserver of the test run: the kustomization is rendered (the part of
 * kustomize it uses: `resources`), every object is accepted by a server-side dry run with nothing of it dropped,
 * each pod template meets the "restricted" Pod Security Standard its namespace enforces, the receiver's own
 * ServiceAccount can make the one read the receiver makes and nothing more, and the pieces wire together: the
 * ConfigMap and each container's environment are configuration the processes accept, every file a variable names
 * is a key of a mounted Secret, Services find their pods' ports, the probes ask the ports the processes listen on.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
  type V1Container,
  type V1Deployment,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { CONFIG_VARIABLES, loadConfig, type Config } from '../../src/config';
import { NODEGROUP_LABEL } from '../../src/runbook/evidence';
import { controlPlaneFromEnv, kubeconfigYaml, RBAC_FILES } from '../support/control-plane';
import { createTestNamespace, kubeConfigFor, VPSieNodeFixtures } from '../support/kube';
import { registerSecret } from '../support/secrets';

const DIR = join(__dirname, '..', '..', 'deploy', 'kubernetes');
type Obj = KubernetesObject & { [k: string]: unknown };

/** Every document of a manifest file, checked to read the same to YAML 1.1 parsers (kubectl's) and 1.2. */
function loadFile(file: string): Obj[] {
  const text = readFileSync(join(DIR, file), 'utf8');
  const docs = parseAllDocuments(text);
  const old = parseAllDocuments(text, { version: '1.1' });
  return docs.flatMap((doc, i) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const obj = doc.toJS() as Obj | null;
    expect([file, i, (old as typeof docs)[i].toJS()]).toEqual([file, i, obj]);
    return obj ? [obj] : [];
  });
}

/** kustomize's `resources` (files only): the one feature kustomization.yaml uses, which this test holds it to. */
function render(): Obj[] {
  const k = loadFile('kustomization.yaml')[0] as unknown as Record<string, unknown>;
  expect(Object.keys(k).sort()).toEqual(['apiVersion', 'kind', 'resources']);
  expect([k.apiVersion, k.kind]).toEqual(['kustomize.config.k8s.io/v1beta1', 'Kustomization']);
  return (k.resources as string[]).flatMap(loadFile);
}

const objects = render();
const examples = loadFile('secret.example.yaml');
const find = <T = Obj>(kind: string, name: string): T => {
  const o = objects.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in deploy/kubernetes`);
  return o as T;
};
const deployments = objects.filter((o) => o.kind === 'Deployment') as unknown as V1Deployment[];
const podSpec = (name: string) => find<V1Deployment>('Deployment', name).spec!.template.spec!;
const configMap = find<{ data: Record<string, string> }>('ConfigMap', 'vpsie-runbook');
/** The ConfigMap's commented options (`# NAME: 'value'`), as if someone uncommented every one. */
const options = Object.fromEntries(
  [
    ...readFileSync(join(DIR, 'configmap.yaml'), 'utf8').matchAll(/^ {2}# ([A-Z][A-Z0-9_]+): '([^']*)'$/gm),
  ].map(([, name, value]) => [name, value]),
);

/** A container's environment as the process sees it: the ConfigMaps of envFrom, then env (which wins). */
function environment(spec: V1PodSpec, container: V1Container, extra: Record<string, string> = {}) {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const name = from.configMapRef!.name!;
    Object.assign(env, find<{ data: Record<string, string> }>('ConfigMap', name).data, extra);
  }
  for (const e of container.env ?? []) env[e.name] = e.value!;
  expect(spec.enableServiceLinks).toBe(false); // nothing else lands in it
  return env;
}

/** The Secret key a file path is, through the container's mounts; throws naming what does not resolve. */
function secretKeyOf(spec: V1PodSpec, container: V1Container, file: string): { secret: string; key: string } {
  const mount = container.volumeMounts?.find((m) => file.startsWith(`${m.mountPath}/`));
  if (!mount) throw new Error(`${container.name}: ${file} is in no mounted volume`);
  const volume = spec.volumes!.find((v) => v.name === mount.name)!;
  if (!volume.secret) throw new Error(`${container.name}: ${file} is not in a Secret volume`);
  return { secret: volume.secret.secretName!, key: file.slice(mount.mountPath.length + 1) };
}
const exampleKeys = (secret: string) => {
  const s = examples.find((e) => e.metadata?.name === secret) as
    { stringData?: Record<string, string> } | undefined;
  if (!s) throw new Error(`Secret ${secret} is not in secret.example.yaml`);
  return Object.keys(s.stringData ?? {});
};

/** The files a process reads, by what its configuration says. */
function filesRead(c: Config, process: 'worker' | 'receiver'): string[] {
  const s = c.temporalSecurity;
  const temporal = [
    s.tls?.serverCaCertFile,
    s.tls?.clientCertFile,
    s.tls?.clientKeyFile,
    s.apiKey?.variable === 'TEMPORAL_API_KEY_FILE' ? s.apiKey.file : undefined,
  ];
  const own =
    process === 'receiver'
      ? [c.receiver?.token?.file]
      : [
          c.vpsie.tokenFile,
          c.channels.slack?.file,
          c.channels.webhook?.file,
          c.channels.pagerduty?.routingKey.file,
        ];
  return [...temporal, ...own].filter((f): f is string => !!f);
}

describe('deploy/kubernetes, as rendered', () => {
  it('holds the worker and the receiver with their identities, configuration and Services, and no Secret', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata?.name}`).sort()).toEqual(
      [
        'ClusterRole/vpsie-runbook',
        'ClusterRole/vpsie-runbook-receiver',
        'ClusterRoleBinding/vpsie-runbook',
        'ClusterRoleBinding/vpsie-runbook-receiver',
        'ConfigMap/vpsie-runbook',
        'Deployment/vpsie-runbook-receiver',
        'Deployment/vpsie-runbook-worker',
        'Namespace/vpsie-runbook',
        'Role/vpsie-runbook',
        'RoleBinding/vpsie-runbook',
        'Service/vpsie-runbook-metrics',
        'Service/vpsie-runbook-receiver',
        'ServiceAccount/vpsie-runbook',
        'ServiceAccount/vpsie-runbook-receiver',
      ].sort(),
    );
    // every namespaced object names its namespace (there is no `namespace:` in the kustomization)
    for (const o of objects)
      if (!['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind!))
        expect([o.kind, o.metadata?.name, !!o.metadata?.namespace]).toEqual([o.kind, o.metadata?.name, true]);
    // the worker's RBAC is the one the test harness applies and every restricted-identity test runs under
    const harness = RBAC_FILES.map((f) => f.slice(DIR.length + 1));
    const resources = (loadFile('kustomization.yaml')[0] as unknown as { resources: string[] }).resources;
    for (const f of harness) expect(resources).toContain(f);
  });

  it('gives each process a configuration it accepts, only variables it knows, and every option documented in the ConfigMap works', () => {
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    expect(Object.keys(options).length).toBeGreaterThan(5);
    for (const [name, process] of [
      ['vpsie-runbook-worker', 'worker'],
      ['vpsie-runbook-receiver', 'receiver'],
    ] as const) {
      const spec = podSpec(name);
      expect(spec.containers).toHaveLength(1);
      const container = spec.containers[0];
      for (const extra of [{}, options]) {
        const env = environment(spec, container, extra);
        expect([name, Object.keys(env).filter((k) => !known.has(k))]).toEqual([name, []]);
        const config = loadConfig(env);
        expect(config.temporal.address).toBe(configMap.data.TEMPORAL_ADDRESS);
        // every file it reads is a key of a Secret mounted there, as secret.example.yaml has them
        for (const file of filesRead(config, process)) {
          const { secret, key } = secretKeyOf(spec, container, file);
          expect([name, file, exampleKeys(secret)]).toEqual([name, file, expect.arrayContaining([key])]);
        }
      }
      const withOptions = loadConfig(environment(spec, container, options));
      expect(withOptions.temporalSecurity.tls).not.toBeNull();
      expect(withOptions.temporalSecurity.apiKey).not.toBeNull();
    }
    const worker = loadConfig(
      environment(podSpec('vpsie-runbook-worker'), podSpec('vpsie-runbook-worker').containers[0], options),
    );
    expect(worker.receiver).toBeNull();
    expect(worker.vpsie.tokenFile).toBeDefined();
    expect(
      Object.keys(worker.channels)
        .filter((k) => ['slack', 'pagerduty', 'webhook'].includes(k))
        .sort(),
    ).toEqual(['pagerduty', 'slack', 'webhook']);
    const receiver = loadConfig(
      environment(podSpec('vpsie-runbook-receiver'), podSpec('vpsie-runbook-receiver').containers[0]),
    );
    expect(receiver.receiver?.token?.variable).toBe('RECEIVER_TOKEN_FILE');
  });

  it('keeps the VPSie token and the channels from the receiver, and the receiver token from the worker', () => {
    const secrets = (name: string) =>
      podSpec(name).volumes!.flatMap((v) => (v.secret ? [v.secret.secretName] : []));
    expect(secrets('vpsie-runbook-worker').sort()).toEqual(['vpsie-runbook', 'vpsie-runbook-temporal']);
    expect(secrets('vpsie-runbook-receiver').sort()).toEqual([
      'vpsie-runbook-receiver',
      'vpsie-runbook-temporal',
    ]);
    expect(exampleKeys('vpsie-runbook-receiver')).toEqual(['receiver-token']);
    expect(exampleKeys('vpsie-runbook')).not.toContain('receiver-token');
    // the Temporal credentials are optional (a server that asks for none), the others are not
    for (const d of deployments)
      for (const v of d.spec!.template.spec!.volumes!)
        if (v.secret)
          expect([v.secret.secretName, !!v.secret.optional]).toEqual([
            v.secret.secretName,
            v.secret.secretName === 'vpsie-runbook-temporal',
          ]);
  });

  it('runs the image as `npm start` and `npm run receiver` run once built, non-root on a read-only root filesystem', () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    const worker = podSpec('vpsie-runbook-worker').containers[0];
    const receiver = podSpec('vpsie-runbook-receiver').containers[0];
    expect(worker.image).toBe(receiver.image);
    expect(worker.command).toBeUndefined(); // the Dockerfile's CMD: node dist/main.js
    expect(pkg.scripts.receiver).toBe(`npm run build --silent && ${receiver.command!.join(' ')}`);
    for (const d of deployments) {
      const spec = d.spec!.template.spec!;
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      for (const c of spec.containers) {
        expect(c.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        });
        expect(c.resources?.requests).toBeDefined();
        expect(c.resources?.limits?.memory).toBeDefined();
        const tmp = c.volumeMounts!.find((m) => m.mountPath === '/tmp')!;
        expect(spec.volumes!.find((v) => v.name === tmp.name)?.emptyDir).toBeDefined();
      }
    }
  });

  it('probes and exposes the ports the processes listen on, and the Services find them', () => {
    const receiverSpec = podSpec('vpsie-runbook-receiver');
    const receiver = receiverSpec.containers[0];
    const rc = loadConfig(environment(receiverSpec, receiver));
    const port = (c: V1Container, name: string) => c.ports!.find((p) => p.name === name)!.containerPort;
    expect(port(receiver, 'http')).toBe(rc.receiver!.port);
    expect(port(receiver, 'metrics')).toBe(rc.metrics!.port);
    expect(receiver.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http' });
    expect(receiver.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http' });
    const workerSpec = podSpec('vpsie-runbook-worker');
    const worker = workerSpec.containers[0];
    const wc = loadConfig(environment(workerSpec, worker));
    expect(port(worker, 'metrics')).toBe(wc.metrics!.port);
    expect(worker.livenessProbe?.tcpSocket?.port).toBe('metrics');

    const services = objects.filter((o) => o.kind === 'Service') as unknown as {
      metadata: { name: string; annotations?: Record<string, string> };
      spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
    }[];
    for (const svc of services) {
      const selected = deployments.filter((d) =>
        Object.entries(svc.spec.selector).every(([k, v]) => d.spec!.template.metadata!.labels![k] === v),
      );
      expect([svc.metadata.name, selected.length > 0]).toEqual([svc.metadata.name, true]);
      for (const d of selected)
        for (const p of svc.spec.ports)
          expect([
            svc.metadata.name,
            d.metadata!.name,
            d.spec!.template.spec!.containers[0].ports!.map((x) => x.name),
          ]).toEqual([svc.metadata.name, d.metadata!.name, expect.arrayContaining([p.targetPort])]);
    }
    const receiverSvc = services.find((s) => s.metadata.name === 'vpsie-runbook-receiver')!;
    expect(receiverSvc.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 'http' }]);
    const metrics = services.find((s) => s.metadata.name === 'vpsie-runbook-metrics')!;
    expect(metrics.metadata.annotations).toEqual({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(wc.metrics!.port),
      'prometheus.io/path': '/metrics',
    });
    // both the worker's and the receiver's pages are scraped
    expect(
      deployments.filter((d) =>
        Object.entries(metrics.spec.selector).every(([k, v]) => d.spec!.template.metadata!.labels![k] === v),
      ),
    ).toHaveLength(2);
    for (const d of deployments)
      expect(d.spec!.selector.matchLabels).toEqual(d.spec!.template.metadata!.labels);
  });

  it("binds each Deployment's ServiceAccount, and binds nothing else", () => {
    const subjects = objects
      .filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')
      .flatMap(
        (b) => (b as unknown as { subjects: { kind: string; name: string; namespace: string }[] }).subjects,
      );
    const accounts = objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata!.name);
    for (const s of subjects)
      expect([s.kind, accounts.includes(s.name), s.namespace]).toEqual([
        'ServiceAccount',
        true,
        'vpsie-runbook',
      ]);
    for (const d of deployments) expect(accounts).toContain(d.spec!.template.spec!.serviceAccountName);
  });
});

/** Each leaf the manifest sets is in what the apiserver would store (nothing unknown, misspelt or pruned). */
function missing(mine: unknown, theirs: unknown, path = ''): string[] {
  if (mine !== null && typeof mine === 'object') {
    if (theirs === null || typeof theirs !== 'object') return [`${path}: not kept`];
    return Object.entries(mine as Record<string, unknown>).flatMap(([k, v]) =>
      missing(
        v,
        (theirs as Record<string, unknown>)[k],
        Array.isArray(mine) ? `${path}[${k}]` : `${path}.${k}`,
      ),
    );
  }
  return mine === theirs ? [] : [`${path}: ${JSON.stringify(mine)} became ${JSON.stringify(theirs)}`];
}

describe('deploy/kubernetes on the real kube-apiserver', () => {
  const admin = kubeConfigFor('admin');
  const api = KubernetesObjectApi.makeApiClient(admin);
  const dryRunApply = (o: Obj) =>
    api.patch(
      o,
      undefined,
      'All',
      'vpsie-runbook-deploy-test',
      true,
      PatchStrategy.ServerSideApply,
    ) as Promise<Obj>;

  it('accepts every object in a server-side dry run, and keeps every field of each', async () => {
    for (const o of objects) {
      const stored = await dryRunApply(structuredClone(o)).catch((err: unknown) => {
        throw new Error(`${o.kind} ${o.metadata?.name}: ${(err as Error).message}`);
      });
      expect([o.kind, o.metadata?.name, missing(o, stored)]).toEqual([o.kind, o.metadata?.name, []]);
    }
  });

  it('accepts the example Secrets, each key as the Deployments read it', async () => {
    expect(examples.map((e) => e.metadata?.name).sort()).toEqual([
      'vpsie-runbook',
      'vpsie-runbook-receiver',
      'vpsie-runbook-temporal',
    ]);
    for (const e of examples) {
      const stored = await dryRunApply(structuredClone(e));
      const { stringData } = e as unknown as { stringData: Record<string, string> };
      const data = (stored as unknown as { data: Record<string, string> }).data;
      expect(
        Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()])),
      ).toEqual(stringData);
    }
  });

  it('runs each pod template under the "restricted" Pod Security Standard the namespace enforces', async () => {
    const ns = find<{ metadata: { labels: Record<string, string> } }>('Namespace', 'vpsie-runbook');
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    // a namespace of this test's own with the same labels, so the pods' admission is checked as it would be there
    const namespace = `deploy-psa-${randomUUID().slice(0, 6)}`;
    const core = admin.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: namespace, labels: ns.metadata.labels } } });
    const pod = (d: V1Deployment, spec: V1PodSpec) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: d.metadata!.name!, namespace, labels: d.spec!.template.metadata!.labels },
      spec,
    });
    for (const d of deployments) {
      const created = await core.createNamespacedPod({
        namespace,
        body: pod(d, d.spec!.template.spec!),
        dryRun: 'All',
      });
      expect(created.metadata?.name).toBe(d.metadata!.name);
    }
    // the check can fail: the same pod without its securityContext is refused
    const d = deployments[0];
    const loose = structuredClone(d.spec!.template.spec!);
    delete loose.securityContext;
    for (const c of loose.containers) delete c.securityContext;
    await expect(
      core.createNamespacedPod({ namespace, body: pod(d, loose), dryRun: 'All' }),
    ).rejects.toMatchObject({
      code: 403,
      body: expect.stringMatching(/violates PodSecurity .*restricted:latest/),
    });
  });

  describe("the receiver's ServiceAccount, for real", () => {
    const receiverRbac = loadFile('receiver-rbac.yaml');
    const apply = (o: Obj) =>
      api.patch(
        structuredClone(o),
        undefined,
        undefined,
        'vpsie-runbook-deploy-test',
        true,
        PatchStrategy.ServerSideApply,
      );
    beforeAll(async () => {
      for (const o of receiverRbac) await apply(o);
    });
    afterAll(async () => {
      for (const o of [...receiverRbac].reverse()) await api.delete(o).catch(() => undefined);
    });

    /** A kubeconfig with a token of the ServiceAccount, as its pod would hold one. */
    async function asReceiver(): Promise<KubeConfig> {
      const core = admin.makeApiClient(CoreV1Api);
      const token = await core.createNamespacedServiceAccountToken({
        name: 'vpsie-runbook-receiver',
        namespace: 'vpsie-runbook',
        body: { spec: { audiences: [], expirationSeconds: 600 } },
      });
      const kc = new KubeConfig();
      // registered: the suite's scans look for it in every history
      registerSecret('kubernetes-token', token.status!.token);
      kc.loadFromString(kubeconfigYaml(controlPlaneFromEnv()!, token.status!.token, { user: 'receiver' }));
      return kc;
    }

    it("lists a NodeGroup's VPSieNodes as the receiver does, and may do nothing else", async () => {
      const namespace = await createTestNamespace('deploy-receiver');
      const fixtures = new VPSieNodeFixtures();
      await fixtures.vpsieNode(namespace, 'ng-a-0000aaaa', {
        metadata: { labels: { [NODEGROUP_LABEL]: 'ng-a' } },
      });
      await fixtures.vpsieNode(namespace, 'ng-b-0000bbbb', {
        metadata: { labels: { [NODEGROUP_LABEL]: 'ng-b' } },
      });
      const kc = await asReceiver();
      // RBAC is served from an informer cache: the new binding counts once the list is allowed
      const client = new KubernetesClient(kc);
      const listAs = async (): Promise<unknown[] | null> => {
        try {
          return await client.listVPSieNodes(namespace, `${NODEGROUP_LABEL}=ng-a`);
        } catch (err) {
          if ((err as { status?: number }).status === 403) return null;
          throw err;
        }
      };
      let listed = await listAs();
      for (let i = 0; listed === null && i < 300; i++) {
        await new Promise((r) => setTimeout(r, 100));
        listed = await listAs();
      }
      expect(listed?.map((v) => (v as { metadata: { name: string } }).metadata.name)).toEqual([
        'ng-a-0000aaaa',
      ]);

      const custom = kc.makeApiClient(CustomObjectsApi);
      const vn = { group: 'autoscaler.vpsie.com', version: 'v1alpha1', namespace, plural: 'vpsienodes' };
      await expect(custom.getNamespacedCustomObject({ ...vn, name: 'ng-a-0000aaaa' })).rejects.toMatchObject({
        code: 403,
      });
      await expect(
        custom.deleteNamespacedCustomObject({ ...vn, name: 'ng-a-0000aaaa' }),
      ).rejects.toMatchObject({ code: 403 });
      await expect(custom.listNamespacedCustomObject({ ...vn, plural: 'nodegroups' })).rejects.toMatchObject({
        code: 403,
      });
      const core = kc.makeApiClient(CoreV1Api);
      await expect(core.listNamespacedSecret({ namespace: 'vpsie-runbook' })).rejects.toMatchObject({
        code: 403,
      });
      await expect(core.listNode()).rejects.toMatchObject({ code: 403 });
      await expect(core.listNamespacedPod({ namespace: 'kube-system' })).rejects.toMatchObject({ code: 403 });
    });
  });
});
