/**
 * The cluster simulator plays upstream's VPSieNode controller faithfully, through the real kube-apiserver:
 * creation through VPSie's managed-Kubernetes API (asynchronous, synchronous, K8s-managed), what it writes
 * (phases, conditions, `lastError`, only the Events upstream records), the status churn while a node is in
 * flight, and the Node labels after matching by IP, then by name. Deletion, NodeGroups, the staged runbook
 * causes and the controller's pod have files of their own (`cluster-simulator-*.test.ts`).
 */
import {
  CONTROLLER_USER_AGENT,
  HEALTHY_PHASES,
  LABEL_DATACENTER,
  LABEL_MANAGED,
  LABEL_NODEGROUP,
  LABEL_OFFERING,
  LABEL_SIMULATOR,
  LABEL_VPSIENODE,
} from '../support/cluster';
import { condition, SimTest, uniq } from '../support/cluster/test-helpers';

jest.setTimeout(120_000);

const t = new SimTest();
const VN_EVENTS = new Set(['Initializing', 'PhaseFailed']);

beforeAll(() =>
  t.start('clustersim', { timings: { provisioningTimeoutMs: 3_000, joiningTimeoutMs: 4_000 } }),
);
afterAll(() => t.stop());
afterEach(() => {
  expect(t.sim.errors).toEqual([]);
  // Upstream's VPSieNode controller records no other Events.
  expect(t.sim.events.filter((e) => e.kind === 'VPSieNode' && !VN_EVENTS.has(e.reason))).toEqual([]);
});

test('an asynchronous create: id 0, the creation-requested annotation and the identifier, then discovery by Node IP, then Ready', async () => {
  const name = uniq('async');
  await t.createVN(name);
  const requested = await t.waitFor('the creation request', async () => {
    const vn = await t.getVN(name);
    return vn?.metadata.annotations?.['autoscaler.vpsie.com/creation-requested'] === 'true' ? vn : undefined;
  });
  expect(requested.spec.vpsieInstanceID).toBe(0);
  expect(requested.spec.vpsieNodeIdentifier).toMatch(/^[0-9a-f-]{36}$/);
  const slave = t.vpsie.requestsTo('POST', /\/add\/slave\/group\//);
  expect(slave.map((r) => [r.path, r.userAgent])).toEqual([
    [`/k8s/cluster/byId/${t.sim.vpsieCluster}/add/slave/group/${t.sim.vpsieGroupId}`, CONTROLLER_USER_AGENT],
  ]);

  const vn = await t.phase(name, 'Ready');
  await t.sim.reconciled({ vpsieNode: name }, { after: 0, where: (r) => r.phaseAfter === 'Ready' });
  const machine = t.sim.machineOf(name);
  expect(machine).toBeDefined();
  expect(t.phasesOf(name)).toEqual(HEALTHY_PHASES);
  expect(vn.spec).toMatchObject({
    vpsieInstanceID: machine?.vmId,
    vpsieNodeIdentifier: machine?.identifier,
    ipAddress: machine?.ip,
    nodeName: machine?.hostname,
  });
  expect(vn.status).toMatchObject({
    nodeName: machine?.hostname,
    hostname: machine?.hostname,
    vpsieStatus: 'running',
  });
  expect(vn.status?.lastError).toBeUndefined();
  expect(condition(vn, 'VPSReady')).toMatchObject({
    status: 'True',
    reason: 'Provisioned',
    message: 'VPS is running',
  });
  expect(condition(vn, 'NodeJoined')).toMatchObject({
    status: 'True',
    reason: 'Joined',
    message: 'Node has joined the cluster',
  });
  expect(condition(vn, 'NodeReady')).toMatchObject({
    status: 'True',
    reason: 'Ready',
    message: 'Node is ready',
  });
  const error = condition(vn, 'Error');
  expect(error).toMatchObject({ status: 'False' });
  expect(error?.reason).toBeUndefined();
  const times = ['createdAt', 'provisionedAt', 'joinedAt', 'readyAt'].map((k) =>
    Date.parse(String((vn.status as Record<string, unknown>)[k])),
  );
  expect(times.every((x) => !Number.isNaN(x))).toBe(true);
  expect([...times].sort((a, b) => a - b)).toEqual(times);

  // The Node the kubelet registered carries the controller's labels (not the offering, not the NodeGroup's).
  const node = await t.node(machine?.hostname ?? '');
  expect(node?.metadata?.labels).toMatchObject({
    [LABEL_MANAGED]: 'true',
    [LABEL_NODEGROUP]: 'standalone',
    [LABEL_VPSIENODE]: name,
    [LABEL_DATACENTER]: '1',
    [LABEL_SIMULATOR]: t.sim.id,
  });
  expect(node?.metadata?.labels?.[LABEL_OFFERING]).toBeUndefined();

  // Only `Initializing` was recorded: proof that the controller has been round again since Ready.
  await t.sim.reconciled({ vpsieNode: name }, { after: Date.now() });
  const events = await t.events(name);
  expect(events.map((e) => [e.reason, e.type, e.source?.component, e.message])).toEqual([
    ['Initializing', 'Normal', 'vpsienode-controller', 'VPSieNode created and entering Pending phase'],
  ]);
  expect(events[0].involvedObject).toMatchObject({
    kind: 'VPSieNode',
    uid: vn.metadata.uid,
    apiVersion: 'autoscaler.vpsie.com/v1alpha1',
  });
});

const CREATION_REQUESTED = 'autoscaler.vpsie.com/creation-requested';
const internalIP = (node: { status?: { addresses?: { type: string; address: string }[] } } | undefined) =>
  node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;

test('a synchronous answer sets the VM id at once; a Node registered on another IP is matched by name', async () => {
  const name = uniq('sync');
  await t.sim.stage(name, 'healthy', { answer: 'sync', nodeIP: '10.10.0.7' });
  await t.createVN(name);
  const vn = await t.phase(name, 'Ready');
  const machine = t.sim.machineOf(name);
  expect(machine?.vmId).toBeGreaterThan(0);
  expect(vn.metadata.annotations?.[CREATION_REQUESTED]).toBeUndefined();
  expect(vn.spec).toMatchObject({
    vpsieInstanceID: machine?.vmId,
    vpsieNodeIdentifier: machine?.identifier,
    nodeName: machine?.hostname,
    ipAddress: machine?.ip,
  });
  const node = await t.node(machine?.hostname ?? '');
  expect(internalIP(node)).toBe('10.10.0.7');
  expect(internalIP(node)).not.toBe(vn.spec.ipAddress);
  expect(node?.metadata?.labels).toMatchObject({ [LABEL_VPSIENODE]: name, [LABEL_MANAGED]: 'true' });
  expect(vn.status?.nodeName).toBe(machine?.hostname);
});

test('the controller matches the Node by IP first: a spec.nodeName that names no Node stays as it was', async () => {
  const name = uniq('byip');
  await t.createVN(name, { nodeName: `${name}-wanted` });
  const vn = await t.phase(name, 'Ready');
  const machine = t.sim.machineOf(name);
  expect(machine?.hostname).not.toBe(`${name}-wanted`);
  expect(vn.spec).toMatchObject({ nodeName: `${name}-wanted`, ipAddress: machine?.ip });
  expect(vn.status?.nodeName).toBe(machine?.hostname);
  expect(await t.node(`${name}-wanted`)).toBeUndefined();
  expect((await t.node(machine?.hostname ?? ''))?.metadata?.labels?.[LABEL_VPSIENODE]).toBe(name);
});

test('a K8s-managed node (never in GET /vm) is discovered by its Node and reaches Ready with vpsieInstanceID 0 and an IP', async () => {
  // Upstream's discoverer only looks at Nodes when GET /vm lists at least one running VM.
  t.vpsie.addVM({ name: uniq('unrelated'), status: 'running' });
  const name = uniq('k8sman');
  await t.sim.stage(name, 'k8s-managed');
  await t.createVN(name);
  const vn = await t.phase(name, 'Ready');
  const machine = t.sim.machineOf(name);
  expect(machine?.vmId).toBe(0);
  expect(t.vpsie.listVMs().some((v) => v.hostname === machine?.hostname)).toBe(false);
  expect(vn.metadata.annotations?.[CREATION_REQUESTED]).toBe('true');
  expect(vn.spec).toMatchObject({ vpsieInstanceID: 0, ipAddress: machine?.ip, nodeName: machine?.hostname });
  expect(vn.status).toMatchObject({ nodeName: machine?.hostname, vpsieStatus: 'running' });
  expect(condition(vn, 'VPSReady')).toMatchObject({ status: 'True', message: 'K8s node is running' });
  expect(
    t.logsAbout(name).some((l) => l.msg === 'K8s-managed node discovered, transitioning to Provisioned'),
  ).toBe(true);
});

test('a VPSie API error keeps the node Provisioning (VPSieAPIError, PhaseFailed) until the provisioning limit, then ProvisioningTimeout', async () => {
  const staged = uniq('apierr');
  const injected = uniq('apierr200');
  await t.sim.stage(staged, 'vm-creation-fails', { status: 500, error: 'Internal server error' });
  // VPSie's other way of failing: HTTP 200 with {"error": true}, here through the simulator's fault injection.
  const fault = t.vpsie.inject({
    method: 'POST',
    path: '/k8s/cluster/byId/:id/add/slave/group/:gid',
    fault: { type: 'api-error', status: 200, code: 500, message: 'Could not allocate an IP address' },
  });
  try {
    await Promise.all([t.createVN(staged), t.createVN(injected)]);
    const expected = {
      [staged]:
        'failed to create VPS: failed to add K8s slave node: VPSie API error (status: 500): Internal Server Error - ' +
        '{"error":true,"code":500,"message":"Internal server error"}',
      [injected]:
        'failed to create VPS: VPSie API error (status: 500): AddK8sSlaveToGroupFailed - Could not allocate an IP address',
    };
    for (const name of [staged, injected]) {
      const repeated = await t.waitFor(`${name}: PhaseFailed repeated`, async () => {
        const ev = (await t.events(name)).find((e) => e.reason === 'PhaseFailed');
        return ev && (ev.count ?? 0) >= 2 ? ev : undefined;
      });
      expect(repeated).toMatchObject({
        type: 'Warning',
        message: `Failed in Provisioning phase: ${expected[name]}`,
      });
      const during = await t.getVN(name);
      expect(during?.status?.phase).toBe('Provisioning');
      expect(during?.spec.vpsieInstanceID).toBe(0);
      expect(during?.metadata.annotations?.[CREATION_REQUESTED]).toBeUndefined();
      expect(during?.status?.lastError).toBe(expected[name]);
      expect(condition(during, 'Error')).toMatchObject({
        status: 'True',
        reason: 'VPSieAPIError',
        message: expected[name],
      });
      expect(t.logsAbout(name).some((l) => l.msg === 'Reconciler error' && l.error === expected[name])).toBe(
        true,
      );
    }
    for (const name of [staged, injected]) {
      const failed = await t.phase(name, 'Failed');
      expect(condition(failed, 'Error')).toMatchObject({ status: 'True', reason: 'ProvisioningTimeout' });
      expect(failed.status?.lastError).toMatch(/^Provisioning timeout exceeded \(\d+(\.\d+)?s\)$/);
      const failedAt = Date.parse(condition(failed, 'Error')?.lastTransitionTime ?? '');
      expect(failedAt - Date.parse(failed.status?.createdAt ?? '')).toBeGreaterThanOrEqual(2_000);
    }
  } finally {
    fault.remove();
  }
});

test('a VPSieNode without vpsieGroupID stays Provisioning with "VPSieGroupID is required", asking VPSie nothing', async () => {
  const name = uniq('nogroup');
  const since = Date.now();
  await t.createVN(name, { vpsieGroupID: undefined });
  const repeated = await t.waitFor('PhaseFailed repeated', async () => {
    const ev = (await t.events(name)).find((e) => e.reason === 'PhaseFailed');
    return ev && (ev.count ?? 0) >= 2 ? ev : undefined;
  });
  expect(repeated.message).toBe('Failed in Provisioning phase: VPSieGroupID is required');
  const vn = await t.getVN(name);
  expect(vn?.status?.phase).toBe('Provisioning');
  expect(vn?.status?.lastError).toBe('VPSieGroupID is required');
  expect(condition(vn, 'Error')).toMatchObject({ status: 'True', reason: 'VPSieAPIError' });
  expect(t.sim.vpsieCalls.filter((c) => c.at >= since && c.path.includes('/add/slave/'))).toEqual([]);
  await t.deleteVN(name);
  await t.gone(name);
});

test('a capacity error fails the node at once with CapacityLimitReached', async () => {
  const cluster = t.sim.vpsieCluster;
  const workers = (t.vpsie.k8sCluster(cluster)?.nodes.length ?? 0) + t.vpsie.slaveRequests(cluster).length;
  t.vpsie.setK8sWorkerLimit(cluster, workers);
  try {
    const name = uniq('cap');
    const since = Date.now();
    await t.createVN(name);
    const vn = await t.phase(name, 'Failed');
    expect(condition(vn, 'Error')).toMatchObject({ status: 'True', reason: 'CapacityLimitReached' });
    expect(vn.status?.lastError).toMatch(
      /^failed to create VPS: failed to add K8s slave node: VPSie API error \(status: 500\): Internal Server Error - /,
    );
    expect(vn.status?.lastError).toContain(`Worker nodes count exceeds the allowed limit ${workers}`);
    expect(vn.spec.vpsieInstanceID).toBe(0);
    const calls = t.sim.vpsieCalls.filter(
      (c) => c.at >= since && c.method === 'POST' && c.path.includes('/add/slave/'),
    );
    expect(calls).toHaveLength(1);
    // The Failed phase has been handled since: still only Initializing (a terminal error is not a PhaseFailed).
    await t.sim.reconciled({ vpsieNode: name }, { after: 0, where: (r) => r.phaseBefore === 'Failed' });
    expect(await t.reasons(name)).toEqual(['Initializing']);
  } finally {
    t.vpsie.setK8sWorkerLimit(cluster, null);
  }
});

test('joining times out: the node stays Joining, its status rewritten at every requeue, then JoiningTimeout', async () => {
  const name = uniq('join');
  await t.sim.stage(name, 'never-registers', { answer: 'sync' });
  await t.createVN(name);
  const joining = await t.phase(name, 'Joining');
  const machine = t.sim.machineOf(name);
  expect(joining.spec.vpsieInstanceID).toBe(machine?.vmId);

  // resourceVersion churns while nothing else happens (conditions' lastUpdateTime, whole seconds)
  const seen = new Map<string, string>();
  await t.waitFor('three resourceVersions while Joining', async () => {
    const vn = await t.getVN(name);
    if (vn?.status?.phase === 'Joining')
      seen.set(vn.metadata.resourceVersion ?? '', condition(vn, 'Error')?.lastUpdateTime ?? '');
    return seen.size >= 3;
  });
  expect(new Set(seen.values()).size).toBeGreaterThanOrEqual(2);

  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')).toMatchObject({ status: 'True', reason: 'JoiningTimeout' });
  expect(failed.status?.lastError).toMatch(/^Node joining timeout exceeded \(\d+(\.\d+)?s\)$/);
  expect(condition(failed, 'NodeJoined')).toMatchObject({
    status: 'False',
    reason: 'Joining',
    message: 'Node joining started',
  });
  expect(await t.node(machine?.hostname ?? '')).toBeUndefined();
  expect(t.sim.kubeletJournal(machine?.hostname ?? '')).not.toEqual([]);
});
