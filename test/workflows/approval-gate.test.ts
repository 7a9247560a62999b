import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Decision } from '../../src/runbook';
import { MAX_REFUSED_RECORDS } from '../../src/workflows/approval';
import { approveSignal, decideUpdate, rejectSignal } from '../../src/workflows/messages';
import {
  gateStateQuery,
  releaseSignal,
  type ApprovalGateTestInput,
  type GateView,
  type approvalGateWorkflow,
} from '../support/approval-gate-workflow';
import { rejectsWith } from '../support/expect-rejection';
import { TestWorker, uniqueTaskQueue, type TemporalTestContext } from '../support/temporal';

const taskQueue = uniqueTaskQueue('approval-gate');
const testWorker = new TestWorker({
  taskQueue,
  workflowsPath: require.resolve('../support/approval-gate-workflow'),
});
let ctx: TemporalTestContext;

beforeAll(async () => {
  await testWorker.start();
  ctx = testWorker.ctx;
}, 120_000);
afterAll(() => testWorker.stop());

const HOUR = 3_600_000;
const deleteStep = {
  stepId: 'delete-vpsienode',
  kind: 'delete-vpsienode',
  target: { namespace: 'kube-system', name: 'ng-a-7x2k', uid: '4f0c-uid-1' },
};
const terminateStep = {
  stepId: 'terminate-vm',
  kind: 'terminate-vm',
  target: { vmID: 4242, hostname: 'ng-a-7x2k' },
};
const patchStep = {
  stepId: 'patch-nodegroup',
  kind: 'patch-nodegroup',
  target: { nodeGroup: 'kube-system/ng-a', field: 'kubernetesVersion', before: 'v1.29.1', after: 'v1.30.2' },
};

type Handle = WorkflowHandle<typeof approvalGateWorkflow>;

function start(input: Partial<ApprovalGateTestInput>): Promise<Handle> {
  return ctx.client.workflow.start<typeof approvalGateWorkflow>('approvalGateWorkflow', {
    taskQueue,
    workflowId: `approval-gate-${randomUUID()}`,
    args: [{ allowList: [], ttlMs: HOUR, autoApprove: [], steps: [deleteStep], ...input }],
  });
}

/** Polls the gate's state until `ok`; a query may reach the run before its first task completes. */
async function until(handle: Handle, ok: (s: GateView) => boolean, timeoutMs = 30_000): Promise<GateView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = await handle.query(gateStateQuery);
      if (ok(s)) return s;
      if (Date.now() > deadline)
        throw new Error(`gate never reached the expected state: ${JSON.stringify(s)}`);
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

const pendingIs = (stepId: string) => (s: GateView) => s.pendingApproval?.stepId === stepId;

/** A refused decision: the update fails with the reason, as the sender sees it. */
async function refused(handle: Handle, decision: Decision): Promise<string> {
  const err = await rejectsWith(
    handle.executeUpdate(decideUpdate, { args: [decision] }),
    WorkflowUpdateFailedError,
  );
  expect(err.cause).toBeInstanceOf(ApplicationFailure);
  return (err.cause as Error).message;
}

async function updateEvents(handle: Handle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter(
    (e) =>
      e.workflowExecutionUpdateAcceptedEventAttributes || e.workflowExecutionUpdateCompletedEventAttributes,
  ).length;
}

describe('approval gate', () => {
  it('waits for the pending step, shows its exact target and expiry, and an accepted update approves it', async () => {
    const handle = await start({ allowList: ['alice', 'bob'] });
    const { pendingApproval } = await until(handle, pendingIs('delete-vpsienode'));
    expect(pendingApproval).toMatchObject({
      stepId: 'delete-vpsienode',
      kind: 'delete-vpsienode',
      target: deleteStep.target,
    });
    expect(Date.parse(pendingApproval!.expiresAt) - Date.parse(pendingApproval!.requestedAt)).toBe(HOUR);

    const record = await handle.executeUpdate(decideUpdate, {
      args: [
        { stepId: 'delete-vpsienode', decision: 'approve', approver: 'alice', reason: 'VM is gone in VPSie' },
      ],
    });
    expect(record).toMatchObject({
      stepId: 'delete-vpsienode',
      decision: 'approve',
      approver: 'alice',
      reason: 'VM is gone in VPSie',
      via: 'update',
      accepted: true,
      refusal: null,
    });

    const result = await handle.result();
    expect(result.results).toEqual(['approved']);
    expect(result.state).toEqual({ pendingApproval: null, decisions: [record], refusedDecisions: [] });
    expect(result.pendingChanges.map((p) => p?.stepId ?? null)).toEqual(['delete-vpsienode', null]);
  });

  it('a refused update says why, changes nothing but the record of refusals: nothing pending, wrong step, approver not listed, reason over 1 KiB', async () => {
    const handle = await start({ allowList: ['alice', 'bob'], hold: true });
    const idle = await until(handle, () => true);
    expect(idle).toEqual({
      pendingApproval: null,
      decisions: [],
      refusedDecisions: [],
      results: [],
      pendingChanges: [],
    });
    expect(
      await refused(handle, { stepId: 'delete-vpsienode', decision: 'approve', approver: 'alice' }),
    ).toBe('no approval is pending: nothing to approve (stepId "delete-vpsienode")');
    const afterIdleRefusal = await handle.query(gateStateQuery);
    expect({ ...afterIdleRefusal, decisions: [], refusedDecisions: [] }).toEqual(idle);
    expect(afterIdleRefusal.decisions).toEqual(afterIdleRefusal.refusedDecisions);
    expect(afterIdleRefusal.refusedDecisions).toEqual([
      expect.objectContaining({
        stepId: 'delete-vpsienode',
        approver: 'alice',
        via: 'update',
        accepted: false,
        refusal: 'no approval is pending: nothing to approve (stepId "delete-vpsienode")',
      }),
    ]);

    await handle.signal(releaseSignal);
    const before = await until(handle, pendingIs('delete-vpsienode'));

    expect(await refused(handle, { stepId: 'terminate-vm', decision: 'approve', approver: 'alice' })).toBe(
      'stepId "terminate-vm" is not the pending step: "delete-vpsienode" (delete-vpsienode) awaits approval',
    );
    expect(
      await refused(handle, { stepId: 'delete-vpsienode', decision: 'approve', approver: 'mallory' }),
    ).toBe('approver "mallory" is not on the allow-list (alice, bob); names match exactly, case included');
    expect(
      await refused(handle, { stepId: 'delete-vpsienode', decision: 'approve', approver: 'Alice' }),
    ).toMatch(/approver "Alice" is not on the allow-list/);
    expect(
      await refused(handle, {
        stepId: 'delete-vpsienode',
        decision: 'approve',
        approver: 'bob',
        reason: 'x'.repeat(1025),
      }),
    ).toBe('reason must be at most 1024 bytes of UTF-8 (1 KiB), got 1025');
    expect(
      await refused(handle, {
        stepId: 'delete-vpsienode',
        decision: 'maybe',
        approver: 'bob',
      } as unknown as Decision),
    ).toBe('decision must be "approve" or "reject", got "maybe"');

    // Still pending, nothing else changed, and each refusal is on record, in the state and in history.
    const after = await handle.query(gateStateQuery);
    expect({ ...after, decisions: [], refusedDecisions: [] }).toEqual({
      ...before,
      decisions: [],
      refusedDecisions: [],
    });
    expect(after.refusedDecisions.map((d) => [d.stepId, d.approver, d.via, d.accepted])).toEqual([
      ['delete-vpsienode', 'alice', 'update', false],
      ['terminate-vm', 'alice', 'update', false],
      ['delete-vpsienode', 'mallory', 'update', false],
      ['delete-vpsienode', 'Alice', 'update', false],
      ['delete-vpsienode', 'bob', 'update', false],
      ['delete-vpsienode', 'bob', 'update', false],
    ]);
    expect(after.decisions.filter((d) => d.accepted)).toEqual([]);
    // each refused update: accepted for handling, completed with the refusal
    expect(await updateEvents(handle)).toBe(12);

    await handle.executeUpdate(decideUpdate, {
      args: [{ stepId: 'delete-vpsienode', decision: 'reject', approver: 'bob', reason: 'change freeze' }],
    });
    const result = await handle.result();
    expect(result.results).toEqual(['rejected']);
    expect(result.state.decisions.filter((d) => d.accepted)).toEqual([
      expect.objectContaining({
        decision: 'reject',
        approver: 'bob',
        reason: 'change freeze',
        accepted: true,
      }),
    ]);
    expect(result.state.refusedDecisions).toHaveLength(6);
  });

  it('signals approve and reject; a signal that does not count changes nothing and is recorded as refused', async () => {
    const handle = await start({
      allowList: ['alice', 'bob'],
      steps: [deleteStep, terminateStep],
      hold: true,
    });
    await until(handle, () => true);
    await handle.signal(approveSignal, { stepId: 'delete-vpsienode', approver: 'alice' });
    await until(handle, (s) => s.refusedDecisions.length === 1);

    await handle.signal(releaseSignal);
    const pending = (await until(handle, pendingIs('delete-vpsienode'))).pendingApproval;
    await handle.signal(approveSignal, { stepId: 'terminate-vm', approver: 'alice' });
    await handle.signal(approveSignal, { stepId: 'delete-vpsienode', approver: 'mallory' });
    const afterRefusals = await until(handle, (s) => s.refusedDecisions.length === 3);
    expect(afterRefusals.pendingApproval).toEqual(pending);
    expect(afterRefusals.decisions.every((d) => !d.accepted)).toBe(true);

    // The signal's name is the decision, whatever the payload claims.
    await handle.signal(approveSignal, {
      stepId: 'delete-vpsienode',
      approver: 'alice',
      decision: 'reject',
    } as never);
    await until(handle, pendingIs('terminate-vm'));
    await handle.signal(rejectSignal, {
      stepId: 'terminate-vm',
      approver: 'bob',
      reason: 'VM still serves traffic',
    });

    const result = await handle.result();
    expect(result.results).toEqual(['approved', 'rejected']);
    expect(result.state.pendingApproval).toBeNull();
    expect(result.state.refusedDecisions).toEqual([
      expect.objectContaining({
        stepId: 'delete-vpsienode',
        approver: 'alice',
        via: 'signal',
        accepted: false,
        refusal: 'no approval is pending: nothing to approve (stepId "delete-vpsienode")',
      }),
      expect.objectContaining({
        stepId: 'terminate-vm',
        accepted: false,
        refusal: expect.stringMatching(/^stepId "terminate-vm" is not the pending step/),
      }),
      expect.objectContaining({
        approver: 'mallory',
        accepted: false,
        refusal: expect.stringMatching(/^approver "mallory" is not on the allow-list/),
      }),
    ]);
    expect(result.state.decisions.map((d) => [d.stepId, d.decision, d.approver, d.accepted])).toEqual([
      ['delete-vpsienode', 'approve', 'alice', false],
      ['terminate-vm', 'approve', 'alice', false],
      ['delete-vpsienode', 'approve', 'mallory', false],
      ['delete-vpsienode', 'approve', 'alice', true],
      ['terminate-vm', 'reject', 'bob', true],
    ]);
    expect(result.state.decisions[4]).toMatchObject({ via: 'signal', reason: 'VM still serves traffic' });
  });

  it('keeps only the latest refused decisions, so a flood of bad signals cannot grow status', async () => {
    const handle = await start({ allowList: ['alice'] });
    await until(handle, pendingIs('delete-vpsienode'));
    for (let i = 0; i < MAX_REFUSED_RECORDS + 5; i++) {
      await handle.signal(approveSignal, { stepId: 'delete-vpsienode', approver: `spam-${i}` });
    }
    // Signals are handled in order: the accepted one comes after every refusal.
    await handle.signal(approveSignal, { stepId: 'delete-vpsienode', approver: 'alice' });
    const { results, state } = await handle.result();
    expect(results).toEqual(['approved']);
    expect(state.refusedDecisions).toHaveLength(MAX_REFUSED_RECORDS);
    expect(state.refusedDecisions[0].approver).toBe('spam-5');
    expect(state.refusedDecisions.at(-1)?.approver).toBe(`spam-${MAX_REFUSED_RECORDS + 4}`);
    expect(state.decisions.at(-1)).toMatchObject({ approver: 'alice', accepted: true });
    expect(state.decisions).toHaveLength(MAX_REFUSED_RECORDS + 1);
  });

  it('expires after the TTL without a decision, and a late decision is refused', async () => {
    const ttlMs = 2_000;
    const handle = await start({ ttlMs, holdAtEnd: true });
    // Wait for the expiry itself (the step's result), not for the pending state, which lasts only the TTL.
    const expired = await until(handle, (s) => s.results.length === 1);
    expect(expired.results).toEqual(['expired']);
    expect(expired.pendingApproval).toBeNull();
    expect(expired.decisions).toEqual([]);
    const [pending, cleared] = expired.pendingChanges;
    expect(pending).toMatchObject({ stepId: 'delete-vpsienode', target: deleteStep.target });
    expect(Date.parse(pending!.expiresAt) - Date.parse(pending!.requestedAt)).toBe(ttlMs);
    expect(cleared).toBeNull();

    expect(
      await refused(handle, { stepId: 'delete-vpsienode', decision: 'approve', approver: 'alice' }),
    ).toMatch(/^no approval is pending/);
    await handle.signal(approveSignal, { stepId: 'delete-vpsienode', approver: 'alice' });
    const late = await until(handle, (s) => s.refusedDecisions.length === 2);
    expect(late.refusedDecisions.map((d) => [d.via, d.refusal])).toEqual([
      ['update', expect.stringMatching(/^no approval is pending/)],
      ['signal', expect.stringMatching(/^no approval is pending/)],
    ]);

    await handle.signal(releaseSignal);
    const result = await handle.result();
    expect(result.results).toEqual(['expired']);
    expect(result.state.decisions.filter((d) => d.accepted)).toEqual([]);
    expect(result.pendingChanges).toHaveLength(2);
    // The run waited on a durable timer of the TTL, which fired.
    const events = (await handle.fetchHistory()).events ?? [];
    const timer = events.find((e) => e.timerStartedEventAttributes)?.timerStartedEventAttributes;
    expect(Number(timer?.startToFireTimeout?.seconds)).toBe(ttlMs / 1000);
    expect(events.some((e) => e.timerFiredEventAttributes)).toBe(true);
  });

  it('autoApprove: a listed kind is approved without a person and recorded as such; other kinds still wait', async () => {
    const handle = await start({ autoApprove: ['patch-nodegroup'], steps: [patchStep, deleteStep] });
    const waiting = await until(handle, pendingIs('delete-vpsienode'));
    expect(waiting.decisions).toEqual([
      expect.objectContaining({
        stepId: 'patch-nodegroup',
        decision: 'approve',
        approver: null,
        via: 'auto',
        accepted: true,
        reason: 'step kind "patch-nodegroup" is in autoApprove',
      }),
    ]);
    await handle.executeUpdate(decideUpdate, {
      args: [{ stepId: 'delete-vpsienode', decision: 'approve', approver: 'carol' }],
    });
    const result = await handle.result();
    expect(result.results).toEqual(['approved', 'approved']);
    // Only the step that needed a person was ever pending.
    expect(result.pendingChanges.map((p) => p?.stepId ?? null)).toEqual(['delete-vpsienode', null]);
    expect(result.state.decisions.map((d) => [d.stepId, d.via, d.approver])).toEqual([
      ['patch-nodegroup', 'auto', null],
      ['delete-vpsienode', 'update', 'carol'],
    ]);
  });
});
