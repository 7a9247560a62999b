/**
 * The Kubernetes activities against the real kube-apiserver, run as the restricted identity `vpsie-runbook`:
 * what each returns is what lands in Temporal history, and how each fails decides whether Temporal retries.
 * The destructive ones are also run while a churner plays the controller's requeue loop, rewriting status the
 * whole time, as the real controller does while a node is in flight.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type V1Node } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesActivities, PRECONDITION_FAILED } from '../../src/activities/kubernetes';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION, KubernetesClient } from '../../src/clients/kubernetes';
import {
  registrationTargetOf,
  VPSIENODE_FINALIZER,
  type NodeGroupRef,
  type VPSieNodeRef,
} from '../../src/runbook';
import { kubeApiserverVersion } from '../support/control-plane';
import { rejectsWith } from '../support/expect-rejection';
import {
  ClusterCleanup,
  createTestNamespace,
  crd,
  kubeConfigFor,
  StatusChurner,
  VPSieNodeFixtures,
  type KubeObject,
} from '../support/kube';

/**
 * The project's client as it is, with one addition for tests: a test can run something right after the next read
 * of a VPSieNode or NodeGroup returns, i.e. between an activity's read and its write, where a live controller or
 * another person may act. Every call still goes to the real apiserver.
 */
class InterleavingClient extends KubernetesClient {
  private readonly after: { vpsienodes: Hook[]; nodegroups: Hook[] } = { vpsienodes: [], nodegroups: [] };

  afterNextRead(plural: 'vpsienodes' | 'nodegroups', hook: Hook): void {
    this.after[plural].push(hook);
  }

  override async getVPSieNode(ref: VPSieNodeRef): Promise<unknown | null> {
    const read = await super.getVPSieNode(ref);
    await this.after.vpsienodes.shift()?.(read as KubeObject | null);
    return read;
  }

  override async getNodeGroup(ref: NodeGroupRef): Promise<unknown | null> {
    const read = await super.getNodeGroup(ref);
    await this.after.nodegroups.shift()?.(read as KubeObject | null);
    return read;
  }
}
type Hook = (read: KubeObject | null) => Promise<void>;

const adminCustom = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);
const runbookCustom = kubeConfigFor('runbook').makeApiClient(CustomObjectsApi);
const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
const kube = new InterleavingClient(kubeConfigFor('runbook'));
const acts = createKubernetesActivities(kube);
const fixtures = new VPSieNodeFixtures();
const cleanup = new ClusterCleanup();
const churners: StatusChurner[] = [];
const suffix = randomUUID().slice(0, 6);
const started = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
/** Nodes are cluster-wide and shared with other test files: an address nobody else uses (CGNAT range). */
const uniqueIP = () =>
  `100.${64 + Math.floor(Math.random() * 64)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace('kacts');
});

afterAll(async () => {
  await Promise.all(churners.map((c) => c.stop()));
  await cleanup.deleteAll();
});

const ref = (name: string): VPSieNodeRef => ({ namespace: ns, name });

const vpsieNode = (name: string, metadata: Record<string, unknown> = {}) =>
  fixtures.vpsieNode(ns, name, { metadata, spec: { vpsieInstanceID: 4242, nodeGroupName: 'ng-a' } });

const nodeGroup = (name: string, metadata: Record<string, unknown> = {}) =>
  fixtures.nodeGroup(ns, name, {
    metadata,
    spec: {
      minNodes: 1,
      maxNodes: 3,
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1'],
      offeringIDs: ['o-1'],
      datacenterID: 'dc-1',
      osImageID: 'img-1',
    },
  });

/** Status as the controller writes it while provisioning: the condition is what each requeue stamps. */
const provisioning = {
  phase: 'Provisioning',
  createdAt: started,
  conditions: [
    {
      type: 'VPSReady',
      status: 'False',
      reason: 'Provisioning',
      message: 'Waiting for the VPS',
      lastTransitionTime: started,
      lastUpdateTime: started,
    },
  ],
};
const scaling = {
  currentNodes: 1,
  desiredNodes: 2,
  readyNodes: 1,
  conditions: [{ type: 'Scaling', status: 'True', reason: 'ScalingUp', lastTransitionTime: started }],
};

/** The controller's requeue loop on one object, started now and stopped after the test file. */
function churn(plural: 'vpsienodes' | 'nodegroups', name: string): StatusChurner {
  const c = new StatusChurner(plural, { namespace: ns, name }).start();
  churners.push(c);
  return c;
}

const adminGet = (plural: string, name: string) => fixtures.get(plural, ns, name);

/** The failure an activity ends with, as Temporal sees it. */
const failure = (p: Promise<unknown>) => rejectsWith(p, ApplicationFailure);

/** What Temporal stores: JSON. Anything that does not survive it (Dates, class instances) is a bug. */
function expectHistorySafe(value: unknown): void {
  const json = JSON.stringify(value);
  expect(JSON.parse(json)).toEqual(value);
  expect(json).not.toContain('managedFields');
  expect(json).not.toContain(process.env.KUBE_TEST_RUNBOOK_TOKEN as string);
}

async function node(name: string, labels: Record<string, string>, addresses: [string, string][] = []) {
  cleanup.addNodes(name);
  const created = await adminCore.createNode({ body: { metadata: { name, labels } } });
  if (addresses.length === 0) return created;
  // the kubelet's report
  return adminCore.replaceNodeStatus({
    name,
    body: { ...created, status: { addresses: addresses.map(([type, address]) => ({ type, address })) } },
  });
}

describe('evidence (runbook steps 1, 2, 3, 5 and causes 4, 5)', () => {
  it('checkVPSieNode and listVPSieNodes return snapshots with what "id 0" needs beside it', async () => {
    await fixtures.vpsieNode(ns, 'vn-1', {
      metadata: {
        annotations: { 'autoscaler.vpsie.com/creation-requested': 'true' },
        finalizers: [VPSIENODE_FINALIZER],
      },
      spec: {
        vpsieInstanceID: 0,
        nodeGroupName: 'ng-a',
        vpsieGroupID: 77,
        vpsieNodeIdentifier: '5f0c7a4e-node',
        ipAddress: '203.0.113.20',
      },
    });
    await fixtures.setStatus(ref('vn-1'), { ...provisioning, hostname: 'vn-1-ab12', vpsieStatus: 'running' });
    const one = await acts.checkVPSieNode(ref('vn-1'));
    expect(one).toMatchObject({
      name: 'vn-1',
      phase: 'Provisioning',
      vpsieInstanceID: 0,
      creationRequested: true,
      vpsieNodeIdentifier: '5f0c7a4e-node',
      vpsieGroupID: 77,
      resourceIdentifier: 'cluster-1',
      ipAddress: '203.0.113.20',
      hostname: 'vn-1-ab12',
      vpsieStatus: 'running',
      finalizers: [VPSIENODE_FINALIZER],
      provisioningStartedAt: started,
      conditions: [expect.objectContaining({ type: 'VPSReady', lastUpdateTime: started })],
    });
    expect(await acts.checkVPSieNode(ref('vn-absent'))).toBeNull();
    const all = await acts.listVPSieNodes(ns);
    expect(all.map((n) => n.name)).toContain('vn-1');
    expectHistorySafe(all);
  });

  it("listVPSieNodeEvents gives this VPSieNode's events as summaries, oldest first", async () => {
    const vn = await vpsieNode('vn-events');
    const ev = (name: string, involvedName: string, reason: string, at: string) =>
      adminCore.createNamespacedEvent({
        namespace: ns,
        body: {
          metadata: { name, namespace: ns },
          involvedObject: {
            apiVersion: `${AUTOSCALER_GROUP}/${AUTOSCALER_VERSION}`,
            kind: 'VPSieNode',
            namespace: ns,
            name: involvedName,
            uid: involvedName === 'vn-events' ? vn.metadata.uid : 'other',
          },
          type: 'Warning',
          reason,
          message: `${reason}: quota exceeded`,
          count: 2,
          firstTimestamp: new Date(at),
          lastTimestamp: new Date(at),
          source: { component: 'vpsienode-controller' },
        },
      });
    await ev('e-late', 'vn-events', 'PhaseFailed', '2026-11-24T10:10:00Z');
    await ev('e-early', 'vn-events', 'Initializing', '2026-11-24T10:01:00Z');
    await ev('e-else', 'vn-someone-else', 'PhaseFailed', '2026-11-24T10:05:00Z');

    const events = await acts.listVPSieNodeEvents(ref('vn-events'), vn.metadata.uid);
    expect(events).toEqual([
      {
        type: 'Warning',
        reason: 'Initializing',
        message: 'Initializing: quota exceeded',
        count: 2,
        firstSeen: '2026-11-24T10:01:00Z',
        lastSeen: '2026-11-24T10:01:00Z',
        source: 'vpsienode-controller',
        involvedObject: { kind: 'VPSieNode', name: 'vn-events', uid: vn.metadata.uid },
      },
      expect.objectContaining({ reason: 'PhaseFailed', lastSeen: '2026-11-24T10:10:00Z' }),
    ]);
    expectHistorySafe(events);
  });

  it('readControllerLogs finds the pods by the configured label selector and says which could not be read', async () => {
    const app = `acts-ctl-${suffix}`;
    const name = `${app}-controller-5f6d7c8b9-abcde`;
    cleanup.addKubeSystemPods(name);
    await adminCore.createNamespacedPod({
      namespace: 'kube-system',
      body: {
        metadata: { name, labels: { app, component: 'controller' } },
        spec: {
          containers: [
            { name: 'kube-rbac-proxy', image: 'registry.example/proxy:v1' },
            { name: 'controller', image: 'ghcr.io/vpsieinc/vpsie-k8s-autoscaler:0.7.8' },
          ],
        },
      },
    });
    const configured = createKubernetesActivities(kube, { controller: { labelSelector: `app=${app}` } });
    const found = await configured.readControllerLogs(ref('vn-1'));
    expect(found).toEqual({
      namespace: 'kube-system',
      labelSelector: `app=${app}`,
      container: 'controller',
      pods: [
        { pod: name, container: 'controller', lines: [], error: expect.stringMatching(/not scheduled/) },
      ],
      note: null,
    });
    expectHistorySafe(found);
  });

  it('readControllerLogs with no matching pod says so, as a fact about the selector', async () => {
    const none = await acts.readControllerLogs(ref('vn-1'), { labelSelector: `app=absent-${suffix}` });
    expect(none).toEqual({
      namespace: 'kube-system',
      labelSelector: `app=absent-${suffix}`,
      container: 'controller',
      pods: [],
      note: `no pods match app=absent-${suffix} in kube-system`,
    });
    // the defaults are the upstream install's: app=vpsie-autoscaler in kube-system, container controller
    const defaults = await acts.readControllerLogs(ref('vn-1'));
    expect(defaults).toMatchObject({
      namespace: 'kube-system',
      labelSelector: 'app=vpsie-autoscaler',
      container: 'controller',
    });
  });

  it('readControllerLogs outside what the role allows fails at once as Kubernetes403', async () => {
    const f = await failure(acts.readControllerLogs(ref('vn-1'), { namespace: ns }));
    expect(f.type).toBe('Kubernetes403');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('forbidden');
    expect(f.message).not.toContain(process.env.KUBE_TEST_RUNBOOK_TOKEN as string);
  });

  it('checkNodeRegistration matches by IP, then by the controller label, then by name or hostname', async () => {
    const vn = `vn-reg-${suffix}`;
    const ip = uniqueIP();
    const byIp = `node-${suffix}-by-ip`;
    const byLabel = `node-${suffix}-by-label`;
    const byName = `node-${suffix}-by-name`;
    const byHostname = `node-${suffix}-by-hostname`;
    await node(byLabel, { 'autoscaler.vpsie.com/vpsienode': vn, 'autoscaler.vpsie.com/nodegroup': 'ng-a' });
    await node(byName, {});
    await node(byHostname, {}, [['Hostname', `${vn}-ab12`]]);
    const target = { vpsieNode: vn, ipAddresses: [ip], nodeNames: [byName, `${vn}-ab12`] };

    // no Node has the IP yet: the label comes next, then the node name, then the hostname
    expect(await acts.checkNodeRegistration(target)).toMatchObject({
      matchedBy: 'label',
      node: { name: byLabel, labels: { 'autoscaler.vpsie.com/vpsienode': vn } },
    });
    expect(await acts.checkNodeRegistration({ ...target, vpsieNode: `${vn}-other` })).toMatchObject({
      matchedBy: 'name',
      node: { name: byName },
    });
    expect(
      await acts.checkNodeRegistration({ ...target, vpsieNode: `${vn}-other`, nodeNames: [`${vn}-ab12`] }),
    ).toMatchObject({ matchedBy: 'name', node: { name: byHostname } });

    // the kubelet of the VM registers with the VM's address as its ExternalIP
    const registered: V1Node = await node(byIp, {}, [
      ['InternalIP', '10.1.0.7'],
      ['ExternalIP', ip],
    ]);
    const found = await acts.checkNodeRegistration(target);
    expect(found).toEqual({
      matchedBy: 'ip',
      node: {
        name: byIp,
        uid: registered.metadata!.uid,
        labels: {},
        readyStatus: null,
        readyReason: null,
        readySince: null,
        kubeletVersion: null,
        internalIP: '10.1.0.7',
        externalIP: ip,
        creationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      },
    });
    expectHistorySafe(found);
    expect(
      await acts.checkNodeRegistration({ vpsieNode: `vn-never-${suffix}`, ipAddresses: [], nodeNames: [] }),
    ).toBeNull();
  });

  it('checkNodeRegistration takes its target from the VPSieNode snapshot', async () => {
    const name = `vn-snap-${suffix}`;
    const ip = uniqueIP();
    await fixtures.vpsieNode(ns, name, { spec: { ipAddress: ip } });
    await fixtures.setStatus(ref(name), { phase: 'Joining', hostname: `${name}-host` });
    const snapshot = (await acts.checkVPSieNode(ref(name)))!;
    expect(registrationTargetOf(snapshot)).toEqual({
      vpsieNode: name,
      ipAddresses: [ip],
      nodeNames: [`${name}-host`],
    });
    await node(`node-${suffix}-snap`, {}, [['InternalIP', ip]]);
    expect(await acts.checkNodeRegistration(registrationTargetOf(snapshot))).toMatchObject({
      matchedBy: 'ip',
      node: { name: `node-${suffix}-snap`, internalIP: ip },
    });
    const bad = await failure(acts.checkNodeRegistration({ vpsieNode: '', ipAddresses: [], nodeNames: [] }));
    expect(bad).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
  });

  it('getNodeGroup and getClusterVersion', async () => {
    await fixtures.nodeGroup(ns, 'ng-read', {
      metadata: { labels: { 'autoscaler.vpsie.com/managed': 'true' } },
      spec: { kubernetesVersion: 'v1.30.2', sshKeyIDs: ['k-1'], kubeSizeID: 3 },
    });
    await fixtures.setStatus(
      { namespace: ns, name: 'ng-read' },
      { ...scaling, vpsieGroupID: 77 },
      'nodegroups',
    );
    const ng = await acts.getNodeGroup({ namespace: ns, name: 'ng-read' });
    expect(ng).toMatchObject({
      name: 'ng-read',
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1'],
      minNodes: 1,
      managed: true,
      kubeSizeID: 3,
      resourceIdentifier: 'cluster-1',
      vpsieGroupID: 77,
      desiredNodes: 2,
    });
    expectHistorySafe(ng);
    expect(await acts.getNodeGroup({ namespace: ns, name: 'ng-absent' })).toBeNull();
    const version = await acts.getClusterVersion();
    expect(version.gitVersion).toBe(kubeApiserverVersion());
    expectHistorySafe(version);
  });
});

describe('deleteVPSieNode', () => {
  it('deletes, and a retry is success: already-gone', async () => {
    const vn = await vpsieNode('del');
    expect(await acts.deleteVPSieNode(ref('del'), { uid: vn.metadata.uid })).toEqual({
      outcome: 'deleted',
      pendingFinalizers: [],
    });
    expect(await adminGet('vpsienodes', 'del')).toBeNull();
    expect(await acts.deleteVPSieNode(ref('del'), { uid: vn.metadata.uid })).toEqual({
      outcome: 'already-gone',
      pendingFinalizers: [],
    });
    const bad = await failure(acts.deleteVPSieNode(ref('del'), { uid: '' }));
    expect(bad).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
  });

  it('a same-named replacement seen by the re-read is left alone: non-retryable PreconditionFailed', async () => {
    const diagnosed = await vpsieNode('swapped');
    await adminCustom.deleteNamespacedCustomObject({ ...crd('vpsienodes', ns), name: 'swapped' });
    const replacement = await vpsieNode('swapped');
    const f = await failure(acts.deleteVPSieNode(ref('swapped'), { uid: diagnosed.metadata.uid }));
    expect(f).toMatchObject({ type: PRECONDITION_FAILED, nonRetryable: true });
    expect(f.message).toContain(replacement.metadata.uid);
    const still = await adminGet('vpsienodes', 'swapped');
    expect(still?.metadata.uid).toBe(replacement.metadata.uid);
    expect(still?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('a replacement made between the re-read and the delete is refused by the apiserver (409): PreconditionFailed', async () => {
    const diagnosed = await vpsieNode('swapped-late');
    let replacement: KubeObject | undefined;
    kube.afterNextRead('vpsienodes', async (read) => {
      expect(read?.metadata.uid).toBe(diagnosed.metadata.uid);
      // the NodeGroup controller replaces it right now, under the same name
      await adminCustom.deleteNamespacedCustomObject({ ...crd('vpsienodes', ns), name: 'swapped-late' });
      replacement = await vpsieNode('swapped-late');
    });
    const f = await failure(acts.deleteVPSieNode(ref('swapped-late'), { uid: diagnosed.metadata.uid }));
    expect(f).toMatchObject({ type: PRECONDITION_FAILED, nonRetryable: true });
    expect(f.message).toMatch(/HTTP 409/);
    const still = await adminGet('vpsienodes', 'swapped-late');
    expect(still?.metadata.uid).toBe(replacement?.metadata.uid);
    expect(still?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('reports the controller finalizer still holding a marked VPSieNode; a retry is already-deleting', async () => {
    const vn = await vpsieNode('held', { finalizers: [VPSIENODE_FINALIZER] });
    const precondition = { uid: vn.metadata.uid };
    expect(await acts.deleteVPSieNode(ref('held'), precondition)).toEqual({
      outcome: 'deleted',
      pendingFinalizers: [VPSIENODE_FINALIZER],
    });
    const marked = await adminGet('vpsienodes', 'held');
    expect(marked?.metadata.deletionTimestamp).toEqual(expect.any(String));
    // Temporal retries with the same arguments
    expect(await acts.deleteVPSieNode(ref('held'), precondition)).toEqual({
      outcome: 'already-deleting',
      pendingFinalizers: [VPSIENODE_FINALIZER],
    });
    // the controller terminated the VM and lets go
    await adminCustom.patchNamespacedCustomObject({
      ...crd('vpsienodes', ns),
      name: 'held',
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    expect(await acts.deleteVPSieNode(ref('held'), precondition)).toEqual({
      outcome: 'already-gone',
      pendingFinalizers: [],
    });
  });

  it('succeeds while the controller churns status, where a resourceVersion precondition is refused', async () => {
    const vn = await vpsieNode('churned', { finalizers: [VPSIENODE_FINALIZER] });
    await fixtures.setStatus(ref('churned'), provisioning);
    const controller = churn('vpsienodes', 'churned');

    // what a resourceVersion precondition meets: the version read is gone by the time the delete arrives
    const seen = (await adminGet('vpsienodes', 'churned'))!;
    await controller.nextWrite();
    const refused = await runbookCustom
      .deleteNamespacedCustomObject({
        ...crd('vpsienodes', ns),
        name: 'churned',
        body: { preconditions: { uid: vn.metadata.uid, resourceVersion: seen.metadata.resourceVersion } },
      })
      .then(
        () => null,
        (err: { code?: number }) => err.code,
      );
    expect(refused).toBe(409);
    expect((await adminGet('vpsienodes', 'churned'))?.metadata.deletionTimestamp).toBeUndefined();

    // the activity: status is rewritten between its read and its delete, and the delete goes through
    let readVersion = '';
    let churnedTo = '';
    kube.afterNextRead('vpsienodes', async (read) => {
      readVersion = read!.metadata.resourceVersion;
      churnedTo = await controller.nextWrite();
    });
    expect(await acts.deleteVPSieNode(ref('churned'), { uid: vn.metadata.uid })).toEqual({
      outcome: 'deleted',
      pendingFinalizers: [VPSIENODE_FINALIZER],
    });
    expect(readVersion).toEqual(expect.any(String));
    expect(churnedTo).toEqual(expect.any(String));
    expect(churnedTo).not.toBe(readVersion);
    const marked = (await adminGet('vpsienodes', 'churned'))!;
    expect(marked.metadata.uid).toBe(vn.metadata.uid);
    expect(marked.metadata.deletionTimestamp).toEqual(expect.any(String));
    // the controller went on rewriting status after the delete too
    await controller.nextWrite();
    expect(controller.endedBecause).toBeNull();
    await controller.stop();
  });
});

describe('NodeGroup changes', () => {
  it('forceNodeGroupReconciliation writes reconcile-trigger; a retry writes the same and changes nothing', async () => {
    await nodeGroup('ng-reconcile');
    const ngRef = { namespace: ns, name: 'ng-reconcile' };
    const first = await acts.forceNodeGroupReconciliation(ngRef, 1795000000);
    expect(first.reconcileTrigger).toBe('1795000000');
    expectHistorySafe(first);
    const retry = await acts.forceNodeGroupReconciliation(ngRef, 1795000000);
    expect(retry.resourceVersion).toBe(first.resourceVersion);
    const read = await adminGet('nodegroups', 'ng-reconcile');
    expect(read?.metadata.annotations).toEqual({ 'reconcile-trigger': '1795000000' });
    const bad = await failure(acts.forceNodeGroupReconciliation(ngRef, 1.5));
    expect(bad.type).toBe('InvalidInput');
    const missing = await failure(acts.forceNodeGroupReconciliation({ namespace: ns, name: 'ng-absent' }, 1));
    expect(missing).toMatchObject({ type: 'Kubernetes404', nonRetryable: true });
  });

  const version = (name: string) =>
    adminGet('nodegroups', name).then((o) => (o?.spec as { kubernetesVersion?: string }).kubernetesVersion);
  const generation = (name: string) =>
    adminGet('nodegroups', name).then((o) => o?.metadata.generation as number);

  it('setNodeGroupKubernetesVersion updates while the controller churns status; a retry is already-set, without a write', async () => {
    const ng = await nodeGroup('ng-version');
    const ngRef = { namespace: ns, name: 'ng-version' };
    await fixtures.setStatus(ngRef, scaling, 'nodegroups');
    const controller = churn('nodegroups', 'ng-version');

    // what a resourceVersion precondition meets: the version read is gone by the time the patch arrives
    const seen = (await adminGet('nodegroups', 'ng-version'))!;
    await controller.nextWrite();
    const stale = await runbookCustom
      .patchNamespacedCustomObject({
        ...crd('nodegroups', ns),
        name: 'ng-version',
        body: [
          { op: 'test', path: '/metadata/resourceVersion', value: seen.metadata.resourceVersion },
          { op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.34.4' },
        ],
      })
      .then(
        () => null,
        (err: { code?: number }) => err.code,
      );
    expect(stale).toBe(422);
    expect(await version('ng-version')).toBe('v1.30.2');

    // the activity: status is rewritten between its read and its patch, and the patch goes through
    let readVersion = '';
    let churnedTo = '';
    kube.afterNextRead('nodegroups', async (read) => {
      readVersion = read!.metadata.resourceVersion;
      churnedTo = await controller.nextWrite();
    });
    const change = { from: 'v1.30.2', to: 'v1.34.4', uid: ng.metadata.uid };
    const done = await acts.setNodeGroupKubernetesVersion(ngRef, change);
    expect(done.outcome).toBe('updated');
    expect(done.nodeGroup).toMatchObject({ kubernetesVersion: 'v1.34.4', sshKeyIDs: ['k-1'] });
    expectHistorySafe(done);
    expect(readVersion).toEqual(expect.any(String));
    expect(churnedTo).toEqual(expect.any(String));
    expect(churnedTo).not.toBe(readVersion);

    const written = await generation('ng-version');
    await controller.nextWrite();
    const retried = await acts.setNodeGroupKubernetesVersion(ngRef, change);
    expect(retried).toMatchObject({ outcome: 'already-set', nodeGroup: { kubernetesVersion: 'v1.34.4' } });
    expect(await generation('ng-version')).toBe(written);
    expect(controller.endedBecause).toBeNull();
    await controller.stop();
  });

  it('setNodeGroupKubernetesVersion refuses a NodeGroup whose version changed since the diagnosis', async () => {
    await nodeGroup('ng-moved');
    const ngRef = { namespace: ns, name: 'ng-moved' };
    await adminCustom.patchNamespacedCustomObject({
      ...crd('nodegroups', ns),
      name: 'ng-moved',
      body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.33.1' }],
    });
    const before = await generation('ng-moved');
    const f = await failure(acts.setNodeGroupKubernetesVersion(ngRef, { from: 'v1.30.2', to: 'v1.34.4' }));
    expect(f).toMatchObject({ type: PRECONDITION_FAILED, nonRetryable: true });
    expect(f.message).toContain('v1.33.1');
    expect(await version('ng-moved')).toBe('v1.33.1');
    expect(await generation('ng-moved')).toBe(before);
  });

  it('setNodeGroupKubernetesVersion: a change between its read and its patch fails the JSON Patch test, under churn', async () => {
    await nodeGroup('ng-raced');
    const ngRef = { namespace: ns, name: 'ng-raced' };
    await fixtures.setStatus(ngRef, scaling, 'nodegroups');
    const controller = churn('nodegroups', 'ng-raced');
    kube.afterNextRead('nodegroups', async () => {
      // someone else corrects the version meanwhile, and the controller requeues
      await adminCustom.patchNamespacedCustomObject({
        ...crd('nodegroups', ns),
        name: 'ng-raced',
        body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.33.1' }],
      });
      await controller.nextWrite();
    });
    const f = await failure(acts.setNodeGroupKubernetesVersion(ngRef, { from: 'v1.30.2', to: 'v1.34.4' }));
    expect(f).toMatchObject({ type: PRECONDITION_FAILED, nonRetryable: true });
    expect(f.message).toMatch(/kubernetesVersion v1\.33\.1 now, not the v1\.30\.2/);
    expect(await version('ng-raced')).toBe('v1.33.1');

    // the same race, but to the very version we wanted: that is success, not a conflict
    kube.afterNextRead('nodegroups', async () => {
      await adminCustom.patchNamespacedCustomObject({
        ...crd('nodegroups', ns),
        name: 'ng-raced',
        body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.34.4' }],
      });
    });
    const same = await acts.setNodeGroupKubernetesVersion(ngRef, { from: 'v1.33.1', to: 'v1.34.4' });
    expect(same.outcome).toBe('already-set');
    expect(controller.endedBecause).toBeNull();
    await controller.stop();
  });

  it('setNodeGroupKubernetesVersion refuses a replaced NodeGroup, a value the CRD refuses, and a missing one', async () => {
    const diagnosed = await nodeGroup('ng-replaced');
    const ngRef = { namespace: ns, name: 'ng-replaced' };
    await adminCustom.deleteNamespacedCustomObject({ ...crd('nodegroups', ns), name: 'ng-replaced' });
    await nodeGroup('ng-replaced');
    const replaced = await failure(
      acts.setNodeGroupKubernetesVersion(ngRef, {
        from: 'v1.30.2',
        to: 'v1.34.4',
        uid: diagnosed.metadata.uid,
      }),
    );
    expect(replaced).toMatchObject({ type: PRECONDITION_FAILED, nonRetryable: true });
    expect(await version('ng-replaced')).toBe('v1.30.2');

    const invalid = await failure(acts.setNodeGroupKubernetesVersion(ngRef, { from: 'v1.30.2', to: '1.34' }));
    expect(invalid).toMatchObject({ type: 'Kubernetes422', nonRetryable: true });
    expect(invalid.message).toContain('should match');
    const missing = await failure(
      acts.setNodeGroupKubernetesVersion(
        { namespace: ns, name: 'ng-absent' },
        { from: 'v1.30.2', to: 'v1.34.4' },
      ),
    );
    expect(missing).toMatchObject({ type: 'Kubernetes404', nonRetryable: true });
    const empty = await failure(acts.setNodeGroupKubernetesVersion(ngRef, { from: '', to: 'v1.34.4' }));
    expect(empty).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(empty.message).toContain('change.from');
  });
});

describe('transient failures', () => {
  it('an unreachable API server is rethrown as is, so Temporal retries it', async () => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 'not-a-real-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const offline = createKubernetesActivities(new KubernetesClient(kc));
    const err = await rejectsWith(offline.checkVPSieNode(ref('vn-1')), Error);
    expect(err).not.toBeInstanceOf(ApplicationFailure);
    expect(String(err)).not.toContain('not-a-real-token');
  });
});
