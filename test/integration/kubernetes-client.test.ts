/**
 * The Kubernetes client against the real kube-apiserver of the test run, acting as the restricted identity
 * `vpsie-runbook` (deploy/rbac's role only). Fixtures are made as admin, playing the controller's part.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import {
  AUTOSCALER_GROUP,
  AUTOSCALER_VERSION,
  KubernetesApiError,
  KubernetesClient,
} from '../../src/clients/kubernetes';
import { VPSIENODE_FINALIZER, toEventSummary, type VPSieNodeRef } from '../../src/runbook';
import { kubeApiserverVersion } from '../support/control-plane';
import { rejectsWith } from '../support/expect-rejection';
import {
  ClusterCleanup,
  createTestNamespace,
  crd,
  kubeConfigFor,
  type KubeObject,
  VPSieNodeFixtures,
} from '../support/kube';

const adminCustom = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);
const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
const kube = new KubernetesClient(kubeConfigFor('runbook'));
const fixtures = new VPSieNodeFixtures();
const cleanup = new ClusterCleanup();
const suffix = randomUUID().slice(0, 6);

let ns: string;

beforeAll(async () => {
  ns = await createTestNamespace('kclient');
});

afterAll(() => cleanup.deleteAll());

const createVPSieNode = (name: string, metadata: Record<string, unknown> = {}) =>
  fixtures.vpsieNode(ns, name, {
    metadata,
    spec: { vpsieInstanceID: 0, nodeGroupName: 'ng-a', kubernetesVersion: 'v1.30.2' },
  });

const createNodeGroup = (name: string) =>
  fixtures.nodeGroup(ns, name, {
    metadata: { annotations: { owner: 'team-a' } },
    spec: {
      minNodes: 1,
      maxNodes: 3,
      datacenterID: 'dc-1',
      offeringIDs: ['o-1'],
      osImageID: 'img-1',
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['k-1', 'k-2'],
    },
  });

const adminGet = (plural: string, name: string) => fixtures.get(plural, ns, name);

const rejection = (p: Promise<unknown>) => rejectsWith(p, KubernetesApiError);

describe('VPSieNodes (runbook step 1)', () => {
  it('lists VPSieNodes in all namespaces, in one, and by label', async () => {
    await createVPSieNode('list-a', { labels: { 'autoscaler.vpsie.com/nodegroup': 'ng-list' } });
    await createVPSieNode('list-b');
    const names = (items: unknown[]) =>
      items.map((i) => `${(i as KubeObject).metadata.namespace}/${(i as KubeObject).metadata.name}`);
    expect(names(await kube.listVPSieNodes())).toEqual(
      expect.arrayContaining([`${ns}/list-a`, `${ns}/list-b`]),
    );
    const inNs = names(await kube.listVPSieNodes(ns));
    expect(inNs).toEqual(expect.arrayContaining([`${ns}/list-a`, `${ns}/list-b`]));
    expect(inNs.every((n) => n.startsWith(`${ns}/`))).toBe(true);
    expect(names(await kube.listVPSieNodes(ns, 'autoscaler.vpsie.com/nodegroup=ng-list'))).toEqual([
      `${ns}/list-a`,
    ]);
  });

  it('reads one VPSieNode, and null for one that does not exist', async () => {
    const made = await createVPSieNode('get-one');
    const read = (await kube.getVPSieNode({ namespace: ns, name: 'get-one' })) as KubeObject;
    expect(read.metadata.uid).toBe(made.metadata.uid);
    expect(await kube.getVPSieNode({ namespace: ns, name: 'never-existed' })).toBeNull();
  });
});

describe('deleteVPSieNode (Delete and Recreate)', () => {
  it('deletes, then says already-gone on a repeat', async () => {
    const vn = await createVPSieNode('del-twice');
    const ref = { namespace: ns, name: 'del-twice' };
    expect(await kube.deleteVPSieNode(ref, { uid: vn.metadata.uid })).toBe('deleted');
    expect(await adminGet('vpsienodes', 'del-twice')).toBeNull();
    expect(await kube.deleteVPSieNode(ref, { uid: vn.metadata.uid })).toBe('already-gone');
  });

  it('refuses with 409 to delete a same-named replacement, which stays untouched', async () => {
    const ref = { namespace: ns, name: 'replaced' };
    const diagnosed = await createVPSieNode(ref.name);
    // between diagnosis and action, the NodeGroup controller replaced it under the same name
    await adminCustom.deleteNamespacedCustomObject({ ...crd('vpsienodes', ns), name: ref.name });
    const replacement = await createVPSieNode(ref.name);
    expect(replacement.metadata.uid).not.toBe(diagnosed.metadata.uid);

    const err = await rejection(kube.deleteVPSieNode(ref, { uid: diagnosed.metadata.uid }));
    expect(err.status).toBe(409);
    expect(err.permanent).toBe(true);
    expect(err.message).toContain(diagnosed.metadata.uid);
    const still = await adminGet('vpsienodes', ref.name);
    expect(still?.metadata.uid).toBe(replacement.metadata.uid);
    expect(still?.metadata.deletionTimestamp).toBeUndefined();
  });

  it('refuses with 409 when the resourceVersion precondition is stale', async () => {
    const vn = await createVPSieNode('rv-moved');
    await adminCustom.patchNamespacedCustomObjectStatus({
      ...crd('vpsienodes', ns),
      name: 'rv-moved',
      body: [{ op: 'add', path: '/status', value: { phase: 'Failed' } }],
    });
    const err = await rejection(
      kube.deleteVPSieNode(
        { namespace: ns, name: 'rv-moved' },
        { uid: vn.metadata.uid, resourceVersion: vn.metadata.resourceVersion },
      ),
    );
    expect(err.status).toBe(409);
    expect(await adminGet('vpsienodes', 'rv-moved')).not.toBeNull();
  });

  it('only marks a VPSieNode that carries the controller finalizer', async () => {
    const ref = { namespace: ns, name: 'finalized' };
    const vn = await createVPSieNode(ref.name, { finalizers: [VPSIENODE_FINALIZER] });
    expect(await kube.deleteVPSieNode(ref, { uid: vn.metadata.uid })).toBe('deleted');
    const marked = await adminGet('vpsienodes', ref.name);
    expect(marked?.metadata.uid).toBe(vn.metadata.uid);
    expect(marked?.metadata.deletionTimestamp).toEqual(expect.any(String));
    expect(marked?.metadata.finalizers).toEqual([VPSIENODE_FINALIZER]);
    // a retried delete of the marked object is accepted again
    expect(await kube.deleteVPSieNode(ref, { uid: vn.metadata.uid })).toBe('deleted');
    // the controller terminates the VM and lets go: then it is gone
    await adminCustom.patchNamespacedCustomObject({
      ...crd('vpsienodes', ns),
      name: ref.name,
      body: [{ op: 'remove', path: '/metadata/finalizers' }],
    });
    expect(await adminGet('vpsienodes', ref.name)).toBeNull();
    expect(await kube.deleteVPSieNode(ref, { uid: vn.metadata.uid })).toBe('already-gone');
  });

  it('will not delete without a UID to check', async () => {
    await createVPSieNode('no-uid');
    await expect(kube.deleteVPSieNode({ namespace: ns, name: 'no-uid' }, { uid: '' })).rejects.toThrow(/UID/);
    expect(await adminGet('vpsienodes', 'no-uid')).not.toBeNull();
  });
});

describe('listEventsFor (runbook step 2)', () => {
  async function event(name: string, involved: Record<string, string>, reason: string, last: string) {
    await adminCore.createNamespacedEvent({
      namespace: ns,
      body: {
        metadata: { name, namespace: ns },
        involvedObject: {
          apiVersion: `${AUTOSCALER_GROUP}/${AUTOSCALER_VERSION}`,
          namespace: ns,
          ...involved,
        },
        reason,
        message: `${reason} for ${involved.name}`,
        type: reason === 'Provisioning' ? 'Normal' : 'Warning',
        count: 1,
        firstTimestamp: new Date(last),
        lastTimestamp: new Date(last),
        source: { component: 'vpsie-autoscaler' },
      },
    });
  }

  it("returns only this VPSieNode's events, oldest first", async () => {
    const target: VPSieNodeRef = { namespace: ns, name: 'ev-target' };
    const vn = await createVPSieNode(target.name);
    const uid = vn.metadata.uid;
    // created out of order, so the order must come from the timestamps
    await event(
      'ev-2',
      { kind: 'VPSieNode', name: target.name, uid },
      'ProvisioningTimeout',
      '2026-11-24T10:10:00Z',
    );
    await event(
      'ev-1',
      { kind: 'VPSieNode', name: target.name, uid },
      'Provisioning',
      '2026-11-24T10:00:00Z',
    );
    await event(
      'ev-other',
      { kind: 'VPSieNode', name: 'ev-other-node', uid: 'x' },
      'Failed',
      '2026-11-24T10:05:00Z',
    );
    await event(
      'ev-pod',
      { kind: 'Pod', name: target.name, uid: 'y', apiVersion: 'v1' },
      'Failed',
      '2026-11-24T10:06:00Z',
    );
    await event(
      'ev-old',
      { kind: 'VPSieNode', name: target.name, uid: 'old-uid' },
      'VPSieAPIError',
      '2026-11-24T09:00:00Z',
    );

    const all = (await kube.listEventsFor(target)).map(toEventSummary);
    expect(all.map((e) => e.reason)).toEqual(['VPSieAPIError', 'Provisioning', 'ProvisioningTimeout']);
    const mine = (await kube.listEventsFor(target, 'VPSieNode', uid)).map(toEventSummary);
    expect(mine.map((e) => [e.reason, e.lastSeen])).toEqual([
      ['Provisioning', '2026-11-24T10:00:00Z'],
      ['ProvisioningTimeout', '2026-11-24T10:10:00Z'],
    ]);
    expect(await kube.listEventsFor({ namespace: ns, name: 'no-events' })).toEqual([]);
  });
});

describe('controller pods (runbook step 3)', () => {
  const deployment = `ctl-${suffix}`;
  const rs = `${deployment}-7d9f8c6b5`;

  async function pod(
    name: string,
    owner?: { kind: string; name: string },
    containers = ['manager'],
    nodeName?: string,
  ): Promise<V1Pod> {
    cleanup.addKubeSystemPods(name);
    return adminCore.createNamespacedPod({
      namespace: 'kube-system',
      body: {
        metadata: {
          name,
          ...(owner
            ? {
                ownerReferences: [
                  {
                    apiVersion: 'apps/v1',
                    kind: owner.kind,
                    name: owner.name,
                    uid: randomUUID(),
                    controller: true,
                  },
                ],
              }
            : {}),
        },
        spec: {
          nodeName,
          containers: containers.map((c) => ({ name: c, image: 'registry.example/vpsie-autoscaler:v1' })),
        },
      },
    });
  }

  it("finds the deployment's pods through their ReplicaSet, without reading the Deployment", async () => {
    await pod(`${rs}-aaaaa`, { kind: 'ReplicaSet', name: rs });
    const running = await pod(`${rs}-bbbbb`, { kind: 'ReplicaSet', name: rs });
    await pod(`${deployment}-5c4b3a2-ccccc`); // no owner: its name says it is one
    // look-alikes that are not the controller
    await pod(`${deployment}-webhook-6f5d4c3b2-ddddd`, {
      kind: 'ReplicaSet',
      name: `${deployment}-webhook-6f5d4c3b2`,
    });
    await pod(`${deployment}-0`, { kind: 'StatefulSet', name: deployment });
    await pod(`${deployment}-debug`);
    await adminCore.replaceNamespacedPodStatus({
      namespace: 'kube-system',
      name: running.metadata!.name!,
      body: { ...running, status: { phase: 'Running' } },
    });

    const pods = await kube.controllerPods({ deployment });
    const names = pods.map((p) => p.metadata?.name);
    expect(names[0]).toBe(`${rs}-bbbbb`); // the running one first
    expect([...names].sort()).toEqual([`${deployment}-5c4b3a2-ccccc`, `${rs}-aaaaa`, `${rs}-bbbbb`]);
    expect(await kube.controllerPods({ deployment: `absent-${suffix}` })).toEqual([]);
  });

  it('reports a pod whose log cannot be read yet instead of failing the whole read', async () => {
    const lonely = `solo-${suffix}`;
    const replicaSet = { kind: 'ReplicaSet', name: `${lonely}-6b5c4d3e2` };
    await pod(`${lonely}-6b5c4d3e2-eeeee`, replicaSet, ['sidecar', lonely]);
    const placed = await pod(`${lonely}-6b5c4d3e2-fffff`, replicaSet, [lonely], `gone-${suffix}`);
    const logs = await kube.controllerLogs({ deployment: lonely, filter: /provision/i });
    expect([...logs].sort((a, b) => a.pod.localeCompare(b.pod))).toEqual([
      {
        pod: `${lonely}-6b5c4d3e2-eeeee`,
        container: lonely, // the container named like the deployment, not the first one
        lines: [],
        error: expect.stringMatching(/not scheduled/),
      },
      {
        pod: placed.metadata!.name,
        container: lonely,
        lines: [],
        error: expect.stringMatching(/HTTP 404/), // its node is gone
      },
    ]);
  });

  it('may not list pods outside kube-system: 403', async () => {
    const err = await rejection(kube.controllerPods({ namespace: ns, deployment }));
    expect(err.status).toBe(403);
    expect(err.permanent).toBe(true);
    expect(err.message).not.toContain(process.env.KUBE_TEST_RUNBOOK_TOKEN as string);
    await expect(kube.controllerLogs({ namespace: ns })).rejects.toMatchObject({ status: 403 });
  });
});

describe('Nodes (runbook step 5)', () => {
  it('finds a registered Node by the vpsienode label and by name, null when absent', async () => {
    const name = `node-${suffix}-a`;
    cleanup.addNodes(name, `node-${suffix}-b`);
    await adminCore.createNode({
      body: {
        metadata: {
          name,
          labels: {
            'autoscaler.vpsie.com/vpsienode': `vn-${suffix}`,
            'autoscaler.vpsie.com/nodegroup': 'ng-a',
          },
        },
      },
    });
    await adminCore.createNode({ body: { metadata: { name: `node-${suffix}-b` } } });

    const labelled = await kube.listNodes(`autoscaler.vpsie.com/vpsienode=vn-${suffix}`);
    expect(labelled.map((n) => n.metadata?.name)).toEqual([name]);
    expect((await kube.listNodes()).map((n) => n.metadata?.name)).toEqual(
      expect.arrayContaining([name, `node-${suffix}-b`]),
    );
    expect((await kube.getNode(name))?.metadata?.labels).toMatchObject({
      'autoscaler.vpsie.com/nodegroup': 'ng-a',
    });
    expect(await kube.getNode(`node-${suffix}-never`)).toBeNull();
  });
});

describe('NodeGroups (causes 4 and 5, Force NodeGroup Reconciliation)', () => {
  it('reads a NodeGroup, null when absent', async () => {
    const made = await createNodeGroup('ng-read');
    expect(((await kube.getNodeGroup({ namespace: ns, name: 'ng-read' })) as KubeObject).metadata.uid).toBe(
      made.metadata.uid,
    );
    expect(await kube.getNodeGroup({ namespace: ns, name: 'ng-absent' })).toBeNull();
  });

  it('annotates reconcile-trigger as a merge: other annotations stay', async () => {
    await createNodeGroup('ng-annotate');
    const ref = { namespace: ns, name: 'ng-annotate' };
    await kube.annotateNodeGroup(ref, 'reconcile-trigger', '1795000000');
    await kube.annotateNodeGroup(ref, 'reconcile-trigger', '1795000060'); // --overwrite
    const read = (await adminGet('nodegroups', 'ng-annotate')) as KubeObject;
    expect(read.metadata.annotations).toEqual({ owner: 'team-a', 'reconcile-trigger': '1795000060' });
    expect(read.spec).toMatchObject({ kubernetesVersion: 'v1.30.2', sshKeyIDs: ['k-1', 'k-2'] });
  });

  it('sets spec.kubernetesVersion, keeping the rest of the spec', async () => {
    const ng = await createNodeGroup('ng-version');
    const ref = { namespace: ns, name: 'ng-version' };
    const patched = (await kube.setNodeGroupKubernetesVersion(
      ref,
      'v1.34.4',
      ng.metadata.resourceVersion,
    )) as KubeObject;
    expect(patched.metadata.resourceVersion).not.toBe(ng.metadata.resourceVersion);
    const read = (await adminGet('nodegroups', 'ng-version')) as KubeObject;
    expect(read.spec).toMatchObject({ kubernetesVersion: 'v1.34.4', sshKeyIDs: ['k-1', 'k-2'], minNodes: 1 });
  });

  it('refuses a version patch on a stale resourceVersion with 409, leaving the NodeGroup as it was', async () => {
    const ng = await createNodeGroup('ng-stale');
    const ref = { namespace: ns, name: 'ng-stale' };
    // someone else changes the NodeGroup after it was read
    await adminCustom.patchNamespacedCustomObject({
      ...crd('nodegroups', ns),
      name: ref.name,
      body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.33.0' }],
    });
    const err = await rejection(
      kube.setNodeGroupKubernetesVersion(ref, 'v1.34.4', ng.metadata.resourceVersion),
    );
    expect(err.status).toBe(409);
    expect(err.permanent).toBe(true);
    expect(((await adminGet('nodegroups', ref.name)) as KubeObject).spec).toMatchObject({
      kubernetesVersion: 'v1.33.0',
    });
  });

  it('gets 422 for a version the CRD does not accept, and 404 for a missing NodeGroup', async () => {
    await createNodeGroup('ng-invalid');
    const invalid = await rejection(
      kube.setNodeGroupKubernetesVersion({ namespace: ns, name: 'ng-invalid' }, '1.34'),
    );
    expect(invalid.status).toBe(422);
    const missing = await rejection(kube.annotateNodeGroup({ namespace: ns, name: 'ng-absent' }, 'a', 'b'));
    expect(missing.status).toBe(404);
  });

  it('may not delete a NodeGroup: the role allows patch only', async () => {
    await createNodeGroup('ng-keep');
    const raw = kubeConfigFor('runbook').makeApiClient(CustomObjectsApi);
    await expect(
      raw.deleteNamespacedCustomObject({ ...crd('nodegroups', ns), name: 'ng-keep' }),
    ).rejects.toMatchObject({ code: 403 });
    expect(await adminGet('nodegroups', 'ng-keep')).not.toBeNull();
  });
});

describe('serverVersion (cause 4, kubectl version)', () => {
  it('is the version of the kube-apiserver the harness built', async () => {
    const v = await kube.serverVersion();
    const built = kubeApiserverVersion(); // e.g. v1.34.4
    expect(v.gitVersion).toBe(built);
    expect(`v${v.major}.${v.minor}`).toBe(built.split('.').slice(0, 2).join('.'));
  });
});
