/**
 * The whole runbook end to end, one test per outcome and approval behaviour (issue 7 items 4, 5 and 7): the real
 * Temporal server and apiserver, the product's worker with its real activities, and the simulated controller
 * and VPSie. Most tests stage ProvisioningTimeout (a machine that never boots) and vary what people and the
 * cluster do around the approval. What did not happen is asserted only once the run is past the point where it
 * would have happened (waiting for approval, or completed). One test per cause is in runbook-causes.test.ts.
 */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApiException } from '@kubernetes/client-node';
import { ESCALATION_EVENT_REASON, type PendingApproval, type RunbookStatus } from '../../src/runbook';
import { rejectSignal } from '../../src/workflows/messages';
import * as sa from '../../src/workflows/search-attributes';
import { DEFAULT_TIMINGS, LABEL_MANAGED, RECONCILE_TRIGGER, type VPSieNodeObj } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { MERGE } from '../support/cluster/util';
import { rejectsWith } from '../support/expect-rejection';
import { recordHistory } from '../support/histories';
import { RunbookE2E, SIM_LIMIT_MS, type RunbookHandle } from '../support/runbook-e2e';
import type { SimK8sNode } from '../support/vpsie-simulator';

jest.setTimeout(180_000);

const e = new RunbookE2E('outcomes');

type Stuck = Awaited<ReturnType<typeof stuckNode>>;
/**
 * Each test's stuck VPSieNode, staged when the file starts (one NodeGroup per test), so that the controller's
 * provisioning limits pass together rather than one test after another. The runs are alerted in the tests, so each
 * test still sees its run from the start; the approval-expired run alone is alerted here too (its approval TTL then
 * passes beside the other tests), with what it showed while it waited.
 */
let staged: {
  appr: Promise<Stuck>;
  rej: Promise<Stuck>;
  exp: Promise<Stuck & { since: number; handle: RunbookHandle; pending: PendingApproval }>;
  dry: Promise<Stuck>;
  refuse: Promise<Stuck>;
  stale: Promise<Stuck>;
  swap: Promise<Stuck>;
  recon: Promise<Stuck>;
  norep: Promise<Stuck>;
  auto: Promise<Stuck>;
  vanish: Promise<Stuck>;
};

beforeAll(async () => {
  await e.start('outcomes');
  staged = e.staged({
    appr: stuckNode('appr'),
    rej: stuckNode('rej'),
    exp: stuckNode('exp').then(async (s) => {
      const since = e.mark();
      const handle = await e.alert(s.vn.metadata.name, { approvalTtl: '10s' });
      return { ...s, since, handle, pending: await e.pending(handle, STEP) };
    }),
    dry: stuckNode('dry'),
    refuse: stuckNode('refuse'),
    stale: stuckNode('stale'),
    swap: stuckNode('swap'),
    recon: stuckNode('recon'),
    norep: stuckNode('norep'),
    auto: stuckNode('auto'),
    vanish: stuckNode('vanish'),
  });
}, 120_000);

/**
 * Nothing is removed at the end (removing each test's NodeGroup after it only kept the controller's loop quick for
 * the next test): the namespace and the simulators are this file's own, and the apiserver goes with the test run.
 */
afterAll(() => e.stop(), 120_000);

afterEach(() => {
  expect(e.t.sim.errors).toEqual([]);
});

const STEP = 'delete-vpsienode';

/** A NodeGroup whose one VPSieNode gets a machine that never boots: ProvisioningTimeout once the limit passes. */
async function stuckNode(prefix: string): Promise<{ ng: string; vn: VPSieNodeObj; machine: SimK8sNode }> {
  const ng = uniq(prefix);
  await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng);
  const [vn] = await e.t.waitFor(`${ng}'s VPSieNode with its VM id`, async () => {
    const vns = await e.t.listVNs(ng);
    return vns.length === 1 && vns[0].spec.vpsieInstanceID > 0 ? vns : undefined;
  });
  return { ng, vn, machine: machineOf(vn.metadata.name) };
}

/** The machine VPSie made for a VPSieNode (by name). */
const machineOf = (name: string) => {
  const m = e.t.sim.machineOf(name);
  if (!m) throw new Error(`no machine for ${name}`);
  return m;
};

async function searchAttributes(handle: RunbookHandle) {
  const { typedSearchAttributes: s } = await handle.describe();
  return {
    approvalPending: s.get(sa.ApprovalPending),
    cause: s.get(sa.RunbookCause),
    nodeGroup: s.get(sa.NodeGroup),
    outcome: s.get(sa.RunbookOutcome),
    stage: s.get(sa.RunbookStage),
  };
}

/** Search attributes are written with the workflow task that changed the status: poll until they show it. */
function searchAttributesWhen(
  handle: RunbookHandle,
  what: string,
  ok: (s: Awaited<ReturnType<typeof searchAttributes>>) => boolean,
) {
  return e.t.waitFor(`search attributes: ${what}`, async () => {
    const s = await searchAttributes(handle);
    return ok(s) ? s : undefined;
  });
}

/** Every value the run wrote to ApprovalPending, in order (each write is an event in history). */
async function approvalPendingWrites(handle: RunbookHandle): Promise<unknown[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).flatMap((ev) => {
    const fields = ev.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    const p = fields?.[sa.ApprovalPending.name];
    return p?.data ? [JSON.parse(Buffer.from(p.data).toString('utf8')) as unknown] : [];
  });
}

async function runIdOf(handle: RunbookHandle): Promise<string> {
  return (await handle.describe()).runId;
}

/** The VPSieNode is still the one diagnosed: same UID, not being deleted. */
async function untouched(name: string, uid: string): Promise<void> {
  const now = await e.t.getVN(name);
  expect(now?.metadata.uid).toBe(uid);
  expect(now?.metadata.deletionTimestamp).toBeUndefined();
}

/** The VPSieNode, its machine and its NodeGroup as they were: no delete, no write to VPSie, no annotation. */
async function nothingTouched(
  t: { ng: string; name: string; uid: string; machine: { identifier: string; vmId?: number | null } },
  since: number,
): Promise<void> {
  await untouched(t.name, t.uid);
  expect(e.productWrites(since)).toEqual([]);
  expect(e.machineDeletes(t.machine, since)).toEqual([]);
  expect((await e.t.getNG(t.ng)).metadata.annotations?.[RECONCILE_TRIGGER]).toBeUndefined();
}

/** The run ended with `outcome` and touched nothing (search attributes say so too); records its history. */
async function endedTouchingNothing(
  handle: RunbookHandle,
  t: Parameters<typeof nothingTouched>[0],
  since: number,
  outcome: string,
  historyFile: string,
): Promise<void> {
  await nothingTouched(t, since);
  expect(await searchAttributesWhen(handle, 'outcome', (s) => s.outcome !== undefined)).toMatchObject({
    approvalPending: false,
    outcome,
  });
  await recordHistory(handle.workflowId, await runIdOf(handle), historyFile);
}

const stepOf = (s: { plan?: RunbookStatus['plan'] }, id: string) => s.plan?.find((x) => x.id === id);

test('waiting for approval shows the exact target and its expiry; nothing is touched before; approve → Remediated with one delete', async () => {
  const { ng, vn, machine } = await staged.appr;
  const { name, uid } = vn.metadata;
  const since = e.mark();
  const handle = await e.alert(name);

  const pending = await e.pending(handle, STEP);
  expect(pending).toEqual({
    stepId: STEP,
    kind: 'delete-vpsienode',
    target: { kind: 'VPSieNode', namespace: e.t.ns, name, uid },
    action: expect.stringContaining(`Delete ${e.t.ns}/${name} (uid ${uid})`),
    requestedAt: expect.any(String),
    expiresAt: expect.any(String),
  });
  // FAST_OPTIONS: approvalTtl 10m
  expect(Date.parse(pending.expiresAt) - Date.parse(pending.requestedAt)).toBe(600_000);
  const status = await e.status(handle);
  expect(status).toMatchObject({
    stage: 'awaiting-approval',
    cause: 'ProvisioningTimeout',
    currentStep: STEP,
    decisions: [],
  });
  expect(stepOf(status, STEP)?.state).toBe('awaiting-approval');
  expect(
    await searchAttributesWhen(handle, 'approval pending', (s) => s.approvalPending === true),
  ).toMatchObject({
    approvalPending: true,
    cause: 'ProvisioningTimeout',
    nodeGroup: ng,
    stage: 'awaiting-approval',
  });
  // The run is waiting for a person: nothing destructive has happened.
  await untouched(name, uid);
  expect(e.productWrites(since)).toEqual([]);
  expect(e.machineDeletes(machine, since)).toEqual([]);

  const decision = await e.decide(handle, STEP, 'approve', 'alice', 'the VM never booted');
  expect(decision).toMatchObject({ stepId: STEP, decision: 'approve', approver: 'alice', accepted: true });

  const report = await e.result(handle);
  expect(report.outcome).toBe('Remediated');
  expect(report.escalation).toBeNull();
  expect(report.decisions).toEqual([
    expect.objectContaining({ stepId: STEP, approver: 'alice', via: 'update', accepted: true }),
  ]);
  expect(report.plan?.map((s) => [s.id, s.state])).toEqual([
    [STEP, 'done'],
    ['wait-machine-gone', 'done'],
    ['wait-vpsienode-gone', 'done'],
    ['wait-replacement', 'done'],
    ['reconcile-nodegroup', 'skipped'],
    ['wait-replacement-after-reconcile', 'skipped'],
    ['wait-replacement-ready', 'done'],
  ]);
  // Exactly one delete: the old object is gone, its machine was removed once (by the controller, through its
  // finalizer), and the product itself removed nothing in VPSie.
  expect(await e.t.getVN(name)).toBeUndefined();
  expect(
    e.t.vpsie.k8sCluster(e.t.sim.vpsieCluster)?.nodes.some((n) => n.identifier === machine.identifier),
  ).toBe(false);
  expect(e.machineDeletes(machine, since)).toEqual([
    `DELETE /k8s/cluster/byId/${e.t.sim.vpsieCluster}/delete/slave by controller`,
  ]);
  expect(e.productWrites(since)).toEqual([]);
  const replacement = report.replacement!;
  expect(replacement.uid).not.toBe(uid);
  expect(replacement.name).toMatch(new RegExp(`^${ng}-`));
  expect((await e.t.getVN(replacement.name))?.status?.phase).toBe('Ready');
  expect((await e.t.listVNs(ng)).map((v) => v.metadata.uid)).toEqual([replacement.uid]);

  expect(await searchAttributesWhen(handle, 'outcome', (s) => s.outcome !== undefined)).toMatchObject({
    approvalPending: false,
    outcome: 'Remediated',
    stage: 'completed',
  });
  expect(await approvalPendingWrites(handle)).toEqual([false, true, false]);
});

test('rejected: the decision is recorded with approver and reason, and nothing is touched', async () => {
  const { ng, vn, machine } = await staged.rej;
  const { name, uid } = vn.metadata;
  const since = e.mark();
  const handle = await e.alert(name);
  await e.pending(handle, STEP);

  await handle.signal(rejectSignal, { stepId: STEP, approver: 'bob', reason: 'investigating the VM first' });
  const report = await e.result(handle);
  expect(report.outcome).toBe('Rejected');
  expect(report.decisions).toEqual([
    expect.objectContaining({
      stepId: STEP,
      decision: 'reject',
      approver: 'bob',
      reason: 'investigating the VM first',
      via: 'signal',
      accepted: true,
      refusal: null,
    }),
  ]);
  expect(stepOf(report, STEP)).toMatchObject({ state: 'rejected', result: 'rejected by bob' });
  expect(report.plan?.filter((s) => s.id !== STEP).every((s) => s.state === 'pending')).toBe(true);
  expect(report.escalation).toBeNull();
  const status = await e.status(handle);
  expect(status.pendingApproval).toBeNull();

  await endedTouchingNothing(handle, { ng, name, uid, machine }, since, 'Rejected', 'whole-rejected.json');
});

test('dry run: evidence, cause and the whole plan, every step pending; nothing touched, no approval asked', async () => {
  const { ng, vn, machine } = await staged.dry;
  const { name, uid } = vn.metadata;
  const since = e.mark();
  const handle = await e.alert(name, { dryRun: true });

  const report = await e.result(handle);
  expect(report.outcome).toBe('DryRun');
  expect(report.cause).toBe('ProvisioningTimeout');
  expect(report.reasons?.length).toBeGreaterThan(0);
  expect(report.evidence?.vpsieNode?.uid).toBe(uid);
  expect(report.evidence?.machine.status).toBe('ok');
  expect(report.plan?.map((s) => s.id)).toEqual([
    STEP,
    'wait-machine-gone',
    'wait-vpsienode-gone',
    'wait-replacement',
    'reconcile-nodegroup',
    'wait-replacement-after-reconcile',
    'wait-replacement-ready',
  ]);
  expect(report.plan?.every((s) => s.state === 'pending' && s.startedAt === null)).toBe(true);
  expect(stepOf(report, STEP)?.target).toEqual({ kind: 'VPSieNode', namespace: e.t.ns, name, uid });
  expect(report.decisions).toEqual([]);
  expect(report.escalation).toBeNull();

  const status = await e.status(handle);
  expect(status).toMatchObject({ dryRun: true, pendingApproval: null, refusedDecisions: [] });
  // No approval was ever asked for: ApprovalPending was written once, false at the start, and never again.
  expect(await approvalPendingWrites(handle)).toEqual([false]);

  await nothingTouched({ ng, name, uid, machine }, since);
  expect(await searchAttributesWhen(handle, 'outcome', (s) => s.outcome !== undefined)).toMatchObject({
    approvalPending: false,
    outcome: 'DryRun',
    cause: 'ProvisioningTimeout',
  });
  await recordHistory(handle.workflowId, await runIdOf(handle), 'whole-dry-run.json');
});

test('refused decisions: an approver off the allow-list or a wrong step is refused, a bad signal changes nothing; then alice approves', async () => {
  const { vn } = await staged.refuse;
  const { name, uid } = vn.metadata;
  const since = e.mark();
  const handle = await e.alert(name, { approvers: ['alice'] });
  await e.pending(handle, STEP);
  expect((await e.status(handle)).approvers).toEqual(['alice']);

  const offList = await rejectsWith(e.decide(handle, STEP, 'approve', 'mallory'), WorkflowUpdateFailedError);
  expect((offList.cause as Error).message).toMatch(/approver "mallory" is not on the allow-list \(alice\)/);
  const wrongStep = await rejectsWith(
    e.decide(handle, 'terminate-machine', 'approve', 'alice'),
    WorkflowUpdateFailedError,
  );
  expect((wrongStep.cause as Error).message).toMatch(
    /stepId "terminate-machine" is not the pending step: "delete-vpsienode"/,
  );

  await e.signal(handle, STEP, 'approve', 'mallory');
  const afterSignal = await e.statusWhen(
    handle,
    "mallory's signal recorded",
    (s) => s.refusedDecisions.length > 0,
  );
  // Every refusal is on record, the updates' and the signal's.
  expect(afterSignal.refusedDecisions).toEqual([
    expect.objectContaining({ approver: 'mallory', via: 'update', accepted: false }),
    expect.objectContaining({
      stepId: 'terminate-machine',
      approver: 'alice',
      via: 'update',
      accepted: false,
    }),
    expect.objectContaining({
      stepId: STEP,
      decision: 'approve',
      approver: 'mallory',
      via: 'signal',
      accepted: false,
      refusal: expect.stringContaining('not on the allow-list (alice)'),
    }),
  ]);
  expect(afterSignal.pendingApproval?.stepId).toBe(STEP);
  expect(afterSignal.stage).toBe('awaiting-approval');
  await untouched(name, uid);
  expect(e.productWrites(since)).toEqual([]);

  await e.decide(handle, STEP, 'approve', 'alice');
  const report = await e.result(handle);
  expect(report.outcome).toBe('Remediated');
  expect(report.decisions?.map((d) => [d.approver, d.via, d.accepted])).toEqual([
    ['mallory', 'update', false],
    ['alice', 'update', false],
    ['mallory', 'signal', false],
    ['alice', 'update', true],
  ]);
  expect(await e.t.getVN(name)).toBeUndefined();
});

test('stale target: the VPSieNode replaced by someone after the diagnosis is refused by the UID precondition and left alone', async () => {
  const { vn } = await staged.stale;
  const { name, uid } = vn.metadata;
  // The approval watcher looks once per approvalRecheckInterval: an hour, so it does not look during this test and the
  // approved delete meets the replaced object.
  const handle = await e.alert(name, { approvalRecheckInterval: '1h' });
  const pending = await e.pending(handle, STEP);
  expect(pending.target).toMatchObject({ uid });

  // Someone deletes it (the controller removes its machine and finalizer) and creates one of the same name.
  await e.t.deleteVN(name);
  await e.t.gone(name);
  const impostor = await e.t.createVN(name);
  expect(impostor.metadata.uid).not.toBe(uid);
  const since = e.mark();

  await e.decide(handle, STEP, 'approve', 'alice');
  const report = await e.result(handle);
  expect(report.outcome).toBe('Escalated');
  expect(report.escalation).toMatchObject({ kind: 'precondition-failed', step: STEP });
  expect(report.escalation?.reason).toMatch(/refused because the target changed after the diagnosis/);
  expect(stepOf(report, STEP)).toMatchObject({
    state: 'failed',
    result: expect.stringMatching(/^PreconditionFailed: /),
  });
  expect(report.error).toMatchObject({ type: 'PreconditionFailed' });
  expect(
    (await e.t.events(name))
      .filter((ev) => ev.reason === ESCALATION_EVENT_REASON)
      .map((ev) => ev.involvedObject.uid),
  ).toEqual([uid]);
  // The same-named newcomer is still there, untouched.
  await untouched(name, impostor.metadata.uid);
  expect(e.productWrites(since)).toEqual([]);
  expect(e.t.vpsie.requestsTo('DELETE').filter((r) => r.seq > since)).toEqual([]);
});

test('approval expired: the run escalates (RunbookEscalated Event) and touches nothing', async () => {
  // alerted when the file started (see `staged`); `pending` is what it showed while it waited. Its mark is from
  // before that alert, so this test must come before any in which the product writes to VPSie (machine left behind).
  const { ng, vn, machine, since, handle, pending } = await staged.exp;
  const { name, uid } = vn.metadata;
  expect(Date.parse(pending.expiresAt) - Date.parse(pending.requestedAt)).toBe(10_000);

  const report = await e.result(handle);
  expect(report.outcome).toBe('ApprovalExpired');
  expect(report.escalation).toMatchObject({
    kind: 'approval-expired',
    step: STEP,
    cause: 'ProvisioningTimeout',
    uid,
    ref: { namespace: e.t.ns, name },
  });
  expect(report.escalation?.record).not.toBeNull();
  expect(report.decisions).toEqual([]);
  expect(stepOf(report, STEP)).toMatchObject({ state: 'expired', result: 'nobody decided in time' });

  const escalated = (await e.t.events(name)).filter((ev) => ev.reason === ESCALATION_EVENT_REASON);
  expect(escalated).toHaveLength(1);
  expect(escalated[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'VPSieNode', name, uid } });

  await endedTouchingNothing(
    handle,
    { ng, name, uid, machine },
    since,
    'ApprovalExpired',
    'whole-approval-expired.json',
  );
});

test('stale target seen while waiting: the approval watcher finds the VPSieNode replaced → VPSieNodeGone, the newcomer left alone', async () => {
  const { vn } = await staged.swap;
  const { name, uid } = vn.metadata;
  const handle = await e.alert(name);
  const pending = await e.pending(handle, STEP);

  await e.t.deleteVN(name);
  await e.t.gone(name);
  const impostor = await e.t.createVN(name);
  expect(impostor.metadata.uid).not.toBe(uid);
  // The watcher first looks one approvalRecheckInterval (10 s) after the request: the replacement is complete before,
  // so that look sees the newcomer, not the moment in between when the name is free.
  expect(Date.now()).toBeLessThan(Date.parse(pending.requestedAt) + 10_000);
  const since = e.mark();

  const report = await e.result(handle);
  expect(report.outcome).toBe('VPSieNodeGone');
  expect(stepOf(report, STEP)).toMatchObject({
    state: 'skipped',
    result: `VPSieNode ${e.t.ns}/${name} is now another object (uid ${impostor.metadata.uid}): someone replaced it`,
  });
  expect(report.decisions).toEqual([]);
  expect((await e.status(handle)).pendingApproval).toBeNull();
  await untouched(name, impostor.metadata.uid);
  expect(e.productWrites(since)).toEqual([]);
  expect(e.t.vpsie.requestsTo('DELETE').filter((r) => r.seq > since)).toEqual([]);
});

/**
 * "Someone removed the finalizer by hand": `kubectl patch --type=merge -p '{"metadata":{"finalizers":null}}'`,
 * then `kubectl delete`. The controller adds its finalizer back to an object that lacks it, so the delete is
 * made on the version without it (a resourceVersion precondition) and the pair is tried again if the controller
 * wrote in between: the object goes at once and the controller never gets to remove the machine.
 */
async function removeBypassingFinalizer(name: string): Promise<void> {
  const target = { ...e.t.crd('vpsienodes'), name };
  for (;;) {
    if (!(await e.t.getVN(name))) return;
    const patched = (await e.t.custom.patchNamespacedCustomObject(
      { ...target, body: { metadata: { finalizers: null } } },
      MERGE,
    )) as VPSieNodeObj;
    try {
      await e.t.custom.deleteNamespacedCustomObject({
        ...target,
        body: { preconditions: { resourceVersion: patched.metadata.resourceVersion } },
      });
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) continue;
      throw err;
    }
  }
}

test('machine left behind: the VPSieNode vanished but its VM did not → terminate-machine, approved → VM gone → Remediated', async () => {
  // The run must have seen the VPSieNode: it waits for the controller (long limits on both sides), and the object
  // vanishes meanwhile without its machine.
  // The longer limit applies to the whole namespace: first every staged VPSieNode must have failed (or gone), so
  // that none of them is kept provisioning by it.
  await stagedPastProvisioning();
  e.t.sim.setTimings({ provisioningTimeoutMs: 3_600_000 });
  try {
    await machineLeftBehind();
  } finally {
    e.t.sim.setTimings({ provisioningTimeoutMs: SIM_LIMIT_MS });
  }
});

/** Waits until the controller failed every staged VPSieNode that is still there (the same object). */
async function stagedPastProvisioning(): Promise<void> {
  const settled = await Promise.allSettled(Object.values(staged));
  await Promise.all(
    settled.flatMap((r) => {
      if (r.status === 'rejected') return [];
      const { name, uid } = r.value.vn.metadata;
      return [
        e.t.waitFor(`${name} failed or gone`, async () => {
          const now = await e.t.getVN(name);
          return !now || now.metadata.uid !== uid || now.status?.phase === 'Failed';
        }),
      ];
    }),
  );
}

async function machineLeftBehind(): Promise<void> {
  const { ng, vn } = await stuckNode('left');
  const { name, uid } = vn.metadata;
  const vmId = vn.spec.vpsieInstanceID;
  const vm = e.t.vpsie.getVM(vmId)!;
  expect(vm).toBeDefined();
  const handle = await e.alert(name, { provisioningLimit: '1h' });
  await e.statusWhen(
    handle,
    'waiting for the controller',
    (s) => s.stage === 'waiting-for-controller' && s.progress?.kind === 'in-progress',
  );

  await removeBypassingFinalizer(name);
  expect(e.t.vpsie.getVM(vmId)).toBeDefined();
  const since = e.mark();

  const pending = await e.pending(handle, 'terminate-machine');
  expect(pending).toMatchObject({
    kind: 'terminate-machine',
    target: { kind: 'VM', id: vmId, identifier: vm.identifier, hostname: vm.hostname, nodeGroup: ng },
  });
  const status = await e.status(handle);
  expect(status).toMatchObject({ cause: 'VPSieNodeGone', stage: 'awaiting-approval' });
  expect(status.reasons.map((r) => r.finding)).toEqual(['vpsienode-gone', 'machine-left']);
  expect(status.plan.map((s) => s.id)).toEqual(['terminate-machine']);
  expect(
    await searchAttributesWhen(handle, 'approval pending', (s) => s.approvalPending === true),
  ).toMatchObject({
    cause: 'VPSieNodeGone',
    nodeGroup: ng,
  });
  expect(e.productWrites(since)).toEqual([]);
  expect(e.t.vpsie.getVM(vmId)).toBeDefined();

  // The NodeGroup replaces its VPSieNode meanwhile; a replacement still waiting for its machine might adopt the
  // orphan, and the terminate would (rightly) refuse. Approve once it is Ready, as a person would see it.
  await e.t.waitFor('the NodeGroup replacement Ready', async () =>
    (await e.t.listVNs(ng)).some((v) => v.metadata.uid !== uid && v.status?.phase === 'Ready'),
  );
  await e.decide(handle, 'terminate-machine', 'approve', 'alice');
  const report = await e.result(handle);
  expect(report.outcome).toBe('Remediated');
  expect(stepOf(report, 'terminate-machine')).toMatchObject({ state: 'done', result: 'terminated' });
  expect(e.t.vpsie.getVM(vmId)).toBeUndefined();
  expect(e.productWrites(since)).toEqual([`DELETE /vm/${vmId}`]);
  expect(await searchAttributesWhen(handle, 'outcome', (s) => s.outcome !== undefined)).toMatchObject({
    approvalPending: false,
    outcome: 'Remediated',
  });
  await recordHistory(handle.workflowId, await runIdOf(handle), 'whole-terminate-machine.json');
}

test('no replacement in time: reconcile-trigger on the NodeGroup, the replacement comes → Remediated', async () => {
  const { ng, vn } = await staged.recon;
  const { name, uid } = vn.metadata;
  const handle = await e.alert(name, { replacementWait: '10s' });
  await e.pending(handle, STEP);
  // From now on the NodeGroup controller misses its VPSieNodes' events: only an update of the NodeGroup wakes it.
  await e.t.sim.stallNodeGroup(ng);
  try {
    await e.decide(handle, STEP, 'approve', 'alice');
    const report = await e.result(handle);
    expect(report.outcome).toBe('Remediated');
    expect(report.plan?.map((s) => [s.id, s.state])).toEqual([
      [STEP, 'done'],
      ['wait-machine-gone', 'done'],
      ['wait-vpsienode-gone', 'done'],
      ['wait-replacement', 'expired'],
      ['reconcile-nodegroup', 'done'],
      ['wait-replacement-after-reconcile', 'done'],
      ['wait-replacement-ready', 'done'],
    ]);
    const trigger = (await e.t.getNG(ng)).metadata.annotations?.[RECONCILE_TRIGGER];
    expect(trigger).toMatch(/^\d+$/);
    const replacement = report.replacement!;
    expect(replacement.uid).not.toBe(uid);
    expect(e.t.sim.reconcilesOf(ng).find((r) => r.created.includes(replacement.name))).toMatchObject({
      reason: 'annotations-changed',
      trigger,
    });
    expect((await e.t.getVN(replacement.name))?.status?.phase).toBe('Ready');
  } finally {
    await e.t.sim.stallNodeGroup(ng, false);
  }
});

test('no replacement even after reconcile-trigger: the second wait expires → Escalated (wait-expired)', async () => {
  const { ng, vn } = await staged.norep;
  const { name } = vn.metadata;
  const handle = await e.alert(name, { replacementWait: '10s' });
  await e.pending(handle, STEP);
  // Someone took the NodeGroup out of the autoscaler's hands after the diagnosis: its controller ignores it now.
  await e.t.custom.patchNamespacedCustomObject(
    { ...e.t.crd('nodegroups'), name: ng, body: { metadata: { labels: { [LABEL_MANAGED]: null } } } },
    MERGE,
  );
  // The controller watches NodeGroups and VPSieNodes apart: before the delete, it must have seen the NodeGroup
  // unmanaged, or a busy controller may replace the deleted node from its older view of the group.
  await e.t.waitFor(`the controller reconciled ${ng} as unmanaged`, async () =>
    e.t.sim.reconcilesOf(ng).some((r) => !r.managed),
  );
  await e.decide(handle, STEP, 'approve', 'alice');
  const report = await e.result(handle);
  expect(report.outcome).toBe('Escalated');
  expect(report.escalation).toMatchObject({ kind: 'wait-expired', step: 'wait-replacement-after-reconcile' });
  expect(report.plan?.map((s) => [s.id, s.state])).toEqual([
    [STEP, 'done'],
    ['wait-machine-gone', 'done'],
    ['wait-vpsienode-gone', 'done'],
    ['wait-replacement', 'expired'],
    ['reconcile-nodegroup', 'done'],
    ['wait-replacement-after-reconcile', 'expired'],
    ['wait-replacement-ready', 'pending'],
  ]);
  expect((await e.t.getNG(ng)).metadata.annotations?.[RECONCILE_TRIGGER]).toMatch(/^\d+$/);
  expect(await e.t.listVNs(ng)).toEqual([]);
  expect((await e.t.events(name)).filter((ev) => ev.reason === ESCALATION_EVENT_REASON)).toHaveLength(1);
  expect(report.replacement).toBeNull();
});

test('autoApprove delete-vpsienode: no person asked, the decision recorded as auto → Remediated', async () => {
  const { vn } = await staged.auto;
  const { name, uid } = vn.metadata;
  const handle = await e.alert(name, { autoApprove: ['delete-vpsienode'] });
  const report = await e.result(handle);
  expect(report.outcome).toBe('Remediated');
  expect(report.decisions).toEqual([
    expect.objectContaining({
      stepId: STEP,
      decision: 'approve',
      approver: null,
      via: 'auto',
      accepted: true,
      reason: 'step kind "delete-vpsienode" is in autoApprove',
    }),
  ]);
  expect(report.replacement?.uid).not.toBe(uid);
  expect(await e.t.getVN(name)).toBeUndefined();
  // Never asked: ApprovalPending was written once, false at the start, and never again.
  expect(await approvalPendingWrites(handle)).toEqual([false]);
});

// Last: it shortens the controller's FailedVPSieNodeTTL for the whole namespace, which deletes every Failed
// VPSieNode, and the other tests' staged ones must stay until their tests are done.
test('target vanishing while waiting for approval: the controller deletes the Failed VPSieNode → VPSieNodeGone, approval dropped', async () => {
  const { vn, machine } = await staged.vanish;
  const { name, uid } = vn.metadata;
  const handle = await e.alert(name);
  expect((await e.pending(handle, STEP)).target).toMatchObject({ uid });
  await e.t.phase(name, 'Failed');
  const since = e.mark();

  // The controller deletes a Failed VPSieNode FailedVPSieNodeTTL after it failed (30 min in production): here it
  // is shortened, and the manager's resync makes the controller look again at once rather than in 30 minutes.
  e.t.sim.setTimings({ failedNodeTtlMs: 1, syncPeriodMs: 100 });
  try {
    await e.t.gone(name);
  } finally {
    e.t.sim.setTimings({
      failedNodeTtlMs: DEFAULT_TIMINGS.failedNodeTtlMs,
      syncPeriodMs: DEFAULT_TIMINGS.syncPeriodMs,
    });
  }

  const report = await e.result(handle);
  expect(report.outcome).toBe('VPSieNodeGone');
  expect(report.escalation).toBeNull();
  expect(report.decisions).toEqual([]);
  expect(stepOf(report, STEP)).toMatchObject({
    state: 'skipped',
    result: expect.stringMatching(new RegExp(`^VPSieNode ${e.t.ns}/${name} no longer exists`)),
  });
  expect(report.plan?.filter((s) => s.id !== STEP).every((s) => s.state === 'pending')).toBe(true);
  const status = await e.status(handle);
  expect(status.pendingApproval).toBeNull();
  expect(e.t.logsAbout(name).some((l) => l.msg === 'VPSieNode TTL expired, initiating deletion')).toBe(true);
  // The controller removed the machine through the finalizer; the product removed nothing.
  expect(e.machineDeletes(machine, since)).toEqual([
    `DELETE /k8s/cluster/byId/${e.t.sim.vpsieCluster}/delete/slave by controller`,
  ]);
  expect(e.productWrites(since)).toEqual([]);
  expect(await searchAttributesWhen(handle, 'outcome', (s) => s.outcome !== undefined)).toMatchObject({
    approvalPending: false,
    outcome: 'VPSieNodeGone',
  });
  await recordHistory(handle.workflowId, await runIdOf(handle), 'whole-vpsienode-gone.json');
});
