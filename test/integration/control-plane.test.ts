/**
 * The real test control plane (etcd + kube-apiserver) serves the project's CRDs, and the restricted identity
 * `vpsie-runbook` holds exactly the least-privilege role of deploy/kubernetes/role.yaml.
 *
 * Uses the control plane described by KUBE_TEST_SERVER / KUBE_TEST_ADMIN_TOKEN / KUBE_TEST_RUNBOOK_TOKEN /
 * KUBE_TEST_CA_DATA when they are set (Jest global setup), and starts its own otherwise.
 */
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import {
  controlPlaneFromEnv,
  kubeconfigYaml,
  kubeRequest,
  objectPath,
  RUNBOOK_NAMESPACE,
  RUNBOOK_USER,
  startControlPlane,
} from '../support/control-plane';
import type { ControlPlane, KubeObject, KubeRequestOptions, KubeResponse } from '../support/control-plane';

jest.setTimeout(120_000);

const GROUP = 'autoscaler.vpsie.com';
const VERSION = 'v1alpha1';
const GV = `/apis/${GROUP}/${VERSION}`;
const NS = `cp-test-${Date.now().toString(36)}-${process.pid}`;
const NG = `${NS}-ng`;
const MERGE = 'application/merge-patch+json';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

let cp: ControlPlane;

const admin = (method: string, p: string, opts?: KubeRequestOptions) =>
  kubeRequest(cp, cp.adminToken, method, p, opts);
const runbook = (method: string, p: string, opts?: KubeRequestOptions) =>
  kubeRequest(cp, cp.runbookToken, method, p, opts);

function expectStatus(res: KubeResponse, status: number): void {
  // the body in the message makes a failure readable
  expect({ status: res.status, body: res.status === status ? '' : res.text }).toEqual({ status, body: '' });
}

const collection = (obj: KubeObject) => objectPath(obj).replace(/\/[^/]+$/, '');

async function create(obj: KubeObject): Promise<KubeObject> {
  const res = await admin('POST', collection(obj), { body: obj });
  expectStatus(res, 201);
  return res.json as KubeObject;
}

function vpsieNode(name: string, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'VPSieNode',
    metadata: { name, namespace: NS, labels: { 'autoscaler.vpsie.com/nodegroup': NG } },
    spec: {
      vpsieInstanceID: 4242,
      instanceType: 'offering-1',
      nodeGroupName: NG,
      datacenterID: 'dc-1',
      resourceIdentifier: 'cluster-1',
      project: 'project-1',
      osImageID: 'image-1',
      kubernetesVersion: 'v1.30.2',
      sshKeyIDs: ['key-1', 'key-2'],
      vpsieGroupID: 7,
    },
    ...extra,
  };
}

const nodeGroup = (name: string): KubeObject => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: 'NodeGroup',
  metadata: { name, namespace: NS },
  spec: {
    minNodes: 1,
    maxNodes: 3,
    datacenterID: 'dc-1',
    resourceIdentifier: 'cluster-1',
    project: 'project-1',
    offeringIDs: ['offering-1'],
    osImageID: 'image-1',
    kubernetesVersion: 'v1.30.2',
    labels: { pool: 'a' },
    taints: [{ key: 'dedicated', value: 'a', effect: 'NoSchedule' }],
    scaleUpPolicy: { enabled: true, cpuThreshold: 80 },
  },
});

async function setStatus(obj: KubeObject, status: Record<string, unknown>): Promise<KubeObject> {
  const res = await admin('PATCH', `${objectPath(obj)}/status`, { body: { status }, contentType: MERGE });
  expectStatus(res, 200);
  return res.json as KubeObject;
}

async function accessReview(token: string, attrs: Record<string, string>): Promise<boolean> {
  const res = await kubeRequest(cp, token, 'POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', {
    body: {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: attrs },
    },
  });
  expectStatus(res, 201);
  return res.json.status.allowed === true;
}

beforeAll(async () => {
  const started = Date.now();
  cp =
    controlPlaneFromEnv() ??
    (await startControlPlane({ log: (line) => process.stderr.write(`[control-plane] ${line}\n`) }));
  process.stderr.write(`[control-plane] usable after ${Date.now() - started} ms\n`);
  await create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
});

/** The control plane may be shared with other suites (Jest global setup): leave nothing of ours behind. */
async function removeFixtures(): Promise<void> {
  for (const plural of ['vpsienodes', 'nodegroups']) {
    const list = await admin('GET', `${GV}/namespaces/${NS}/${plural}`);
    for (const item of (list.json?.items ?? []) as KubeObject[]) {
      if ((item.metadata.finalizers as string[] | undefined)?.length) {
        const patch = { body: { metadata: { finalizers: null } }, contentType: MERGE };
        await admin('PATCH', objectPath(item), patch);
      }
    }
    await admin('DELETE', `${GV}/namespaces/${NS}/${plural}`);
  }
  await admin('DELETE', `/api/v1/nodes/${NS}-node`);
  // without a namespace controller the namespace stays Terminating, but it is empty
  await admin('DELETE', `/api/v1/namespaces/${NS}`);
}

afterAll(async () => {
  if (!cp) return;
  try {
    await removeFixtures();
  } finally {
    await cp.stop();
  }
});

describe('CRDs', () => {
  it('serves VPSieNode and NodeGroup, namespaced, with short names and a status subresource', async () => {
    const res = await admin('GET', GV);
    expectStatus(res, 200);
    const resources = res.json.resources as { name: string; [k: string]: unknown }[];
    const byName = new Map(resources.map((r) => [r.name, r]));
    expect(byName.get('vpsienodes')).toMatchObject({
      kind: 'VPSieNode',
      namespaced: true,
      shortNames: ['vn', 'vns'],
      singularName: 'vpsienode',
    });
    expect(byName.get('nodegroups')).toMatchObject({
      kind: 'NodeGroup',
      namespaced: true,
      shortNames: ['ng', 'ngs'],
      singularName: 'nodegroup',
    });
    expect(byName.has('vpsienodes/status')).toBe(true);
    expect(byName.has('nodegroups/status')).toBe(true);
  });

  it('prints the columns the controller prints', async () => {
    const vn = await create(vpsieNode('printed'));
    await setStatus(vn, { phase: 'Failed', nodeName: 'node-printed', lastError: 'ProvisioningTimeout' });
    const vnTable = await admin('GET', `${GV}/namespaces/${NS}/vpsienodes`, { accept: TABLE });
    expectStatus(vnTable, 200);
    expect(vnTable.json.kind).toBe('Table');
    const vnCols = (vnTable.json.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(vnCols).toEqual(['Name', 'VPS ID', 'Node', 'Phase', 'Instance Type', 'NodeGroup', 'Age']);
    const row = (vnTable.json.rows as { cells: unknown[] }[]).find((r) => r.cells[0] === 'printed');
    expect(row?.cells.slice(0, 6)).toEqual(['printed', 4242, 'node-printed', 'Failed', 'offering-1', NG]);

    const ng = await create(nodeGroup(NG));
    await setStatus(ng, { currentNodes: 2, desiredNodes: 3, readyNodes: 1 });
    const ngTable = await admin('GET', `${GV}/namespaces/${NS}/nodegroups`, { accept: TABLE });
    expectStatus(ngTable, 200);
    const ngCols = (ngTable.json.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(ngCols).toEqual(['Name', 'Min', 'Max', 'Desired', 'Current', 'Ready', 'Age']);
    const ngRow = (ngTable.json.rows as { cells: unknown[] }[]).find((r) => r.cells[0] === NG);
    expect(ngRow?.cells.slice(0, 6)).toEqual([NG, 1, 3, 3, 2, 1]);
  });

  it('keeps status behind the status subresource', async () => {
    // status sent on create and on a main-resource patch is ignored; only /status writes it
    const created = await create(vpsieNode('status-sub', { status: { phase: 'Ready' } }));
    expect(created.status).toBeUndefined();
    const mainPatch = await admin('PATCH', objectPath(created), {
      body: { status: { phase: 'Ready' } },
      contentType: MERGE,
    });
    expectStatus(mainPatch, 200);
    expect(mainPatch.json.status).toBeUndefined();
    const withStatus = await setStatus(created, {
      phase: 'Provisioning',
      createdAt: '2025-01-01T00:00:00Z',
      resources: { cpu: 2, memoryMB: 4096, diskGB: 80 },
      conditions: [
        {
          type: 'VPSReady',
          status: 'False',
          reason: 'Provisioning',
          lastTransitionTime: '2025-01-01T00:00:00Z',
        },
      ],
    });
    expect(withStatus.status).toMatchObject({ phase: 'Provisioning', resources: { cpu: 2 } });
    expect((withStatus.spec as Record<string, unknown>).vpsieInstanceID).toBe(4242);
  });

  it('refuses objects without their required fields', async () => {
    // every required field, one by one: test/integration/crds.test.ts
    const noProject = vpsieNode('no-project');
    delete (noProject.spec as Record<string, unknown>).project;
    const res = await admin('POST', collection(noProject), { body: noProject });
    expectStatus(res, 422);
    expect(res.json.details.causes).toEqual([
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.project' },
    ]);
    const vn = await create(vpsieNode('no-phase'));
    const noPhase = await admin('PATCH', `${objectPath(vn)}/status`, {
      body: { status: { nodeName: 'n' } },
      contentType: MERGE,
    });
    expectStatus(noPhase, 422);
    expect(noPhase.text).toContain('status.phase: Required value');
  });

  it('validates field types', async () => {
    const bad = vpsieNode('bad-types');
    (bad.spec as Record<string, unknown>).vpsieInstanceID = 'not-a-number';
    (bad.spec as Record<string, unknown>).sshKeyIDs = 'key-1';
    const res = await admin('POST', collection(bad), { body: bad });
    expectStatus(res, 422);
    expect(res.text).toContain('spec.vpsieInstanceID');
    expect(res.text).toContain('spec.sshKeyIDs');
    const badVersion = nodeGroup('bad-version');
    (badVersion.spec as Record<string, unknown>).kubernetesVersion = '1.30';
    expectStatus(await admin('POST', collection(badVersion), { body: badVersion }), 422);
  });
});

describe(`RBAC of the restricted identity ${RUNBOOK_USER}`, () => {
  it('is the user vpsie-runbook with no groups beyond system:authenticated', async () => {
    const res = await runbook('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    expectStatus(res, 201);
    expect(res.json.status.userInfo).toMatchObject({
      username: RUNBOOK_USER,
      groups: ['system:authenticated'],
    });
  });

  it('reads the server version', async () => {
    const res = await runbook('GET', '/version');
    expectStatus(res, 200);
    expect(res.json.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
  });

  it('lists, gets and watches VPSieNodes', async () => {
    await create(vpsieNode('readable'));
    const list = await runbook('GET', `${GV}/namespaces/${NS}/vpsienodes`);
    expectStatus(list, 200);
    expect((list.json.items as KubeObject[]).map((i) => i.metadata.name)).toContain('readable');
    expectStatus(await runbook('GET', `${GV}/vpsienodes`), 200); // all namespaces
    const one = await runbook('GET', `${GV}/namespaces/${NS}/vpsienodes/readable`);
    expectStatus(one, 200);
    expect(one.json.spec).toMatchObject({ vpsieInstanceID: 4242, sshKeyIDs: ['key-1', 'key-2'] });
    const watch = await runbook('GET', `${GV}/namespaces/${NS}/vpsienodes?watch=true&timeoutSeconds=1`);
    expectStatus(watch, 200);
  });

  it('deletes a VPSieNode', async () => {
    const vn = await create(vpsieNode('deletable'));
    expectStatus(await runbook('DELETE', objectPath(vn)), 200);
    expectStatus(await admin('GET', objectPath(vn)), 404);
  });

  it('deleting a VPSieNode with the controller finalizer only marks it', async () => {
    const finalizer = 'vpsienode.autoscaler.vpsie.com/finalizer';
    const vn = await create(
      vpsieNode('finalized', {
        metadata: { name: 'finalized', namespace: NS, finalizers: [finalizer] },
      }),
    );
    expectStatus(await runbook('DELETE', objectPath(vn)), 200);
    const marked = await admin('GET', objectPath(vn));
    expectStatus(marked, 200);
    expect(marked.json.metadata.deletionTimestamp).toEqual(expect.any(String));
    // what the controller does once the VM is gone
    const released = await admin('PATCH', objectPath(vn), {
      body: { metadata: { finalizers: null } },
      contentType: MERGE,
    });
    expectStatus(released, 200);
    expectStatus(await admin('GET', objectPath(vn)), 404);
  });

  it('may not create, update or patch VPSieNodes', async () => {
    const vn = vpsieNode('forbidden-create');
    expectStatus(await runbook('POST', collection(vn), { body: vn }), 403);
    expectStatus(await admin('GET', objectPath(vn)), 404);
    const existing = await create(vpsieNode('no-patch'));
    const patch = { body: { metadata: { labels: { touched: 'yes' } } }, contentType: MERGE };
    expectStatus(await runbook('PATCH', objectPath(existing), patch), 403);
    expectStatus(await runbook('PATCH', `${objectPath(existing)}/status`, patch), 403);
    expectStatus(await runbook('PUT', objectPath(existing), { body: existing }), 403);
  });

  it('reads Nodes but may not delete one', async () => {
    const node = await create({ apiVersion: 'v1', kind: 'Node', metadata: { name: `${NS}-node` } });
    expectStatus(await runbook('GET', objectPath(node)), 200);
    expectStatus(await runbook('GET', '/api/v1/nodes'), 200);
    expectStatus(await runbook('DELETE', objectPath(node)), 403);
    expectStatus(await admin('GET', objectPath(node)), 200);
    expectStatus(await admin('DELETE', objectPath(node)), 200);
  });

  it('patches a NodeGroup (annotation and spec.kubernetesVersion) but may not create or delete one', async () => {
    const ng = await create(nodeGroup('patchable'));
    expectStatus(await runbook('GET', `${GV}/nodegroups`), 200);
    const trigger = String(Math.floor(Date.now() / 1000));
    const res = await runbook('PATCH', objectPath(ng), {
      body: {
        metadata: { annotations: { 'autoscaler.vpsie.com/reconcile-trigger': trigger } },
        spec: { kubernetesVersion: 'v1.31.1' },
      },
      contentType: MERGE,
    });
    expectStatus(res, 200);
    expect(res.json.metadata.annotations['autoscaler.vpsie.com/reconcile-trigger']).toBe(trigger);
    expect(res.json.spec.kubernetesVersion).toBe('v1.31.1');
    // a JSON Patch (with its `test`) is the same verb
    const jsonPatch = await runbook('PATCH', objectPath(ng), {
      body: [
        { op: 'test', path: '/spec/kubernetesVersion', value: 'v1.31.1' },
        { op: 'replace', path: '/spec/kubernetesVersion', value: 'v1.32.0' },
      ],
      contentType: 'application/json-patch+json',
    });
    expectStatus(jsonPatch, 200);
    expect(jsonPatch.json.spec.kubernetesVersion).toBe('v1.32.0');
    expectStatus(await runbook('DELETE', objectPath(ng)), 403);
    const other = nodeGroup('not-created');
    expectStatus(await runbook('POST', collection(other), { body: other }), 403);
    expectStatus(
      await runbook('PATCH', `${objectPath(ng)}/status`, {
        body: { status: { desiredNodes: 9 } },
        contentType: MERGE,
      }),
      403,
    );
  });

  it('lists Events (core and events.k8s.io) and creates core Events, but may not change or delete any', async () => {
    expectStatus(await runbook('GET', `/api/v1/namespaces/${NS}/events`), 200);
    expectStatus(await runbook('GET', `/apis/events.k8s.io/v1/namespaces/${NS}/events`), 200);
    expectStatus(await runbook('GET', '/api/v1/events?watch=true&timeoutSeconds=1'), 200);
    // the one create: the runbook's escalation Event (activity `escalate`)
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'escalated', namespace: NS },
      involvedObject: { kind: 'VPSieNode', name: 'x', namespace: NS },
      reason: 'RunbookEscalated',
      message: 'escalated',
    };
    expectStatus(await runbook('POST', `/api/v1/namespaces/${NS}/events`, { body: event }), 201);
    const path = `/api/v1/namespaces/${NS}/events/escalated`;
    expectStatus(await runbook('GET', path), 403);
    expectStatus(await runbook('PATCH', path, { body: { message: 'changed' }, contentType: MERGE }), 403);
    expectStatus(await runbook('PUT', path, { body: { ...event, message: 'changed' } }), 403);
    expectStatus(await runbook('DELETE', path), 403);
    const newApi = { ...event, apiVersion: 'events.k8s.io/v1', metadata: { name: 'new-api', namespace: NS } };
    expectStatus(
      await runbook('POST', `/apis/events.k8s.io/v1/namespaces/${NS}/events`, { body: newApi }),
      403,
    );
  });

  it('reads pods and pods/log in kube-system only', async () => {
    expectStatus(await runbook('GET', '/api/v1/namespaces/kube-system/pods'), 200);
    expectStatus(await runbook('GET', `/api/v1/namespaces/${NS}/pods`), 403);
    expectStatus(await runbook('GET', '/api/v1/pods'), 403);
    // authorization comes before the lookup: 404 (no such pod) means RBAC allowed the log read
    expectStatus(await runbook('GET', '/api/v1/namespaces/kube-system/pods/vpsie-autoscaler-0/log'), 404);
    expectStatus(await runbook('GET', `/api/v1/namespaces/${NS}/pods/vpsie-autoscaler-0/log`), 403);
    const logs = (namespace: string) =>
      accessReview(cp.runbookToken, { verb: 'get', resource: 'pods', subresource: 'log', namespace });
    expect(await logs('kube-system')).toBe(true);
    expect(await logs(NS)).toBe(false);
    // nothing beyond reading there
    const del = { verb: 'delete', resource: 'pods', namespace: 'kube-system' };
    expect(await accessReview(cp.runbookToken, del)).toBe(false);
    const exec = { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'kube-system' };
    expect(await accessReview(cp.runbookToken, exec)).toBe(false);
  });

  it('may not read Secrets', async () => {
    expectStatus(await runbook('GET', '/api/v1/namespaces/kube-system/secrets'), 403);
    expectStatus(await runbook('GET', '/api/v1/namespaces/kube-system/secrets/vpsie-secret'), 403);
    expectStatus(await runbook('GET', '/api/v1/secrets'), 403);
    expectStatus(await admin('GET', '/api/v1/namespaces/kube-system/secrets'), 200);
  });

  it('the deploy ServiceAccount holds the same role', async () => {
    const res = await admin(
      'POST',
      `/api/v1/namespaces/${RUNBOOK_NAMESPACE}/serviceaccounts/vpsie-runbook/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 600 },
        },
      },
    );
    expectStatus(res, 201);
    const saToken = res.json.status.token as string;
    const vn = { group: GROUP, resource: 'vpsienodes', namespace: NS };
    expect(await accessReview(saToken, { ...vn, verb: 'delete' })).toBe(true);
    expect(await accessReview(saToken, { ...vn, verb: 'create' })).toBe(false);
    const events = { resource: 'events', namespace: NS };
    expect(await accessReview(saToken, { ...events, verb: 'create' })).toBe(true);
    expect(await accessReview(saToken, { ...events, verb: 'update' })).toBe(false);
    expect(
      await accessReview(saToken, { group: GROUP, resource: 'nodegroups', namespace: NS, verb: 'patch' }),
    ).toBe(true);
    const logs = { verb: 'get', resource: 'pods', subresource: 'log', namespace: 'kube-system' };
    expect(await accessReview(saToken, logs)).toBe(true);
    expect(await accessReview(saToken, { verb: 'get', resource: 'secrets', namespace: 'kube-system' })).toBe(
      false,
    );
  });

  it('works through a kubeconfig with @kubernetes/client-node (TLS verified with caData)', async () => {
    await create(vpsieNode('via-client'));
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(cp, cp.runbookToken, { user: RUNBOOK_USER, namespace: NS }));
    expect(kc.getCurrentCluster()?.skipTLSVerify).toBeFalsy();
    const custom = kc.makeApiClient(CustomObjectsApi);
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: NS,
      plural: 'vpsienodes',
    })) as { items: KubeObject[] };
    expect(list.items.map((i) => i.metadata.name)).toContain('via-client');
    const core = kc.makeApiClient(CoreV1Api);
    await expect(core.listNamespacedSecret({ namespace: 'kube-system' })).rejects.toMatchObject({
      code: 403,
    });
  });
});
