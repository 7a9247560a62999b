/**
 * Upstream's NodeGroup controller, through the real apiserver: only NodeGroups labelled managed; any update
 * (an annotation such as `reconcile-trigger` included) wakes it; it keeps the count one VPSieNode at a time;
 * and it records only the Events upstream records (ScalingUp, ScalingDown, ValidationFailed, VPSieAPIError,
 * CapacityLimitReached, VPSieNodeGroupCreated).
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import { LABEL_MANAGED, LABEL_NODEGROUP, NODEGROUP_FINALIZER, RECONCILE_TRIGGER } from '../support/cluster';
import type { NodeGroupReconcile, VPSieNodeObj } from '../support/cluster';
import { condition, SimTest, uniq } from '../support/cluster/test-helpers';
import { MERGE } from '../support/cluster/util';

jest.setTimeout(120_000);

const t = new SimTest();
const NG_EVENTS = new Set([
  'ScalingUp',
  'ScalingDown',
  'ValidationFailed',
  'VPSieAPIError',
  'CapacityLimitReached',
  'VPSieNodeGroupCreated',
]);

beforeAll(() => t.start('clusterng'));
afterAll(() => t.stop());
afterEach(() => {
  expect(t.sim.errors).toEqual([]);
  expect(t.sim.events.filter((e) => e.kind === 'NodeGroup' && !NG_EVENTS.has(e.reason))).toEqual([]);
});

const ready = (vns: VPSieNodeObj[]) =>
  vns.filter((v) => v.status?.phase === 'Ready' && !v.metadata.deletionTimestamp);
const patchNG = (name: string, metadata: Record<string, unknown>, api: CustomObjectsApi = t.custom) =>
  api.patchNamespacedCustomObject({ ...t.crd('nodegroups'), name, body: { metadata } }, MERGE);
const reconcileAfter = (ng: string, since: number, where: (r: NodeGroupReconcile) => boolean = () => true) =>
  t.waitFor(`a reconcile of ${ng}`, async () =>
    t.sim.reconcilesOf(ng).find((r) => r.at.getTime() >= since && where(r)),
  );
const ngMessages = async (ng: string, reason: string) =>
  (await t.events(ng))
    .filter((e) => e.reason === reason && e.involvedObject.kind === 'NodeGroup')
    .map((e) => e.message);

test('a managed NodeGroup is kept at its count; a deleted VPSieNode is replaced under a new name', async () => {
  const ng = uniq('ng');
  await t.sim.createNodeGroup(ng, { minNodes: 2 });
  const first = await t.waitFor('2 Ready VPSieNodes', async () => {
    const vns = await t.listVNs(ng);
    return ready(vns).length === 2 ? vns : undefined;
  });
  const ngObj = await t.getNG(ng);
  expect(ngObj.metadata.finalizers).toContain(NODEGROUP_FINALIZER);
  const group = t.vpsie.k8sCluster(t.sim.vpsieCluster)?.groups.find((g) => g.name === ng);
  expect(ngObj.status).toMatchObject({ vpsieGroupID: group?.id, desiredNodes: 2 });
  for (const v of first) {
    expect(v.metadata.name).toMatch(new RegExp(`^${ng}-[0-9a-f]{8}$`));
    expect(v.metadata.labels).toEqual({ [LABEL_NODEGROUP]: ng, [LABEL_MANAGED]: 'true' });
    expect(v.metadata.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'NodeGroup', name: ng, uid: ngObj.metadata.uid, controller: true }),
    ]);
    expect(v.spec).toMatchObject({
      nodeGroupName: ng,
      instanceType: '101',
      vpsieGroupID: group?.id,
      resourceIdentifier: t.sim.vpsieCluster,
    });
  }
  expect(await ngMessages(ng, 'ScalingUp')).toEqual(
    expect.arrayContaining([
      'Scaling up from 0 to 2 nodes (+2 nodes)',
      'Scaling up from 1 to 2 nodes (+1 nodes)',
    ]),
  );
  await t.waitFor('status 2/2/2', async () => {
    const s = (await t.getNG(ng)).status;
    return (
      s?.currentNodes === 2 && s.readyNodes === 2 && condition({ status: s }, 'Ready')?.status === 'True'
    );
  });

  const victim = first[0].metadata.name;
  await t.deleteVN(victim, t.runbookCustom);
  const replacement = await t.waitFor('a replacement Ready and the victim gone', async () => {
    const vns = await t.listVNs(ng);
    const fresh = vns.find((v) => !first.some((f) => f.metadata.name === v.metadata.name));
    return !vns.some((v) => v.metadata.name === victim) && fresh?.status?.phase === 'Ready'
      ? fresh
      : undefined;
  });
  expect(t.sim.reconcilesOf(ng).find((r) => r.created.includes(replacement.metadata.name))?.reason).toBe(
    'vpsienodes-changed',
  );
});

test('a NodeGroup without the managed label is left alone until it gets the label', async () => {
  const ng = uniq('unmanaged');
  const since = Date.now();
  await t.sim.createNodeGroup(ng, { minNodes: 1 }, { managed: false });
  await reconcileAfter(ng, since, (r) => !r.managed);
  const untouched = await t.getNG(ng);
  expect(untouched.metadata.finalizers).toBeUndefined();
  expect(untouched.status?.vpsieGroupID).toBeUndefined();
  expect(await t.listVNs(ng)).toEqual([]);
  expect(await t.events(ng)).toEqual([]);

  const labelled = Date.now();
  await patchNG(ng, { labels: { [LABEL_MANAGED]: 'true' } });
  expect(await reconcileAfter(ng, labelled, (r) => r.reason === 'labels-changed')).toMatchObject({
    managed: true,
  });
  await t.waitFor('its VPSieNode Ready', async () => ready(await t.listVNs(ng)).length === 1);
  expect((await t.getNG(ng)).metadata.finalizers).toContain(NODEGROUP_FINALIZER);
});

test('any update wakes the NodeGroup controller: reconcile-trigger makes a stalled one replace its VPSieNode', async () => {
  const ng = uniq('trig');
  await t.sim.createNodeGroup(ng, { minNodes: 1 });
  const [vn] = await t.waitFor('1 Ready VPSieNode', async () => {
    const vns = await t.listVNs(ng);
    return ready(vns).length === 1 ? vns : undefined;
  });
  await t.sim.stallNodeGroup(ng); // it misses its VPSieNodes' events from now on
  try {
    await t.deleteVN(vn.metadata.name);
    await t.gone(vn.metadata.name);
    const before = t.sim.reconcilesOf(ng).length;
    await t.sim.sync(3); // ticks in which an unstalled controller would have reconciled on the VPSieNode's deletion
    expect(await t.listVNs(ng)).toEqual([]);
    expect(t.sim.reconcilesOf(ng)).toHaveLength(before);

    const trigger = String(Math.floor(Date.now() / 1000));
    const since = Date.now();
    await patchNG(ng, { annotations: { [RECONCILE_TRIGGER]: trigger } }, t.runbookCustom);
    const woke = await reconcileAfter(ng, since, (r) => r.reason === 'annotations-changed');
    expect(woke).toMatchObject({
      reason: 'annotations-changed',
      trigger,
      created: [expect.stringMatching(`^${ng}-`)],
    });
    expect(woke.at.getTime() - since).toBeLessThan(5_000); // at once, not at a requeue or resync

    // A label is an update too.
    const labelled = Date.now();
    await patchNG(ng, { labels: { team: 'a' } });
    expect(await reconcileAfter(ng, labelled, (r) => r.reason === 'labels-changed')).toMatchObject({
      created: [],
    });
  } finally {
    await t.sim.stallNodeGroup(ng, false);
  }
  await t.waitFor('the replacement Ready', async () => ready(await t.listVNs(ng)).length === 1);
});

test('scaling down deletes the excess VPSieNode and records ScalingDown', async () => {
  const ng = uniq('down');
  await t.sim.createNodeGroup(ng, { minNodes: 1, maxNodes: 3 }, { desiredNodes: 2 });
  await t.waitFor('2 Ready', async () => ready(await t.listVNs(ng)).length === 2);
  await t.sim.scaleNodeGroup(ng, 1);
  await t.waitFor(
    '1 VPSieNode left',
    async () => (await t.listVNs(ng)).filter((v) => !v.metadata.deletionTimestamp).length === 1,
  );
  expect(await ngMessages(ng, 'ScalingDown')).toContain('Scaling down from 2 to 1 nodes (-1 nodes)');
});

test('spec validation, a missing kubeSizeID and VPSie errors show as the NodeGroup Events upstream records', async () => {
  const [invalid, noSize, noCluster] = ['invalid', 'nosize', 'nocluster'].map(uniq);
  await Promise.all([
    t.sim.createNodeGroup(invalid, { minNodes: 3, maxNodes: 2 }),
    t.sim.createNodeGroup(noSize, { kubeSizeID: undefined }),
    t.sim.createNodeGroup(noCluster, { resourceIdentifier: 'no-such-cluster' }),
  ]);
  const messages = async (ng: string, reason: string) =>
    t.waitFor(`${reason} on ${ng}`, async () => {
      const m = await ngMessages(ng, reason);
      return m.length ? m : undefined;
    });
  expect(await messages(invalid, 'ValidationFailed')).toEqual([
    'Spec validation failed: minNodes (3) must be <= maxNodes (2)',
  ]);
  await t.waitFor('the validation error in status', async () => {
    const ngObj = await t.getNG(invalid);
    return (
      condition(ngObj, 'Error')?.reason === 'ValidationFailed' &&
      condition(ngObj, 'Error')?.message === 'minNodes (3) must be <= maxNodes (2)' &&
      condition(ngObj, 'Ready')?.status === 'False'
    );
  });
  expect(await messages(noSize, 'ValidationFailed')).toEqual([
    'KubeSizeID is required to create node group on VPSie platform',
  ]);
  const [listFailed] = await messages(noCluster, 'VPSieAPIError');
  expect(listFailed).toMatch(
    /^Failed to list node groups from VPSie: failed to list K8s node groups: VPSie API error \(status: 404\): Not Found - \{"error":true,"code":404,/,
  );
  for (const ng of [invalid, noSize, noCluster]) expect(await t.listVNs(ng)).toEqual([]);
});

test('scaling up past a VPSieNode failed for capacity: CapacityLimitReached, the failed one deleted, creation resumed', async () => {
  const ng = uniq('capng');
  await t.sim.stage({ nodeGroup: ng }, 'capacity-limit', { count: 1 });
  // Failed VPSieNodes count as current: the check only runs while the group still wants more nodes.
  await t.sim.createNodeGroup(ng, { minNodes: 1, maxNodes: 3 }, { desiredNodes: 3 });
  const messages = await t.waitFor('CapacityLimitReached', async () => {
    const m = await ngMessages(ng, 'CapacityLimitReached');
    return m.length ? m : undefined;
  });
  expect(messages).toEqual([
    'VPSie cluster capacity limit reached. 1 node(s) failed to provision. Node creation paused.',
  ]);
  const capacityFailed = t.sim.records.find(
    (r) => r.controller === 'vpsienode' && r.name.startsWith(ng) && r.phaseAfter === 'Failed',
  );
  await t.gone(capacityFailed?.name ?? '');
  // creation resumes: the NodeGroup creates a VPSieNode after the event
  const pausedAt =
    t.sim.events.find((e) => e.name === ng && e.reason === 'CapacityLimitReached')?.at ?? Infinity;
  await reconcileAfter(ng, pausedAt, (r) => r.created.length > 0);
});

test('upstream cannot write the status of a NodeGroup that has none; once the scale-up controller has, it works', async () => {
  const ng = uniq('nostatus');
  await t.sim.createNodeGroup(ng, { minNodes: 1 }, { desiredNodes: null });
  const refused = await t.sim.reconciled(
    { nodeGroup: ng },
    { after: 0, where: (r) => r.error !== undefined },
  );
  expect(refused.error).toMatch(/status\.currentNodes: Required value/);
  expect(t.logsAbout(ng).some((l) => l.msg === 'Failed to update status with VPSie group ID')).toBe(true);
  expect(await t.listVNs(ng)).toEqual([]);
  await t.sim.scaleNodeGroup(ng, 1);
  await t.waitFor('its VPSieNode Ready', async () => ready(await t.listVNs(ng)).length === 1);
});
