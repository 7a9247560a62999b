/**
 * Each cause of the runbook, staged the way it really shows up with upstream's controller, seen as an on-call
 * engineer (or the runbook) sees it: the VPSieNode, its Events, VPSie, the Nodes. Also the two situations
 * the runbook does not describe: a creation VPSie accepted but never carried out, and a K8s-managed machine
 * (not in GET /vm) whose kubelet never registers. Limits are short here: 2.5 s to provision and to join.
 */
import { RECONCILE_TRIGGER } from '../support/cluster';
import type { VPSieNodeObj } from '../support/cluster';
import { condition, SimTest, uniq } from '../support/cluster/test-helpers';
import { majorMinor, MERGE } from '../support/cluster/util';

jest.setTimeout(120_000);

const t = new SimTest();
const CREATION_REQUESTED = 'autoscaler.vpsie.com/creation-requested';

beforeAll(() => t.start('causes', { timings: { provisioningTimeoutMs: 2_500, joiningTimeoutMs: 2_500 } }));
afterAll(() => t.stop());
afterEach(() => expect(t.sim.errors).toEqual([]));

const provisioningTimeout = async (name: string) => {
  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')).toMatchObject({ status: 'True', reason: 'ProvisioningTimeout' });
  return failed;
};
const provisioningFor = (name: string, ms: number) =>
  // the controller has looked at it again `ms` after it was created, and it was still Provisioning then
  t.sim.reconciled(
    { vpsieNode: name },
    { after: Date.now() + ms, where: (r) => r.phaseAfter === 'Provisioning' },
  );

test('cause 1, VM creation failed: no VPSieInstanceID, the creation error in lastError, the Events and the logs', async () => {
  const name = uniq('c1');
  await t.sim.stage(name, 'vm-creation-fails', { status: 503, error: 'Service temporarily unavailable' });
  await t.createVN(name);
  await provisioningFor(name, 500);
  const vn = (await t.getVN(name)) as VPSieNodeObj;
  expect(vn.spec.vpsieInstanceID).toBe(0);
  expect(vn.metadata.annotations?.[CREATION_REQUESTED]).toBeUndefined();
  expect(vn.status?.lastError).toMatch(
    /^failed to create VPS: failed to add K8s slave node: VPSie API error \(status: 503\)/,
  );
  expect(await t.reasons(name)).toEqual(['Initializing', 'PhaseFailed']);
  expect(t.sim.machineOf(name)).toBeUndefined();
  // what the runbook's grep keeps: the lines naming the node, and those about provisioning or failures
  const lines = t.sim.controllerLogs().filter((l) => l.includes(name) && /provision|failed/i.test(l));
  expect(lines.some((l) => l.includes('Failed to create K8s node via VPSie API'))).toBe(true);
  await provisioningTimeout(name);
});

test('cause 1, the cluster at its worker limit: Failed at once with CapacityLimitReached', async () => {
  const name = uniq('c1cap');
  await t.sim.stage(name, 'capacity-limit');
  await t.createVN(name);
  const vn = await t.phase(name, 'Failed');
  expect(condition(vn, 'Error')?.reason).toBe('CapacityLimitReached');
  expect(vn.status?.lastError).toContain('Worker nodes count exceeds the allowed limit');
  expect(vn.spec.vpsieInstanceID).toBe(0);
});

test('cause 2, VM created but not registering: an instance ID, a running VM, no Node, then JoiningTimeout', async () => {
  const name = uniq('c2');
  await t.sim.stage(name, 'never-registers', { answer: 'sync' });
  await t.createVN(name);
  const joining = await t.phase(name, 'Joining');
  const machine = t.sim.machineOf(name);
  expect(joining.spec.vpsieInstanceID).toBe(machine?.vmId);
  expect(t.vpsie.getVM(joining.spec.vpsieInstanceID)?.status).toBe('running');
  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')?.reason).toBe('JoiningTimeout');
  expect(await t.node(machine?.hostname ?? '')).toBeUndefined();
  expect(t.sim.kubeletJournal(machine?.hostname ?? '')[0]).toMatch(/Unable to register node/);
});

test('a K8s-managed machine whose kubelet never registers: never discovered, Provisioning with id 0, then ProvisioningTimeout', async () => {
  const name = uniq('k8snoreg');
  await t.sim.stage(name, 'never-registers', { inVmList: false });
  await t.createVN(name);
  await t.waitFor('its machine running in VPSie', async () => t.sim.machineOf(name)?.status === 'running');
  await provisioningFor(name, 500);
  const vn = (await t.getVN(name)) as VPSieNodeObj;
  expect(vn.metadata.annotations?.[CREATION_REQUESTED]).toBe('true');
  expect(vn.spec).toMatchObject({
    vpsieInstanceID: 0,
    vpsieNodeIdentifier: t.sim.machineOf(name)?.identifier,
  });
  expect(vn.spec.ipAddress).toBeUndefined();
  expect(t.vpsie.listVMs().some((v) => v.hostname === t.sim.machineOf(name)?.hostname)).toBe(false);
  expect(await t.reasons(name)).toEqual(['Initializing']);
  await provisioningTimeout(name);
});

test('creation requested but never carried out: annotation, identifier, vpsieStatus provisioning, then ProvisioningTimeout', async () => {
  const name = uniq('nevermade');
  await t.sim.stage(name, 'creation-never-completes');
  await t.createVN(name);
  await provisioningFor(name, 500);
  const vn = (await t.getVN(name)) as VPSieNodeObj;
  expect(vn.metadata.annotations?.[CREATION_REQUESTED]).toBe('true');
  expect(vn.status?.vpsieStatus).toBe('provisioning');
  expect(condition(vn, 'VPSReady')).toMatchObject({
    status: 'False',
    reason: 'Provisioning',
    message: 'Node creation requested, waiting for VPSie to provision',
  });
  expect(t.vpsie.slaveRequests(t.sim.vpsieCluster).map((r) => r.identifier)).toContain(
    vn.spec.vpsieNodeIdentifier,
  );
  expect(t.sim.machineOf(name)).toBeUndefined();
  const failed = await provisioningTimeout(name);
  expect(failed.spec.vpsieInstanceID).toBe(0);
});

test('cause 3, timeout during provisioning: the VM never boots, the node stays Provisioning, then ProvisioningTimeout', async () => {
  const name = uniq('c3');
  await t.sim.stage(name, 'stuck-provisioning', { answer: 'sync' });
  await t.createVN(name);
  await provisioningFor(name, 500);
  const vn = (await t.getVN(name)) as VPSieNodeObj;
  expect(vn.spec.vpsieInstanceID).toBeGreaterThan(0);
  expect(vn.status?.vpsieStatus).toBe('provisioning');
  expect(t.vpsie.getVM(vn.spec.vpsieInstanceID)?.status).toBe('provisioning');
  expect(vn.status?.createdAt).toBeTruthy();
  await provisioningTimeout(name);
});

test('cause 4, a NodeGroup version that does not match the cluster: its node never registers; fixing it fixes the replacement', async () => {
  const ng = uniq('c4');
  await t.sim.stage({ nodeGroup: ng }, 'version-mismatch');
  await t.sim.createNodeGroup(ng);
  const [vn] = await t.waitFor('its VPSieNode', async () => {
    const vns = await t.listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase ? vns : undefined;
  });
  const wrong = (await t.getNG(ng)).spec.kubernetesVersion;
  expect(majorMinor(wrong)).not.toEqual(majorMinor(t.sim.clusterVersion));
  expect(vn.spec.kubernetesVersion).toBe(wrong);
  await t.waitFor('its machine running', async () => t.sim.machineOf(vn.metadata.name)?.status === 'running');
  const hostname = t.sim.machineOf(vn.metadata.name)?.hostname ?? '';
  await t.waitFor('the kubelet giving up', async () =>
    t.sim.kubeletJournal(hostname).some((l) => l.includes(wrong)),
  );
  expect(await t.node(hostname)).toBeUndefined();
  await provisioningTimeout(vn.metadata.name);

  // the runbook's fix: match the cluster's version, delete the node; the NodeGroup replaces it
  await t.runbookCustom.patchNamespacedCustomObject(
    {
      ...t.crd('nodegroups'),
      name: ng,
      body: {
        spec: { kubernetesVersion: t.sim.clusterVersion },
        metadata: { annotations: { [RECONCILE_TRIGGER]: '1' } },
      },
    },
    MERGE,
  );
  await t.deleteVN(vn.metadata.name, t.runbookCustom);
  await t.waitFor('a replacement Ready', async () => {
    const vns = await t.listVNs(ng);
    return vns.length === 1 && vns[0].metadata.name !== vn.metadata.name && vns[0].status?.phase === 'Ready';
  });
});

test('cause 5, SSH keys unknown to VPSie: in the NodeGroup and its nodes, with no effect on provisioning', async () => {
  const ng = uniq('c5');
  await t.sim.stage({ nodeGroup: ng }, 'unknown-ssh-keys', { sshKeyIDs: ['sshkey-gone-1'] });
  await t.sim.createNodeGroup(ng);
  const [vn] = await t.waitFor('its VPSieNode Ready', async () => {
    const vns = await t.listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase === 'Ready' ? vns : undefined;
  });
  expect((await t.getNG(ng)).spec.sshKeyIDs).toEqual(['sshkey-gone-1']);
  expect(vn.spec.sshKeyIDs).toEqual(['sshkey-gone-1']);
  expect(
    t.vpsie.sshKeysList().some((k) => k.identifier === 'sshkey-gone-1' || String(k.id) === 'sshkey-gone-1'),
  ).toBe(false);
  // upstream sends no SSH key to VPSie: the add/slave request carries no body
  expect(t.vpsie.requestsTo('POST', /\/add\/slave\//).every((r) => r.body === undefined)).toBe(true);
});
