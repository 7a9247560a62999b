/**
 * The Kubernetes client against the real kube-apiserver of the test run, acting as the restricted identity
 * `vpsie-runbook` (deploy/kubernetes/role.yaml only). Fixtures are made as admin, playing the controller's part.
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

  it('deletes after the controller rewrote status since the UID was read: the UID is the only precondition', async () => {
    const vn = await createVPSieNode('rv-moved');
    const rewritten = await fixtures.setStatus({ namespace: ns, name: 'rv-moved' }, { phase: 'Failed' });
    expect(rewritten.metadata.resourceVersion).not.toBe(vn.metadata.resourceVersion);
    expect(await kube.deleteVPSieNode({ namespace: ns, name: 'rv-moved' }, { uid: vn.metadata.uid })).toBe(
      'deleted',
    );
    expect(await adminGet('vpsienodes', 'rv-moved')).toBeNull();
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
  const app = `ctl-${suffix}`;
  const selector = { namespace: 'kube-system', labelSelector: `app=${app}` };

  async function pod(
    name: string,
    labels: Record<string, string>,
    containers = ['controller'],
    nodeName?: string,
  ): Promise<V1Pod> {
    cleanup.addKubeSystemPods(name);
    return adminCore.createNamespacedPod({
      namespace: 'kube-system',
      body: {
        metadata: { name, labels },
        spec: {
          nodeName,
          containers: containers.map((c) => ({
            name: c,
            image: 'ghcr.io/vpsieinc/vpsie-k8s-autoscaler:0.7.8',
          })),
        },
      },
    });
  }

  it('finds the pods by label selector, whatever their Deployment or ReplicaSet is called', async () => {
    // the kustomize install (vpsie-autoscaler-controller) and a Helm release name, side by side
    const kustomize = `vpsie-autoscaler-controller-7d9f8c6b5-${suffix}`;
    const running = await pod(kustomize, { app, component: 'controller' });
    await pod(`prod-release-5c4b3a2-${suffix}`, { app });
    // look-alikes by name that are not the controller's pods
    await pod(`${app}-webhook-${suffix}`, { app: `${app}-webhook` });
    await pod(`vpsie-autoscaler-${suffix}`, { other: app });
    await adminCore.replaceNamespacedPodStatus({
      namespace: 'kube-system',
      name: running.metadata!.name!,
      body: { ...running, status: { phase: 'Running' } },
    });

    const names = (await kube.controllerPods(selector)).map((p) => p.metadata?.name);
    expect(names).toEqual([kustomize, `prod-release-5c4b3a2-${suffix}`]); // the running one first
    const narrower = await kube.controllerPods({
      ...selector,
      labelSelector: `app=${app},component=controller`,
    });
    expect(narrower.map((p) => p.metadata?.name)).toEqual([
      `vpsie-autoscaler-controller-7d9f8c6b5-${suffix}`,
    ]);
    expect(await kube.controllerPods({ ...selector, labelSelector: `app=absent-${suffix}` })).toEqual([]);
  });

  it('reads the named container, else the first; a pod whose log cannot be read says why', async () => {
    const lonely = `solo-${suffix}`;
    await pod(`${lonely}-a`, { app: lonely }, ['sidecar', 'controller']);
    const placed = await pod(`${lonely}-b`, { app: lonely }, ['vpsie-autoscaler'], `gone-${suffix}`);
    const logs = await kube.controllerLogs({
      namespace: 'kube-system',
      labelSelector: `app=${lonely}`,
      container: 'controller',
      filter: /provision/i,
    });
    expect([...logs].sort((a, b) => a.pod.localeCompare(b.pod))).toEqual([
      {
        pod: `${lonely}-a`,
        container: 'controller', // the named one, not the first
        lines: [],
        error: expect.stringMatching(/not scheduled/),
      },
      {
        pod: placed.metadata!.name,
        container: 'vpsie-autoscaler', // no container by that name (a Helm release): the first
        lines: [],
        error: expect.stringMatching(/HTTP 404/), // its node is gone
      },
    ]);
  });

  it('may not list pods outside kube-system: 403', async () => {
    const err = await rejection(kube.controllerPods({ ...selector, namespace: ns }));
    expect(err.status).toBe(403);
    expect(err.permanent).toBe(true);
    expect(err.message).not.toContain(process.env.KUBE_TEST_RUNBOOK_TOKEN as string);
    await expect(
      kube.controllerLogs({ ...selector, namespace: ns, container: 'controller' }),
    ).rejects.toMatchObject({ status: 403 });
  });

  it('an invalid label selector is a permanent 400', async () => {
    const err = await rejection(kube.controllerPods({ ...selector, labelSelector: 'app in (' }));
    expect(err.status).toBe(400);
    expect(err.permanent).toBe(true);
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

  it('sets spec.kubernetesVersion from the diagnosed value, keeping the rest of the spec', async () => {
    const ng = await createNodeGroup('ng-version');
    const ref = { namespace: ns, name: 'ng-version' };
    // the controller's status writes do not matter: only the field (and the UID) is tested
    await fixtures.setStatus(ref, { currentNodes: 1, desiredNodes: 2, readyNodes: 0 }, 'nodegroups');
    const patched = (await kube.setNodeGroupKubernetesVersion(ref, {
      from: 'v1.30.2',
      to: 'v1.34.4',
      uid: ng.metadata.uid,
    })) as KubeObject;
    expect(patched.metadata.resourceVersion).not.toBe(ng.metadata.resourceVersion);
    const read = (await adminGet('nodegroups', 'ng-version')) as KubeObject;
    expect(read.spec).toMatchObject({ kubernetesVersion: 'v1.34.4', sshKeyIDs: ['k-1', 'k-2'], minNodes: 1 });
    expect(read.metadata.annotations).toEqual({ owner: 'team-a' });
  });

  it('refuses (422) when the version is no longer the diagnosed one, or the UID another, and changes nothing', async () => {
    const ng = await createNodeGroup('ng-stale');
    const ref = { namespace: ns, name: 'ng-stale' };
    // someone else changes the NodeGroup after it was read
    await adminCustom.patchNamespacedCustomObject({
      ...crd('nodegroups', ns),
      name: ref.name,
      body: [{ op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.33.0' }],
    });
    const changed = { from: 'v1.30.2', to: 'v1.34.4' };
    const err = await rejection(kube.setNodeGroupKubernetesVersion(ref, changed));
    expect(err.status).toBe(422);
    expect(err.permanent).toBe(true);
    const replaced = { from: 'v1.33.0', to: 'v1.34.4', uid: 'another-uid' };
    expect((await rejection(kube.setNodeGroupKubernetesVersion(ref, replaced))).status).toBe(422);
    const after = (await adminGet('nodegroups', ref.name)) as KubeObject;
    expect(after.spec).toMatchObject({ kubernetesVersion: 'v1.33.0' });
    expect(after.metadata.uid).toBe(ng.metadata.uid);
  });

  it('gets 422 for a version the CRD does not accept, and 404 for a missing NodeGroup', async () => {
    await createNodeGroup('ng-invalid');
    const invalid = await rejection(
      kube.setNodeGroupKubernetesVersion(
        { namespace: ns, name: 'ng-invalid' },
        { from: 'v1.30.2', to: '1.34' },
      ),
    );
    expect(invalid.status).toBe(422);
    expect(invalid.message).toContain('should match');
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
