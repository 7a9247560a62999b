/**
 * Issue 7 item 1 end to end: `gatherEvidence` run as the restricted identity against the real apiserver while
 * the simulated autoscaler stages each cause, and the cause `classify` finds in what was gathered. VPSie
 * refusing the product's credentials, unreachable, or not configured leaves its sources marked as such and the
 * Kubernetes sources read. Limits are short here: 2.5 s to provision and to join.
 */
import { createServer } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { VPSieClient } from '../../src/clients/vpsie';
import { classify, type Evidence, type Finding, type VPSieNodeSnapshot } from '../../src/runbook';
import { LABEL_SIMULATOR } from '../support/cluster';
import { condition, SimTest, uniq } from '../support/cluster/test-helpers';
import { rejectsWith } from '../support/expect-rejection';
import { kubeConfigFor } from '../support/kube';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(120_000);

const t = new SimTest();
const kubernetes = new KubernetesClient(kubeConfigFor('runbook'));
type Activities = ReturnType<typeof createActivities>;
let activities: Activities;

/** The product's activities, with this VPSie client (null: not configured). */
const withVPSie = (vpsie: VPSieClient | null): Activities =>
  createActivities({
    kubernetes,
    vpsie,
    // only this file's simulated controller: parallel test files run their own in kube-system too
    controller: { labelSelector: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${t.sim.id}` },
  });
const vpsieAt = (baseUrl: string, token = VPSieSimulator.DEFAULT_TOKEN) =>
  new VPSieClient({ baseUrl, token, timeoutMs: 5_000 });

beforeAll(async () => {
  await t.start('evidence', { timings: { provisioningTimeoutMs: 2_500, joiningTimeoutMs: 2_500 } });
  activities = withVPSie(vpsieAt(t.vpsie.baseUrl));
});
afterAll(() => t.stop());
afterEach(() => expect(t.sim.errors).toEqual([]));

const gather = (name: string, lastSeen: VPSieNodeSnapshot | null = null, a = activities) =>
  a.gatherEvidence({ ref: { namespace: t.ns, name }, lastSeen });
const findings = (e: Evidence) => classify(e, Date.now()).reasons.map((r) => r.finding);
const expectFindings = (e: Evidence, ...wanted: Finding[]) =>
  expect(findings(e)).toEqual(expect.arrayContaining(wanted));

/** Waits for the VPSieNode of a NodeGroup (there is one) to have a phase; answers its name. */
const vpsieNodeOf = async (ng: string): Promise<string> => {
  const [vn] = await t.waitFor('its VPSieNode', async () => {
    const vns = await t.listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase ? vns : undefined;
  });
  return vn.metadata.name;
};

test('capacity limit: VMCreationFailed from the condition the controller wrote, with its Events and log lines', async () => {
  const name = uniq('cap');
  await t.sim.stage(name, 'capacity-limit');
  await t.createVN(name);
  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')?.reason).toBe('CapacityLimitReached');
  // Events are written beside the status, not before it
  await t.waitFor('the Initializing Event', async () => (await t.reasons(name)).includes('Initializing'));

  const e = await gather(name);
  expect(e.vpsieNode).toMatchObject({ name, uid: failed.metadata.uid, phase: 'Failed', vpsieInstanceID: 0 });
  const c = classify(e, Date.now());
  expect(c.cause).toBe('VMCreationFailed');
  expect(c.reasons[0]).toMatchObject({ finding: 'capacity-limit', source: 'vpsieNode' });
  expect(c.reasons[0].value).toContain('Worker nodes count exceeds the allowed limit');
  // every source read: the Kubernetes ones and VPSie's (no machine); the NodeGroup it names does not exist
  expect(e.events.status === 'ok' && e.events.value.map((x) => x.reason)).toContain('Initializing');
  const logs = e.controllerLogs.status === 'ok' ? e.controllerLogs.value.pods.flatMap((p) => p.lines) : [];
  expect(logs.some((l) => l.includes(name))).toBe(true);
  expect(e.machine).toMatchObject({ status: 'ok', value: { vm: null, node: null, cluster: 'found' } });
  expect(e.node).toEqual({ status: 'ok', value: null });
  expect(e.nodeGroup).toEqual({ status: 'ok', value: null });
  expect(e.clusterVersion).toMatchObject({ status: 'ok', value: { gitVersion: t.sim.clusterVersion } });
  expect(e.sshKeys).toEqual({
    status: 'unavailable',
    why: `NodeGroup ${t.ns}/standalone does not exist`,
  });
  expect(e.catalog.status).toBe('unavailable');
});

test('never registers: VMNotRegistering, its VM found by id in VPSie and no Node', async () => {
  const name = uniq('noreg');
  await t.sim.stage(name, 'never-registers', { answer: 'sync' });
  await t.createVN(name);
  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')?.reason).toBe('JoiningTimeout');

  const e = await gather(name);
  expect(e.machine).toMatchObject({
    status: 'ok',
    value: { matchedBy: 'instance-id', vm: { id: failed.spec.vpsieInstanceID, status: 'running' } },
  });
  expect(e.node).toEqual({ status: 'ok', value: null });
  const c = classify(e, Date.now());
  expect(c.cause).toBe('VMNotRegistering');
  expectFindings(e, 'joining-timeout', 'node-missing', 'machine-found');
});

test('stuck provisioning: ProvisioningTimeout, the VM still provisioning in VPSie', async () => {
  const name = uniq('stuck');
  await t.sim.stage(name, 'stuck-provisioning', { answer: 'sync' });
  await t.createVN(name);
  const failed = await t.phase(name, 'Failed');
  expect(condition(failed, 'Error')?.reason).toBe('ProvisioningTimeout');

  const e = await gather(name);
  const c = classify(e, Date.now());
  expect(c.cause).toBe('ProvisioningTimeout');
  expect(c.reasons[0]).toMatchObject({ finding: 'provisioning-timeout', source: 'vpsieNode' });
  expect(c.reasons.find((r) => r.finding === 'machine-found')?.value).toContain('(provisioning)');
});

test("version mismatch: KubernetesVersionMismatch names the NodeGroup's version and the cluster's", async () => {
  const ng = uniq('ver');
  await t.sim.stage({ nodeGroup: ng }, 'version-mismatch');
  await t.sim.createNodeGroup(ng);
  const name = await vpsieNodeOf(ng);
  await t.phase(name, 'Failed');
  const wrong = (await t.getNG(ng)).spec.kubernetesVersion;

  const e = await gather(name);
  expect(e.nodeGroup).toMatchObject({ status: 'ok', value: { name: ng, kubernetesVersion: wrong } });
  expect(e.catalog).toEqual({
    status: 'ok',
    value: { unknownOfferings: [], unavailableOfferings: [], datacenter: 'ok', image: 'unset' },
  });
  const c = classify(e, Date.now());
  expect(c.cause).toBe('KubernetesVersionMismatch');
  expect(c.reasons[0]).toMatchObject({ finding: 'version-mismatch', source: 'nodeGroup', value: wrong });
  expect(c.reasons[0].says).toContain(t.sim.clusterVersion);
  expect(c.also).toContain('ProvisioningTimeout');
});

test('unknown SSH keys on a node that never registers: SSHKeyInvalid names the keys the account lacks', async () => {
  const ng = uniq('ssh');
  await t.sim.stage({ nodeGroup: ng }, 'unknown-ssh-keys', { sshKeyIDs: ['sshkey-gone-1', '301'] });
  await t.sim.stage({ nodeGroup: ng }, 'never-registers', { answer: 'sync' });
  await t.sim.createNodeGroup(ng);
  const name = await vpsieNodeOf(ng);
  await t.phase(name, 'Joining');
  expect((await t.getNG(ng)).spec.sshKeyIDs).toEqual(['sshkey-gone-1', '301']);

  const e = await gather(name);
  expect(e.sshKeys).toEqual({ status: 'ok', value: { known: ['301'], unknown: ['sshkey-gone-1'] } });
  const c = classify(e, Date.now());
  expect(c.cause).toBe('SSHKeyInvalid');
  expect(c.reasons).toEqual([
    expect.objectContaining({ finding: 'unknown-ssh-keys', source: 'sshKeys', value: 'sshkey-gone-1' }),
  ]);
  expect(c.also).toContain('VMNotRegistering');
});

test('a healthy node: Recovered, its Ready Node matched', async () => {
  const name = uniq('ok');
  await t.createVN(name);
  await t.phase(name, 'Ready');

  const e = await gather(name);
  expect(e.node.status === 'ok' && e.node.value?.node.readyStatus).toBe('True');
  const c = classify(e, Date.now());
  expect(c.cause).toBe('Recovered');
  expect(c.reasons[0]).toMatchObject({ finding: 'node-ready', source: 'node' });
});

test('a VPSieNode gone since the run first saw it: VPSieNodeGone, its events found by the UID last seen', async () => {
  const name = uniq('gone');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  const seen = await activities.checkVPSieNode({ namespace: t.ns, name });
  await t.waitFor('an Event about it', async () => (await t.events(name)).length > 0);
  await t.deleteVN(name);
  await t.gone(name);

  const e = await gather(name, seen);
  expect(e.vpsieNode).toBeNull();
  expect(e.lastSeen?.uid).toBe(seen?.uid);
  expect(e.events.status === 'ok' && e.events.value.every((x) => x.involvedObject.uid === seen?.uid)).toBe(
    true,
  );
  expect(e.events.status === 'ok' && e.events.value.length).toBeGreaterThan(0);
  expect(classify(e, Date.now()).cause).toBe('VPSieNodeGone');
});

test('only the VPSieNode itself failing to be read fails the activity, with the type a workflow branches on', async () => {
  const good = kubeConfigFor('runbook');
  const bad = new KubeConfig();
  bad.loadFromOptions({
    clusters: good.clusters,
    contexts: good.contexts,
    currentContext: good.currentContext,
    users: good.users.map((u) => ({ name: u.name, token: 'not-a-valid-token' })),
  });
  const f = await rejectsWith(
    createActivities({ kubernetes: new KubernetesClient(bad), vpsie: null }).gatherEvidence({
      ref: { namespace: t.ns, name: uniq('any') },
      lastSeen: null,
    }),
    ApplicationFailure,
  );
  expect(f.type).toBe('Kubernetes401');
  expect(f.nonRetryable).toBe(true);
});

test('a reference without a name is refused, naming the field', async () => {
  const f = await rejectsWith(
    activities.gatherEvidence({ ref: { namespace: t.ns, name: '' }, lastSeen: null }),
    ApplicationFailure,
  );
  expect(f).toMatchObject({ type: 'InvalidInput', message: 'ref.name must be a non-empty string, got ""' });
});

describe('VPSie unreadable or unconfigured', () => {
  let name = '';
  beforeAll(async () => {
    const ng = uniq('novpsie');
    await t.sim.stage({ nodeGroup: ng }, 'never-registers', { answer: 'sync' });
    await t.sim.createNodeGroup(ng);
    name = await vpsieNodeOf(ng);
    await t.phase(name, 'Joining');
  });

  /** The Kubernetes sources, all read. */
  const expectKubernetesRead = (e: Evidence) => {
    expect(e.vpsieNode?.name).toBe(name);
    for (const source of [e.events, e.controllerLogs, e.node, e.nodeGroup, e.clusterVersion])
      expect(source.status).toBe('ok');
    expect(e.nodeGroup.status === 'ok' && e.nodeGroup.value?.name).toBeTruthy();
  };

  test('VPSie refusing the credentials: each VPSie source carries VPSieAuth, the Kubernetes side is read', async () => {
    const before = t.vpsie.requestsTo().length;
    const e = await gather(name, null, withVPSie(vpsieAt(t.vpsie.baseUrl, 'not-a-valid-token')));
    expectKubernetesRead(e);
    for (const source of [e.machine, e.sshKeys, e.catalog])
      expect(source).toMatchObject({ status: 'error', type: 'VPSieAuth' });
    // the simulator itself refused them (401)
    expect(
      t.vpsie
        .requestsTo()
        .slice(before)
        .some((r) => r.status === 401),
    ).toBe(true);
  });

  test('VPSie unreachable: each VPSie source carries VPSieNetwork, the Kubernetes side is read', async () => {
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const e = await gather(name, null, withVPSie(vpsieAt(`http://127.0.0.1:${closed}/v2`)));
    expectKubernetesRead(e);
    for (const source of [e.machine, e.sshKeys, e.catalog])
      expect(source).toMatchObject({ status: 'error', type: 'VPSieNetwork' });
  });

  test('VPSie not configured: its sources are unavailable, not a failed run', async () => {
    const e = await gather(name, null, withVPSie(null));
    expectKubernetesRead(e);
    for (const source of [e.machine, e.sshKeys, e.catalog])
      expect(source).toEqual({ status: 'unavailable', why: 'VPSie is not configured' });
    expect(classify(e, Date.now()).cause).toBe('VMNotRegistering');
  });
});
