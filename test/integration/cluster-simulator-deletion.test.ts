/**
 * Deletion as upstream's VPSieNode controller does it, through the real apiserver: Terminating (drain, the Node
 * deleted), Deleting (`DELETE …/delete/slave`, or `DELETE /vm/{id}` when the node's identifier cannot be
 * found), then the finalizer goes; a VM delete that keeps failing ends Failed with VPSDeleteFailed and starts
 * over; a Failed VPSieNode is deleted by the controller once its TTL has passed.
 */
import { CONTROLLER_USER_AGENT, FINALIZER } from '../support/cluster';
import { condition, SimTest, uniq } from '../support/cluster/test-helpers';

jest.setTimeout(120_000);

const t = new SimTest();

beforeAll(() => t.start('clusterdel'));
afterAll(() => t.stop());
afterEach(() => expect(t.sim.errors).toEqual([]));

const deletesOf = (path: RegExp) =>
  t.vpsie.requestsTo('DELETE', path).filter((r) => r.userAgent === CONTROLLER_USER_AGENT);

test('Terminating drains and deletes the Node, Deleting removes the machine through delete/slave, then the finalizer goes', async () => {
  const name = uniq('del');
  await t.createVN(name);
  const ready = await t.phase(name, 'Ready');
  const machine = t.sim.machineOf(name);
  const nodeName = ready.status?.nodeName ?? '';
  expect(await t.node(nodeName)).toBeDefined();

  await t.deleteVN(name, t.runbookCustom);
  await t.gone(name);
  expect(
    t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine?.identifier),
  ).toBe(false);
  expect(t.vpsie.hasVM(machine?.vmId ?? 0)).toBe(false);
  expect(await t.node(nodeName)).toBeUndefined();
  const [req] = deletesOf(/\/delete\/slave$/);
  expect(req).toMatchObject({ body: { identifier: machine?.identifier }, status: 200 });
  expect(deletesOf(/^\/vm\//)).toEqual([]);
  // the finalizer went only after VPSie had answered the delete (the line is logged once the patch returned)
  const removed = await t.waitFor('the finalizer removal logged', async () =>
    t.logsAbout(name).find((l) => l.msg === 'Successfully removed finalizer, VPSieNode will be deleted'),
  );
  expect(Date.parse(String(removed?.ts))).toBeGreaterThanOrEqual(Math.floor(req.answeredAt ?? Infinity));
  const phases = t.phasesOf(name);
  expect(phases.slice(phases.indexOf('Ready'))).toEqual(['Ready', 'Terminating', 'Deleting']);
  const logs = t.logsAbout(nodeName).map((l) => l.msg);
  expect(logs).toEqual(
    expect.arrayContaining(['Successfully cordoned node', 'Successfully deleted Kubernetes Node']),
  );
});

test('without the node identifier and with the cluster lookup failing, the machine is deleted through DELETE /vm/{id}', async () => {
  const name = uniq('fallback');
  await t.sim.stage(name, 'healthy', { answer: 'async-true' });
  await t.createVN(name);
  const ready = await t.phase(name, 'Ready');
  expect(ready.spec.vpsieNodeIdentifier).toBeUndefined();
  const id = ready.spec.vpsieInstanceID;
  expect(id).toBeGreaterThan(0);
  const lookup = t.vpsie.inject({
    method: 'GET',
    path: `/k8s/cluster/byId/${t.sim.vpsieCluster}`,
    times: 1,
    fault: { type: 'status', status: 503 },
  });
  await t.deleteVN(name);
  await t.gone(name);
  expect(lookup.hits).toBe(1);
  expect(deletesOf(new RegExp(`^/vm/${id}$`))).toHaveLength(1);
  expect(t.vpsie.hasVM(id)).toBe(false);
  expect(t.logsAbout(name).some((l) => l.msg === 'Deleting VPS via VM API (fallback)')).toBe(true);
});

test('a VM delete that keeps failing ends Failed with VPSDeleteFailed after three attempts, keeps the finalizer and starts over', async () => {
  const name = uniq('vdel');
  await t.sim.stage(name, 'vm-delete-fails');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  const machine = t.sim.machineOf(name);
  await t.deleteVN(name);
  const failed = await t.sim.reconciled(
    { vpsieNode: name },
    { after: 0, where: (r) => r.phaseAfter === 'Failed' },
  );
  expect(failed.error).toMatch(
    /^failed to delete VPS: failed to delete K8s node: failed to delete K8s node: VPSie API error \(status: 500\)/,
  );
  // It starts over: Terminating again, and the error stays on the object while it does.
  await t.sim.reconciled(
    { vpsieNode: name },
    { after: failed.endedAt, where: (r) => r.phaseAfter === 'Terminating' },
  );
  const vn = await t.getVN(name);
  expect(vn?.metadata.finalizers).toContain(FINALIZER);
  expect(condition(vn, 'Error')).toMatchObject({ status: 'True', reason: 'VPSDeleteFailed' });
  expect(vn?.status?.lastError).toMatch(/^Failed to delete VPS after 3 retries: failed to delete K8s node: /);
  expect(
    t
      .logsAbout(name)
      .filter((l) => l.msg === 'Failed to delete VPS, will retry')
      .map((l) => l.attempt),
  ).toEqual(expect.arrayContaining([1, 2, 3]));
  expect(
    t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine?.identifier),
  ).toBe(true);

  await t.sim.stage(name, 'healthy');
  await t.gone(name);
  expect(
    t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine?.identifier),
  ).toBe(false);
});

test('a Failed VPSieNode is deleted by the controller once the failed-node TTL has passed', async () => {
  t.sim.setTimings({ failedNodeTtlMs: 1_500 });
  try {
    const name = uniq('ttl');
    await t.sim.stage(name, 'capacity-limit');
    await t.createVN(name);
    const failed = await t.phase(name, 'Failed');
    const failedAt = Date.parse(condition(failed, 'Error')?.lastTransitionTime ?? '');
    await t.gone(name);
    const expired = t.logsAbout(name).find((l) => l.msg === 'VPSieNode TTL expired, initiating deletion');
    expect(expired).toMatchObject({ level: 'warn', ttl: '1.5s', lastError: failed.status?.lastError });
    expect(Date.parse(String(expired?.ts)) - failedAt).toBeGreaterThanOrEqual(1_500);
    expect(t.logsAbout(name).some((l) => l.msg === 'VPSieNode deleted due to TTL expiration')).toBe(true);
  } finally {
    t.sim.setTimings({ failedNodeTtlMs: 30 * 60_000 });
  }
});

test('an orphaned machine (its VPSieNode gone) stays in VPSie with its labelled Node; discovery never claims it', async () => {
  const { machine, vm } = await t.sim.addOrphan({ nodeGroup: 'gone-ng', withNode: true });
  expect(vm).toMatchObject({ hostname: machine.hostname, status: 'running' });
  expect(await t.getVN(machine.hostname)).toBeUndefined();
  expect((await t.node(machine.hostname))?.metadata?.labels).toMatchObject({
    'autoscaler.vpsie.com/nodegroup': 'gone-ng',
    'autoscaler.vpsie.com/vpsienode': machine.hostname,
  });
  const name = uniq('after-orphan');
  await t.createVN(name);
  await t.phase(name, 'Ready');
  expect(t.sim.machineOf(name)?.identifier).not.toBe(machine.identifier);
  expect((await t.node(machine.hostname))?.metadata?.labels?.['autoscaler.vpsie.com/vpsienode']).toBe(
    machine.hostname,
  );
  expect(t.vpsie.k8sCluster(t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine.identifier)).toBe(
    true,
  );
});
