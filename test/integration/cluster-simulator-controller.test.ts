/**
 * Where the simulated controller runs and how its logs reach a reader: named and labelled as upstream's
 * manifests deploy it, its zap JSON lines served through the real `pods/log` path (apiserver → fake kubelet)
 * for the admin and for the runbook's restricted identity; and stop() leaves nothing behind.
 */
import * as https from 'node:https';
import { AppsV1Api } from '@kubernetes/client-node';
import {
  CONTROLLER_CONTAINER,
  CONTROLLER_DEPLOYMENT,
  CONTROLLER_POD_LABELS,
  LABEL_SIMULATOR,
} from '../support/cluster';
import { SimTest, uniq } from '../support/cluster/test-helpers';

jest.setTimeout(120_000);

const t = new SimTest();

beforeAll(() => t.start('clusterctl'));
afterAll(() => t.stop());

test('the controller runs as upstream deploys it: Deployment vpsie-autoscaler-controller, app=vpsie-autoscaler pods, container controller', async () => {
  const pod = t.sim.controllerPod;
  expect(pod).toMatchObject({
    namespace: 'kube-system',
    deployment: 'vpsie-autoscaler-controller',
    container: 'controller',
  });
  expect(CONTROLLER_POD_LABELS).toEqual({ app: 'vpsie-autoscaler', component: 'controller' });
  const apps = t.admin.makeApiClient(AppsV1Api);
  const deployment = await apps.readNamespacedDeployment({
    namespace: 'kube-system',
    name: CONTROLLER_DEPLOYMENT,
  });
  expect(deployment.spec?.selector.matchLabels).toEqual(CONTROLLER_POD_LABELS);
  expect(deployment.spec?.template.spec?.containers.map((c) => c.name)).toEqual([CONTROLLER_CONTAINER]);

  // the runbook identity finds it by label, as the runbook's "kubectl logs -l app=vpsie-autoscaler" would
  const pods = await t.runbookCore.listNamespacedPod({
    namespace: 'kube-system',
    labelSelector: 'app=vpsie-autoscaler',
  });
  const ours = pods.items.find((p) => p.metadata?.labels?.[LABEL_SIMULATOR] === t.sim.id);
  expect(ours?.metadata?.name).toBe(pod.name);
  expect(ours?.metadata?.name).toMatch(new RegExp(`^${CONTROLLER_DEPLOYMENT}-[a-z0-9]+-[a-z0-9]+$`));
  expect(ours?.metadata?.labels).toMatchObject({
    ...CONTROLLER_POD_LABELS,
    'pod-template-hash': expect.any(String),
  });
  expect(ours?.status?.phase).toBe('Running');
  expect(ours?.spec?.containers.map((c) => c.name)).toEqual(['controller']);
  expect(ours?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet', name: pod.replicaSet });
  const rs = await apps.readNamespacedReplicaSet({ namespace: 'kube-system', name: pod.replicaSet });
  expect(rs.metadata?.ownerReferences?.[0]).toMatchObject({
    kind: 'Deployment',
    name: CONTROLLER_DEPLOYMENT,
    uid: deployment.metadata?.uid,
  });
});

test('the controller logs zap JSON through the real pods/log path, for the admin and for the runbook identity', async () => {
  const name = uniq('logs');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  const pod = t.sim.controllerPod;
  const lines = t.sim.controllerLogs().map((l) => JSON.parse(l) as Record<string, unknown>);
  const processing = lines.find((l) => l.msg === 'Processing VPSieNode' && l.name === name);
  expect(processing).toMatchObject({
    level: 'info',
    logger: 'vpsienode-controller',
    caller: 'vpsienode/controller.go:247',
    namespace: t.ns,
    requestID: expect.stringMatching(/^[0-9a-f-]{36}$/),
  });
  expect(Number.isNaN(Date.parse(String(processing?.ts)))).toBe(false);

  // markers after everything so far: the last lines of the log are ours whatever the loop writes meanwhile
  const markers = [1, 2, 3].map((i) => `marker ${i} ${uniq('m')}`);
  for (const m of markers) t.sim.appendLog(m);
  const requestsBefore = t.sim.kubelet.requests.length;
  for (const api of [t.core, t.runbookCore]) {
    const full = (
      await api.readNamespacedPodLog({ namespace: pod.namespace, name: pod.name, container: pod.container })
    )
      .trimEnd()
      .split('\n');
    const at = full.indexOf(markers[0]);
    expect(full.slice(at, at + 3)).toEqual(markers);
    expect(full.slice(0, at)).toEqual(t.sim.controllerLogs().slice(0, at));
  }
  const stamped = await t.core.readNamespacedPodLog({
    namespace: pod.namespace,
    name: pod.name,
    container: pod.container,
    tailLines: 1000,
    timestamps: true,
  });
  expect(stamped.split('\n').find((l) => l.endsWith(markers[2]))).toMatch(
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z marker 3 /,
  );
  const seen = t.sim.kubelet.requests.slice(requestsBefore);
  expect(seen.every((r) => r.path === `/containerLogs/kube-system/${pod.name}/${pod.container}`)).toBe(true);
  await expect(
    t.core.readNamespacedPodLog({ namespace: pod.namespace, name: pod.name, container: 'nope' }),
  ).rejects.toMatchObject({
    code: 400,
  });
});

test('stop() waits for the loop, removes its Nodes and pod, and closes the fake kubelet', async () => {
  const name = uniq('last');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  const pod = t.sim.controllerPod;
  const port = t.sim.kubelet.port;
  const t0 = Date.now();
  await t.sim.stop();
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect((await t.core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${t.sim.id}` })).items).toEqual([]);
  await expect(t.core.readNamespacedPod({ namespace: pod.namespace, name: pod.name })).rejects.toMatchObject({
    code: 404,
  });
  const refused = await new Promise<boolean>((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false }, () =>
      resolve(false),
    );
    req.on('error', () => resolve(true));
  });
  expect(refused).toBe(true);
  const records = t.sim.records.length;
  await t.sim.sync(); // resolves at once: there is no loop any more
  expect(t.sim.records).toHaveLength(records);
});
