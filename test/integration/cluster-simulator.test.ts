/**
 * The cluster simulator is faithful: through the real kube-apiserver (Jest global setup), it plays the
 * vpsie-k8s-autoscaler and the kubelets the way domain.md §2 describes, and its controller pod's logs travel
 * the real `pods/log` path (apiserver → fake kubelet) for the admin and for the restricted runbook identity.
 */
import { randomBytes } from 'node:crypto';
import * as https from 'node:https';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { CoreV1Event, V1Node } from '@kubernetes/client-node';
import {
  ClusterSimulator,
  FINALIZER,
  GROUP,
  HEALTHY_PHASES,
  LABEL_MANAGED,
  LABEL_NODEGROUP,
  LABEL_SIMULATOR,
  LABEL_VPSIENODE,
  RECONCILE_TRIGGER,
  VERSION,
} from '../support/cluster-simulator';
import { createTestNamespace, kubeConfigFor } from '../support/kube';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(30_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = any;

const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const admin = kubeConfigFor('admin');
const core = admin.makeApiClient(CoreV1Api);
const custom = admin.makeApiClient(CustomObjectsApi);
const runbookCore = kubeConfigFor('runbook').makeApiClient(CoreV1Api);
const runbookCustom = kubeConfigFor('runbook').makeApiClient(CustomObjectsApi);

let ns: string;
let vpsie: VPSieSimulator;
let sim: ClusterSimulator;

const uniq = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const crd = (plural: string) => ({ group: GROUP, version: VERSION, namespace: ns, plural });

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${what}${last ? `: ${String(last)}` : ''}; sim errors: ${sim.errors}`,
      );
    }
    await sleep(40);
  }
}

async function getVN(name: string): Promise<Obj | undefined> {
  try {
    return await custom.getNamespacedCustomObject({ ...crd('vpsienodes'), name });
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

async function getNode(name: string): Promise<V1Node | undefined> {
  try {
    return await core.readNode({ name });
  } catch (err) {
    if (err instanceof ApiException && err.code === 404) return undefined;
    throw err;
  }
}

const listVNs = async (nodeGroup: string): Promise<Obj[]> =>
  (
    (await custom.listNamespacedCustomObject({
      ...crd('vpsienodes'),
      labelSelector: `${LABEL_NODEGROUP}=${nodeGroup}`,
    })) as { items: Obj[] }
  ).items;

async function events(name: string): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.name=${name}`,
  });
  const t = (e: CoreV1Event) => new Date(e.eventTime ?? e.lastTimestamp ?? 0).getTime();
  return list.items.sort(
    (a, b) => t(a) - t(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''),
  );
}
const reasons = async (name: string) => (await events(name)).map((e) => e.reason);

/** Events are written apart from the status, as the controller writes them: wait until all have landed. */
async function expectReasons(name: string, expected: string[]): Promise<void> {
  const got = await waitFor(`${expected.length} events of ${name}`, async () => {
    const r = await reasons(name);
    return r.length >= expected.length ? r : undefined;
  }).catch(() => reasons(name));
  expect(got).toEqual(expected);
}

const phaseIs = (name: string, phase: string) => async () => {
  const vn = await getVN(name);
  return vn?.status?.phase === phase ? vn : undefined;
};

const condition = (vn: Obj, type: string) =>
  (vn.status?.conditions ?? []).find((c: { type: string }) => c.type === type);

function vnSpec(extra: Record<string, unknown> = {}) {
  return {
    instanceType: '101',
    datacenterID: '1',
    osImageID: '201',
    resourceIdentifier: 'cluster-sim',
    project: 'project-1',
    kubernetesVersion: sim.clusterVersion,
    sshKeyIDs: ['301'],
    ...extra,
  };
}

async function createVN(name: string, spec: Record<string, unknown> = vnSpec()): Promise<void> {
  await custom.createNamespacedCustomObject({
    ...crd('vpsienodes'),
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'VPSieNode', metadata: { name, namespace: ns }, spec },
  });
}

async function createNodeGroup(name: string, spec: Record<string, unknown> = {}): Promise<void> {
  await custom.createNamespacedCustomObject({
    ...crd('nodegroups'),
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'NodeGroup',
      metadata: { name, namespace: ns },
      spec: {
        minNodes: 1,
        maxNodes: 3,
        datacenterID: '1',
        offeringIDs: ['101'],
        osImageID: '201',
        kubernetesVersion: sim.clusterVersion,
        sshKeyIDs: ['301'],
        labels: { pool: name },
        ...spec,
      },
    },
  });
}

async function deleteVN(name: string, api: CustomObjectsApi = custom): Promise<void> {
  await api.deleteNamespacedCustomObject({ ...crd('vpsienodes'), name });
}

beforeAll(async () => {
  ns = await createTestNamespace('clustersim');
  vpsie = new VPSieSimulator();
  await vpsie.start();
  sim = new ClusterSimulator({
    kubeConfig: admin,
    vpsie,
    namespace: ns,
    tickMs: 50,
    timings: { vmBootMs: 150, nodeRegisterMs: 100, nodeReadyMs: 100, vmTerminateMs: 100 },
  });
  await sim.start();
});

afterAll(async () => {
  await sim?.stop();
  await vpsie?.stop();
});

afterEach(() => {
  expect(sim.errors).toEqual([]);
});

test('a healthy VPSieNode goes Pending → Ready, its VM runs, its Node registers, the events come in order', async () => {
  const name = uniq('healthy');
  await createVN(name);
  const phases: string[] = [];
  const vn = await waitFor('Ready', async () => {
    const o = await getVN(name);
    const p = o?.status?.phase;
    if (p && phases[phases.length - 1] !== p) phases.push(p);
    return p === 'Ready' ? o : undefined;
  });

  // phases seen are in the controller's order (fast steps may be missed between two polls)
  expect(phases.map((p) => HEALTHY_PHASES.indexOf(p))).toEqual(
    [...phases.map((p) => HEALTHY_PHASES.indexOf(p))].sort((a, b) => a - b),
  );
  expect(vn.metadata.finalizers).toContain(FINALIZER);
  const id = vn.spec.vpsieInstanceID;
  expect(id).toBeGreaterThan(0);
  expect(vpsie.getVM(id)).toMatchObject({ status: 'running', name, hostname: name, boxsize_id: 101 });
  expect(vn.spec.ipAddress).toBe(vpsie.getVM(id)?.default_ip);
  expect(vn.status).toMatchObject({ nodeName: name, vpsieStatus: 'running' });
  const ts = ['createdAt', 'provisionedAt', 'joinedAt', 'readyAt'].map((k) => Date.parse(vn.status[k]));
  expect(ts.every((t) => !Number.isNaN(t))).toBe(true);
  expect([...ts].sort((a, b) => a - b)).toEqual(ts);
  for (const [type, reason] of [
    ['VPSReady', 'Provisioned'],
    ['NodeJoined', 'Joined'],
    ['NodeReady', 'Ready'],
  ]) {
    expect(condition(vn, type)).toMatchObject({ status: 'True', reason });
  }
  expect(condition(vn, 'Error')).toBeUndefined();

  const node = await getNode(name);
  expect(node?.metadata?.labels).toMatchObject({
    [LABEL_VPSIENODE]: name,
    [LABEL_MANAGED]: 'true',
    [LABEL_SIMULATOR]: sim.id,
  });
  expect(node?.status?.nodeInfo?.kubeletVersion).toBe(sim.clusterVersion);
  expect(node?.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  expect(node?.spec?.providerID).toBe(`vpsie://${id}`);

  const evs = await events(name);
  expect(evs.map((e) => e.reason)).toEqual(['Provisioning', 'Provisioned', 'Joining', 'Joined', 'Ready']);
  expect(
    evs.every((e) => e.involvedObject.kind === 'VPSieNode' && e.involvedObject.uid === vn.metadata.uid),
  ).toBe(true);
  expect(sim.controllerLogs().some((l) => l.includes(`provisioning VPSieNode ${name}`))).toBe(true);
});

test('the finalizer holds a deleted VPSieNode until its VM is terminated, and its Node is removed', async () => {
  const name = uniq('fin');
  await createVN(name);
  const vn = await waitFor('Ready', phaseIs(name, 'Ready'));
  const id: number = vn.spec.vpsieInstanceID;
  sim.setTimings({ vmTerminateMs: 700 });
  try {
    await deleteVN(name);
    const right = await getVN(name);
    expect(right?.metadata.deletionTimestamp).toBeTruthy();
    expect(right?.metadata.finalizers).toContain(FINALIZER);
    expect(vpsie.hasVM(id)).toBe(true);

    let sawTerminatingWithVM = false;
    await waitFor('the VPSieNode to disappear', async () => {
      const o = await getVN(name);
      const vmThere = vpsie.hasVM(id); // read after the object: an object gone with its VM there is a bug
      if (!o) {
        expect(vmThere).toBe(false);
        return true;
      }
      if (o.status?.phase === 'Terminating' && vmThere) sawTerminatingWithVM = true;
      return undefined;
    });
    expect(sawTerminatingWithVM).toBe(true);
    expect(vpsie.hasVM(id)).toBe(false);
    expect(await getNode(name)).toBeUndefined();
    await expectReasons(name, [
      'Provisioning',
      'Provisioned',
      'Joining',
      'Joined',
      'Ready',
      'Terminating',
      'Deleting',
    ]);
  } finally {
    sim.setTimings({ vmTerminateMs: 100 });
  }
});

test('a NodeGroup is kept at its count: a deleted VPSieNode gets a replacement with a new name', async () => {
  const ng = uniq('ng');
  await createNodeGroup(ng, { minNodes: 2 });
  const ready = (vns: Obj[]) =>
    vns.filter((v) => v.status?.phase === 'Ready' && !v.metadata.deletionTimestamp);
  const first = await waitFor('2 Ready VPSieNodes', async () => {
    const vns = await listVNs(ng);
    return ready(vns).length === 2 ? vns : undefined;
  });
  expect(first.length).toBe(2);
  const ngObj = await custom.getNamespacedCustomObject({ ...crd('nodegroups'), name: ng });
  for (const v of first) {
    expect(v.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'NodeGroup', name: ng, uid: ngObj.metadata.uid, controller: true }),
    ]);
    expect(v.spec).toMatchObject({
      nodeGroupName: ng,
      instanceType: '101',
      kubernetesVersion: sim.clusterVersion,
    });
    expect((await getNode(v.spec.nodeName))?.metadata?.labels).toMatchObject({
      [LABEL_NODEGROUP]: ng,
      pool: ng,
    });
  }
  await waitFor('NodeGroup status 2/2', async () => {
    const o = await custom.getNamespacedCustomObject({ ...crd('nodegroups'), name: ng });
    return o.status?.readyNodes === 2 && o.status?.currentNodes === 2 && o.status?.desiredNodes === 2;
  });

  const victim = first[0];
  await deleteVN(victim.metadata.name, runbookCustom); // as the runbook would
  const replaced = await waitFor('a replacement Ready and the victim gone', async () => {
    const vns = await listVNs(ng);
    const names = vns.map((v) => v.metadata.name);
    const fresh = vns.find((v) => !first.some((f) => f.metadata.name === v.metadata.name));
    return !names.includes(victim.metadata.name) && fresh?.status?.phase === 'Ready' ? fresh : undefined;
  });
  expect(replaced.metadata.name).not.toBe(victim.metadata.name);
  expect(vpsie.hasVM(victim.spec.vpsieInstanceID)).toBe(false);
  await waitFor('NodeGroup status 2/2 again', async () => {
    const o = await custom.getNamespacedCustomObject({ ...crd('nodegroups'), name: ng });
    return o.status?.readyNodes === 2 && o.status?.currentNodes === 2;
  });
  expect(sim.reconcilesOf(ng).some((r) => r.created.includes(replaced.metadata.name))).toBe(true);
});

test('a changed reconcile-trigger annotation makes a stalled NodeGroup reconcile at once', async () => {
  const ng = uniq('trig');
  await createNodeGroup(ng, { minNodes: 1 });
  const [vn] = await waitFor('1 Ready VPSieNode', async () => {
    const vns = await listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase === 'Ready' ? vns : undefined;
  });
  sim.stallNodeGroup(ng); // it misses its VPSieNodes' events from now on
  await deleteVN(vn.metadata.name);
  await waitFor('the VPSieNode gone', async () => !(await getVN(vn.metadata.name)));
  const before = sim.reconcilesOf(ng).length;
  await sleep(500); // ten ticks: a stalled controller does nothing
  expect(await listVNs(ng)).toEqual([]);
  expect(sim.reconcilesOf(ng).length).toBe(before);

  const trigger = String(Math.floor(Date.now() / 1000));
  const t0 = Date.now();
  await runbookCustom.patchNamespacedCustomObject(
    { ...crd('nodegroups'), name: ng, body: { metadata: { annotations: { [RECONCILE_TRIGGER]: trigger } } } },
    MERGE,
  );
  const [fresh] = await waitFor('a replacement', async () => {
    const vns = await listVNs(ng);
    return vns.length === 1 ? vns : undefined;
  });
  expect(Date.now() - t0).toBeLessThan(2_000);
  const last = sim.reconcilesOf(ng).slice(before);
  expect(last[0]).toMatchObject({ reason: 'annotations-changed', trigger, created: [fresh.metadata.name] });
  expect(
    sim
      .controllerLogs()
      .some((l) => l.includes(`reconciling NodeGroup ${ng}`) && l.includes(`"trigger":"${trigger}"`)),
  ).toBe(true);
  sim.stallNodeGroup(ng, false);
  await waitFor('replacement Ready', phaseIs(fresh.metadata.name, 'Ready'));
});

test('the controller logs travel through the real pods/log path, for the admin and for the runbook identity', async () => {
  const pod = sim.controllerPod;
  expect(pod.namespace).toBe('kube-system');
  // the runbook identity finds the pod (its Role allows get/list pods in kube-system)
  const pods = await runbookCore.listNamespacedPod({
    namespace: 'kube-system',
    labelSelector: `app.kubernetes.io/name=vpsie-autoscaler,${LABEL_SIMULATOR}=${sim.id}`,
  });
  expect(pods.items.map((p) => p.metadata?.name)).toEqual([pod.name]);
  expect(pods.items[0].spec?.nodeName).toBe(pod.nodeName);
  expect(pods.items[0].status?.phase).toBe('Running');
  expect(pods.items[0].metadata?.ownerReferences?.[0]).toMatchObject({
    kind: 'ReplicaSet',
    name: pod.replicaSet,
  });

  // wait until the controllers are quiet, so that nothing logs between the markers and the reads
  for (let n = -1; n !== sim.controllerLogs().length;) {
    n = sim.controllerLogs().length;
    await sim.sync(3);
  }
  const markers = [1, 2, 3].map((i) => `marker ${i} ${uniq('m')}`);
  for (const m of markers) sim.appendLog(m);
  const requestsBefore = sim.kubelet.requests.length;
  for (const api of [core, runbookCore]) {
    const tail = await api.readNamespacedPodLog({ namespace: pod.namespace, name: pod.name, tailLines: 3 });
    expect(tail.trimEnd().split('\n')).toEqual(markers);
    const full = await api.readNamespacedPodLog({ namespace: pod.namespace, name: pod.name });
    expect(full.trimEnd().split('\n')).toEqual(sim.controllerLogs());
    expect(full).toMatch(/provisioning VPSieNode healthy-/);
  }
  const stamped = await core.readNamespacedPodLog({
    namespace: pod.namespace,
    name: pod.name,
    container: pod.container,
    tailLines: 2,
    timestamps: true,
  });
  const stampedLines = stamped.trimEnd().split('\n');
  expect(stampedLines).toHaveLength(2);
  expect(stampedLines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z marker 3 /);
  const recent = await core.readNamespacedPodLog({
    namespace: pod.namespace,
    name: pod.name,
    sinceSeconds: 5,
  });
  expect(recent.trimEnd().split('\n').slice(-3)).toEqual(markers);

  // they did reach the fake kubelet, with the query the apiserver passed on
  const seen = sim.kubelet.requests.slice(requestsBefore);
  expect(seen.filter((r) => r.query.tailLines === '3')).toHaveLength(2);
  expect(seen.every((r) => r.path === `/containerLogs/kube-system/${pod.name}/${pod.container}`)).toBe(true);

  await expect(
    core.readNamespacedPodLog({ namespace: pod.namespace, name: pod.name, container: 'nope' }),
  ).rejects.toMatchObject({ code: 400 });
});

test('each staged runbook cause produces its symptoms', async () => {
  sim.setTimings({ provisioningTimeoutMs: 3_000, joiningTimeoutMs: 2_000 });
  const logsOf = (name: string) => sim.controllerLogs().filter((l) => l.includes(name));
  const noNode = async (name: string) => expect(await getNode(name)).toBeUndefined();
  try {
    const cause1 = async () => {
      const name = uniq('c1');
      await sim.stage(name, 'vm-creation-fails', { error: 'HTTP 422: VM quota exceeded' });
      await createVN(name);
      const vn = await waitFor('c1 Failed', phaseIs(name, 'Failed'));
      expect(vn.spec.vpsieInstanceID).toBe(0);
      expect(condition(vn, 'Error')).toMatchObject({ status: 'True', reason: 'VPSieAPIError' });
      expect(vn.status.lastError).toContain('failed to create VM: HTTP 422: VM quota exceeded');
      expect(vpsie.listVMs().some((v) => v.name === name)).toBe(false);
      await expectReasons(name, ['Provisioning', 'VPSieAPIError', 'Failed']);
      expect(logsOf(name).some((l) => l.includes('failed to create VM: HTTP 422: VM quota exceeded'))).toBe(
        true,
      );
    };
    const cause2 = async () => {
      const name = uniq('c2');
      await sim.stage(name, 'never-registers');
      await createVN(name);
      const joining = await waitFor('c2 Joining', phaseIs(name, 'Joining'));
      expect(vpsie.getVM(joining.spec.vpsieInstanceID)?.status).toBe('running');
      await sleep(800);
      await noNode(name);
      const vn = await waitFor('c2 JoiningTimeout', phaseIs(name, 'Failed'));
      expect(condition(vn, 'Error')).toMatchObject({ reason: 'JoiningTimeout' });
      expect(condition(vn, 'NodeJoined')).toMatchObject({ status: 'False', reason: 'JoiningTimeout' });
      await expectReasons(name, ['Provisioning', 'Provisioned', 'Joining', 'JoiningTimeout', 'Failed']);
      await noNode(name);
    };
    const cause3 = async () => {
      const name = uniq('c3');
      await sim.stage(name, 'stuck-provisioning');
      await createVN(name);
      const vn = await waitFor('c3 Provisioning with a VM', async () => {
        const o = await getVN(name);
        return o?.status?.phase === 'Provisioning' && o.spec.vpsieInstanceID > 0 ? o : undefined;
      });
      await sleep(1_000);
      expect((await getVN(name))?.status?.phase).toBe('Provisioning');
      expect(vpsie.getVM(vn.spec.vpsieInstanceID)?.status).toBe('provisioning');
      const failed = await waitFor('c3 ProvisioningTimeout', phaseIs(name, 'Failed'));
      expect(condition(failed, 'Error')).toMatchObject({ reason: 'ProvisioningTimeout' });
      await expectReasons(name, ['Provisioning', 'ProvisioningTimeout', 'Failed']);
    };
    const cause4 = async () => {
      const ng = uniq('c4');
      await sim.stage({ nodeGroup: ng }, 'version-mismatch');
      await createNodeGroup(ng);
      const [vn] = await waitFor('c4 VPSieNode Joining', async () => {
        const vns = await listVNs(ng);
        return vns.length === 1 && vns[0].status?.phase === 'Joining' ? vns : undefined;
      });
      const ngObj = await custom.getNamespacedCustomObject({ ...crd('nodegroups'), name: ng });
      const wrong = ngObj.spec.kubernetesVersion;
      expect(wrong).not.toBe(sim.clusterVersion);
      expect(vn.spec.kubernetesVersion).toBe(wrong);
      const name = vn.metadata.name;
      await waitFor('c4 version mismatch in logs', async () =>
        logsOf(name).some((l) => l.includes('version mismatch') && l.includes(wrong)),
      );
      expect((await getVN(name))?.status?.lastError).toContain('version mismatch');
      await noNode(name);
      await waitFor('c4 JoiningTimeout', phaseIs(name, 'Failed'));

      // the runbook's fix works: correct the NodeGroup's version, delete the node; the replacement joins
      await runbookCustom.patchNamespacedCustomObject(
        { ...crd('nodegroups'), name: ng, body: { spec: { kubernetesVersion: sim.clusterVersion } } },
        MERGE,
      );
      await deleteVN(name, runbookCustom);
      await waitFor('c4 replacement Ready', async () => {
        const vns = await listVNs(ng);
        return vns.length === 1 && vns[0].metadata.name !== name && vns[0].status?.phase === 'Ready';
      });
    };
    const cause5 = async () => {
      const name = uniq('c5');
      await sim.stage(name, 'unknown-ssh-keys');
      await createVN(name);
      const vn = await waitFor('c5 Joining', phaseIs(name, 'Joining'));
      const known = vpsie.sshKeysList().map((k) => String(k.id));
      expect((vn.spec.sshKeyIDs as string[]).some((id) => !known.includes(id))).toBe(true);
      expect(vpsie.getVM(vn.spec.vpsieInstanceID)?.status).toBe('running');
      expect(logsOf(name).some((l) => l.includes('not found in the VPSie account'))).toBe(true);
      await sleep(800);
      await noNode(name);
      await waitFor('c5 JoiningTimeout', phaseIs(name, 'Failed'));
    };
    await Promise.all([cause1(), cause2(), cause3(), cause4(), cause5()]);
  } finally {
    sim.setTimings({ provisioningTimeoutMs: 10 * 60_000, joiningTimeoutMs: 15 * 60_000 });
  }
});

test('an orphaned VM is in VPSie with no VPSieNode; a failed VM delete keeps the finalizer until VPSie recovers', async () => {
  const orphan = await sim.addOrphanVM({ nodeGroup: 'gone-ng', withNode: true });
  expect(vpsie.getVM(orphan.id)).toMatchObject({
    status: 'running',
    tags: expect.arrayContaining(['vpsie-autoscaler']),
  });
  expect(await getVN(orphan.name)).toBeUndefined();
  expect((await getNode(orphan.name))?.metadata?.labels).toMatchObject({ [LABEL_NODEGROUP]: 'gone-ng' });

  const name = uniq('vdel');
  await sim.stage(name, 'vm-delete-fails');
  await createVN(name);
  const vn = await waitFor('Ready', phaseIs(name, 'Ready'));
  await deleteVN(name);
  await waitFor('VPSDeleteFailed', async () => (await reasons(name)).includes('VPSDeleteFailed'));
  await sleep(300);
  expect((await getVN(name))?.metadata.finalizers).toContain(FINALIZER);
  expect(vpsie.hasVM(vn.spec.vpsieInstanceID)).toBe(true);
  await sim.stage(name, 'healthy');
  await waitFor('gone', async () => !(await getVN(name)));
  expect(vpsie.hasVM(vn.spec.vpsieInstanceID)).toBe(false);
});

test('stop() halts the loops and the fake kubelet at once and removes its nodes and pod', async () => {
  const pod = sim.controllerPod;
  const port = sim.kubelet.port;
  const t0 = Date.now();
  await sim.stop();
  expect(Date.now() - t0).toBeLessThan(2_000);
  const nodes = await core.listNode({ labelSelector: `${LABEL_SIMULATOR}=${sim.id}` });
  expect(nodes.items).toEqual([]);
  await expect(core.readNamespacedPod({ namespace: pod.namespace, name: pod.name })).rejects.toMatchObject({
    code: 404,
  });
  const refused = await new Promise<boolean>((resolve) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false }, () =>
      resolve(false),
    );
    req.on('error', () => resolve(true));
  });
  expect(refused).toBe(true);
  // nothing moves any more
  const name = uniq('after');
  await createVN(name);
  await sleep(300);
  expect((await getVN(name))?.status).toBeUndefined();
});
