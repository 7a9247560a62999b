/**
 * The Kubernetes activities against the real kube-apiserver, run as the restricted identity `vpsie-runbook`:
 * what each returns is what lands in Temporal history, and how each fails decides whether Temporal retries.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION, KubernetesClient } from '../../src/clients/kubernetes';
import { VPSIENODE_FINALIZER, type VPSieNodeRef } from '../../src/runbook';
import { kubeApiserverVersion } from '../support/control-plane';
import { rejectsWith } from '../support/expect-rejection';
import { ClusterCleanup, createTestNamespace, crd, kubeConfigFor, VPSieNodeFixtures } from '../support/kube';

const adminCustom = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);
const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
const acts = createKubernetesActivities(new KubernetesClient(kubeConfigFor('runbook')));
const fixtures = new VPSieNodeFixtures();
const cleanup = new ClusterCleanup();
const suffix = randomUUID().slice(0, 6);

let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace('kacts');
});

afterAll(() => cleanup.deleteAll());

const ref = (name: string): VPSieNodeRef => ({ namespace: ns, name });

const vpsieNode = (name: string, metadata: Record<string, unknown> = {}) =>
  fixtures.vpsieNode(ns, name, { metadata, spec: { vpsieInstanceID: 4242, nodeGroupName: 'ng-a' } });

const nodeGroup = (name: string) =>
  fixtures.nodeGroup(ns, name, {
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

describe('evidence (runbook steps 1, 2, 3, 5 and causes 4, 5)', () => {
  it('checkVPSieNode and listVPSieNodes return snapshots', async () => {
    await vpsieNode('vn-1');
    await fixtures.setStatus(ref('vn-1'), { phase: 'Provisioning', createdAt: '2026-11-24T10:00:00Z' });
    const one = await acts.checkVPSieNode(ref('vn-1'));
    expect(one).toMatchObject({ name: 'vn-1', phase: 'Provisioning', vpsieInstanceID: 4242 });
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
          source: { component: 'vpsie-autoscaler' },
        },
      });
    await ev('e-late', 'vn-events', 'ProvisioningTimeout', '2026-11-24T10:10:00Z');
    await ev('e-early', 'vn-events', 'VPSieAPIError', '2026-11-24T10:01:00Z');
    await ev('e-else', 'vn-someone-else', 'Failed', '2026-11-24T10:05:00Z');

    const events = await acts.listVPSieNodeEvents(ref('vn-events'), vn.metadata.uid);
    expect(events).toEqual([
      {
        type: 'Warning',
        reason: 'VPSieAPIError',
        message: 'VPSieAPIError: quota exceeded',
        count: 2,
        firstSeen: '2026-11-24T10:01:00Z',
        lastSeen: '2026-11-24T10:01:00Z',
        source: 'vpsie-autoscaler',
        involvedObject: { kind: 'VPSieNode', name: 'vn-events', uid: vn.metadata.uid },
      },
      expect.objectContaining({ reason: 'ProvisioningTimeout', lastSeen: '2026-11-24T10:10:00Z' }),
    ]);
    expectHistorySafe(events);
  });

  it('readControllerLogs finds the controller pods and says which could not be read', async () => {
    const deployment = `acts-ctl-${suffix}`;
    const name = `${deployment}-5f6d7c8b9-abcde`;
    cleanup.addKubeSystemPods(name);
    await adminCore.createNamespacedPod({
      namespace: 'kube-system',
      body: {
        metadata: {
          name,
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'ReplicaSet',
              name: `${deployment}-5f6d7c8b9`,
              uid: randomUUID(),
              controller: true,
            },
          ],
        },
        spec: { containers: [{ name: 'manager', image: 'registry.example/vpsie-autoscaler:v1' }] },
      },
    });
    const found = await acts.readControllerLogs(ref('vn-1'), { deployment });
    expect(found).toEqual({
      namespace: 'kube-system',
      deployment,
      pods: [{ pod: name, container: 'manager', lines: [], error: expect.stringMatching(/not scheduled/) }],
    });
    expectHistorySafe(found);
    // no pod at all: the controller is not running, which is evidence too
    const none = await acts.readControllerLogs(ref('vn-1'), { deployment: `absent-${suffix}` });
    expect(none.pods).toEqual([]);
  });

  it('readControllerLogs outside what the role allows fails at once as Kubernetes403', async () => {
    const f = await failure(acts.readControllerLogs(ref('vn-1'), { namespace: ns }));
    expect(f.type).toBe('Kubernetes403');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain('forbidden');
    expect(f.message).not.toContain(process.env.KUBE_TEST_RUNBOOK_TOKEN as string);
  });

  it('checkNodeRegistration finds the Node by vpsienode label, else by name, else null', async () => {
    const vn = `vn-reg-${suffix}`;
    const labelled = `node-${suffix}-labelled`;
    const named = `node-${suffix}-named`;
    cleanup.addNodes(labelled, named);
    await adminCore.createNode({
      body: {
        metadata: {
          name: labelled,
          labels: {
            'autoscaler.vpsie.com/vpsienode': vn,
            'autoscaler.vpsie.com/nodegroup': 'ng-a',
            'kubernetes.io/os': 'linux',
          },
        },
      },
    });
    const created = await adminCore.createNode({ body: { metadata: { name: named } } });
    // the kubelet's report
    await adminCore.replaceNodeStatus({
      name: named,
      body: {
        ...created,
        status: {
          addresses: [{ type: 'InternalIP', address: '10.1.0.7' }],
          conditions: [
            {
              type: 'Ready',
              status: 'False',
              reason: 'KubeletNotReady',
              message: 'container runtime network not ready',
              lastHeartbeatTime: new Date(),
              lastTransitionTime: new Date('2026-11-24T10:04:00Z'),
            },
          ],
          nodeInfo: {
            kubeletVersion: 'v1.30.2',
            architecture: 'amd64',
            bootID: 'b',
            containerRuntimeVersion: 'containerd://1.7',
            kernelVersion: '6.1',
            kubeProxyVersion: '',
            machineID: 'm',
            operatingSystem: 'linux',
            osImage: 'Debian',
            systemUUID: 's',
          },
        },
      },
    });

    const byLabel = await acts.checkNodeRegistration({ namespace: ns, name: vn });
    expect(byLabel).toMatchObject({
      name: labelled,
      labels: { 'autoscaler.vpsie.com/vpsienode': vn, 'autoscaler.vpsie.com/nodegroup': 'ng-a' },
      readyStatus: null,
    });
    const byName = await acts.checkNodeRegistration(
      { namespace: ns, name: `vn-unlabelled-${suffix}` },
      named,
    );
    expect(byName).toEqual({
      name: named,
      uid: created.metadata!.uid,
      labels: {},
      readyStatus: 'False',
      readyReason: 'KubeletNotReady',
      readySince: '2026-11-24T10:04:00Z',
      kubeletVersion: 'v1.30.2',
      internalIP: '10.1.0.7',
      creationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expectHistorySafe(byName);
    expect(
      await acts.checkNodeRegistration({ namespace: ns, name: `vn-never-${suffix}` }, `node-${suffix}-never`),
    ).toBeNull();
    // a VPSieNode name too long to be a label value is looked up by node name only, not refused with 400
    expect(await acts.checkNodeRegistration({ namespace: ns, name: `vn-${'x'.repeat(70)}` })).toBeNull();
  });

  it('getNodeGroup and getClusterVersion', async () => {
    await nodeGroup('ng-read');
    const ng = await acts.getNodeGroup({ namespace: ns, name: 'ng-read' });
    expect(ng).toMatchObject({
      name: 'ng-read',
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1'],
      minNodes: 1,
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
  });

  it('leaves a same-named replacement alone and fails as non-retryable Kubernetes409', async () => {
    const diagnosed = await vpsieNode('swapped');
    await adminCustom.deleteNamespacedCustomObject({ ...crd('vpsienodes', ns), name: 'swapped' });
    const replacement = await vpsieNode('swapped');
    const f = await failure(acts.deleteVPSieNode(ref('swapped'), { uid: diagnosed.metadata.uid }));
    expect(f.type).toBe('Kubernetes409');
    expect(f.nonRetryable).toBe(true);
    const still = await adminGet('vpsienodes', 'swapped');
    expect(still?.metadata.uid).toBe(replacement.metadata.uid);
    expect(still?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('reports the controller finalizer still holding a marked VPSieNode; a retry stays success', async () => {
    const vn = await vpsieNode('held', { finalizers: [VPSIENODE_FINALIZER] });
    const precondition = { uid: vn.metadata.uid, resourceVersion: vn.metadata.resourceVersion };
    expect(await acts.deleteVPSieNode(ref('held'), precondition)).toEqual({
      outcome: 'deleted',
      pendingFinalizers: [VPSIENODE_FINALIZER],
    });
    const marked = await adminGet('vpsienodes', 'held');
    expect(marked?.metadata.deletionTimestamp).toEqual(expect.any(String));
    // Temporal retries the same arguments: the mark moved the resourceVersion, the object is the same one
    expect(await acts.deleteVPSieNode(ref('held'), precondition)).toEqual({
      outcome: 'already-deleting',
      pendingFinalizers: [VPSIENODE_FINALIZER],
    });
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

  it('a stale resourceVersion on a VPSieNode that is not being deleted fails as Kubernetes409', async () => {
    const vn = await vpsieNode('moved');
    await fixtures.setStatus(ref('moved'), { phase: 'Failed' });
    const f = await failure(
      acts.deleteVPSieNode(ref('moved'), {
        uid: vn.metadata.uid,
        resourceVersion: vn.metadata.resourceVersion,
      }),
    );
    expect(f.type).toBe('Kubernetes409');
    expect(await adminGet('vpsienodes', 'moved')).not.toBeNull();
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

  it('setNodeGroupKubernetesVersion updates; a retry with the same expectation is already-set', async () => {
    const ng = await nodeGroup('ng-version');
    const ngRef = { namespace: ns, name: 'ng-version' };
    const rv = ng.metadata.resourceVersion;
    const done = await acts.setNodeGroupKubernetesVersion(ngRef, 'v1.34.4', rv);
    expect(done.outcome).toBe('updated');
    expect(done.nodeGroup).toMatchObject({ kubernetesVersion: 'v1.34.4', sshKeyIDs: ['k-1'] });
    expectHistorySafe(done);
    const retried = await acts.setNodeGroupKubernetesVersion(ngRef, 'v1.34.4', rv);
    expect(retried.outcome).toBe('already-set');
    expect(
      ((await adminGet('nodegroups', 'ng-version'))?.spec as Record<string, unknown>).kubernetesVersion,
    ).toBe('v1.34.4');
  });

  it('setNodeGroupKubernetesVersion on a NodeGroup changed since it was read fails as Kubernetes409', async () => {
    const ng = await nodeGroup('ng-raced');
    await adminCustom.patchNamespacedCustomObject({
      ...crd('nodegroups', ns),
      name: 'ng-raced',
      body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.33.1' }],
    });
    const f = await failure(
      acts.setNodeGroupKubernetesVersion(
        { namespace: ns, name: 'ng-raced' },
        'v1.34.4',
        ng.metadata.resourceVersion,
      ),
    );
    expect(f).toMatchObject({ type: 'Kubernetes409', nonRetryable: true });
    expect(
      ((await adminGet('nodegroups', 'ng-raced'))?.spec as Record<string, unknown>).kubernetesVersion,
    ).toBe('v1.33.1');
    const invalid = await failure(
      acts.setNodeGroupKubernetesVersion({ namespace: ns, name: 'ng-raced' }, '1.34'),
    );
    expect(invalid).toMatchObject({ type: 'Kubernetes422', nonRetryable: true });
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
