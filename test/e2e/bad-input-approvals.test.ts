/**
 * Issue 10, "Bad input refused": bad approvals of real runs, end to end, the way people send them: the `decide`
 * update (what `vpsie-runbook approve` and `temporal workflow update execute` use), the `approve`/`reject`
 * signals (the Web UI's "Send a Signal"), and the built CLI. Runs of a VPSieNode whose machine never boots
 * (ProvisioningTimeout) wait for approval of `delete-vpsienode`, with approvers alice and bob.
 *
 * Each bad decision is refused with a message naming what is wrong; the run's state does not move (the status
 * a person reads is the same before and after, but for the record of the refusal); and it is recorded: every
 * refused signal, update and CLI call that reached the run in `status.refusedDecisions` (the latest 50) and in
 * its history, and in the error its sender gets. The pure checks
 * are in test/unit/approval.test.ts and the gate's workflow-level behaviour in test/workflows/approval-gate.test.ts.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { DecisionRecord, RunbookStatus } from '../../src/runbook';
import { MAX_REASON_BYTES, utf8Length } from '../../src/runbook/approval';
import { MAX_REFUSED_RECORDS } from '../../src/workflows/approval';
import { approveSignal, rejectSignal } from '../../src/workflows/messages';
import { uniq } from '../support/cluster/test-helpers';
import type { VPSieNodeObj } from '../support/cluster';
import { builtCli, cliOn, explain, type CliRun } from '../support/cli';
import { RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';

jest.setTimeout(180_000);

const e = new RunbookE2E('bad-approvals');
const STEP = 'delete-vpsienode';
const APPROVERS = ['alice', 'bob'];
const cli = cliOn(e.taskQueue);

interface Staged {
  vn: VPSieNodeObj;
  handle: RunbookHandle;
  ref: string;
  workflowId: string;
}

/**
 * A NodeGroup whose first VPSieNode gets a machine that never boots, and its run, waiting for approval of the
 * delete. Its waits are long (goneWait 30 minutes), so that an approved run whose machine cannot be removed
 * stays in `remediating` for as long as a test needs.
 */
async function stage(prefix: string): Promise<Staged> {
  const ng = uniq(prefix);
  await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng);
  const [vn] = await e.t.waitFor(`${ng}'s VPSieNode with its VM id`, async () => {
    const vns = await e.t.listVNs(ng);
    return vns.length === 1 && vns[0].spec.vpsieInstanceID > 0 ? vns : undefined;
  });
  const handle = await e.alert(vn.metadata.name, { approvers: APPROVERS, goneWait: '30m' });
  await e.pending(handle, STEP);
  const ref = `${e.t.ns}/${vn.metadata.name}`;
  return { vn, handle, ref, workflowId: `provisioning-failed/${ref}` };
}

/** `waiting`: refused while it waits (then rejected: after completion); `approved`: approve after approve. */
let waiting: Promise<Staged>;
let approved: Promise<Staged>;
beforeAll(async () => {
  await Promise.all([e.start('bad-approvals'), builtCli()]);
  waiting = stage('wait');
  approved = stage('twice');
  for (const p of [waiting, approved]) p.catch(() => undefined); // each test awaits its own
}, 240_000);
afterAll(async () => {
  const s = await approved.catch(() => null);
  await s?.handle.terminate('bad-input test done').catch(() => undefined);
  await e.stop();
});
afterEach(() => expect(e.t.sim.errors).toEqual([]));

/** What a person sees of a run's state, without what moves by itself while it waits (looks, their times). */
const visible = (s: RunbookStatus) => ({
  stage: s.stage,
  stageSince: s.stageSince,
  outcome: s.outcome,
  cause: s.cause,
  approvers: s.approvers,
  plan: s.plan,
  currentStep: s.currentStep,
  pendingApproval: s.pendingApproval,
  accepted: s.decisions.filter((d) => d.accepted),
  escalation: s.escalation,
  replacement: s.replacement,
});

/** The update's refusal, as its sender reads it. */
async function updateRefusal(handle: RunbookHandle, payload: unknown): Promise<string> {
  const err = await handle.executeUpdate('decide', { args: [payload] }).then(
    () => null,
    (x: unknown) => x,
  );
  if (!(err instanceof WorkflowUpdateFailedError))
    throw new Error(`update ${JSON.stringify(payload)} was not refused: ${String(err)}`);
  return err.cause?.message ?? err.message;
}

function expectExit(r: CliRun, code: number): CliRun {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${explain(r)}`);
  return r;
}

const long = 'x'.repeat(MAX_REASON_BYTES + 1);
const multibyte = '\u00e9'.repeat(MAX_REASON_BYTES / 2 + 1); // 2 bytes each: 1026 bytes in 513 characters
const listed = `(${APPROVERS.join(', ')}); names match exactly, case included`;

/** Bad decisions on a run waiting for approval of STEP, and what each must be told. */
const BAD: { what: string; payload: Record<string, unknown>; message: string }[] = [
  {
    what: 'a person not on the approvers list',
    payload: { stepId: STEP, approver: 'mallory' },
    message: `approver "mallory" is not on the allow-list ${listed}`,
  },
  {
    what: 'an approver in another case',
    payload: { stepId: STEP, approver: 'Alice' },
    message: `approver "Alice" is not on the allow-list ${listed}`,
  },
  {
    what: 'a step that is not pending',
    payload: { stepId: 'wait-replacement', approver: 'alice' },
    message: `stepId "wait-replacement" is not the pending step: "${STEP}" (delete-vpsienode) awaits approval`,
  },
  {
    what: 'a step the plan does not have',
    payload: { stepId: 'terminate-machine', approver: 'bob' },
    message: `stepId "terminate-machine" is not the pending step: "${STEP}" (delete-vpsienode) awaits approval`,
  },
  {
    what: 'an empty step',
    payload: { stepId: '', approver: 'alice' },
    message: 'stepId must be a non-empty string of at most 253 characters, got ""',
  },
  {
    what: 'an oversized reason',
    payload: { stepId: STEP, approver: 'alice', reason: long },
    message: `reason must be at most ${MAX_REASON_BYTES} bytes of UTF-8 (1 KiB), got ${MAX_REASON_BYTES + 1}`,
  },
  {
    what: 'an oversized reason in bytes, not characters',
    payload: { stepId: STEP, approver: 'bob', reason: multibyte },
    message: `reason must be at most ${MAX_REASON_BYTES} bytes of UTF-8 (1 KiB), got ${utf8Length(multibyte)}`,
  },
  {
    what: 'a reason that is not text',
    payload: { stepId: STEP, approver: 'alice', reason: { because: 'yes' } },
    message: 'reason must be a string, got {"because":"yes"}',
  },
  {
    what: 'an empty identity',
    payload: { stepId: STEP, approver: '' },
    message: 'approver must be a non-empty string, got ""',
  },
  {
    what: 'a blank identity',
    payload: { stepId: STEP, approver: '   ' },
    message: 'approver must not start or end with white space, got "   "',
  },
  {
    what: 'an approver on the list with a trailing space',
    payload: { stepId: STEP, approver: 'alice ' },
    message: 'approver must not start or end with white space, got "alice "',
  },
  {
    what: 'no identity',
    payload: { stepId: STEP },
    message: 'approver must be a non-empty string, got nothing',
  },
  {
    what: 'an identity with a control character',
    payload: { stepId: STEP, approver: 'alice\u0000' },
    message: 'approver must not contain control characters, got "alice\\u0000"',
  },
  {
    what: 'an identity that is not text',
    payload: { stepId: STEP, approver: 42 },
    message: 'approver must be a non-empty string, got 42',
  },
];

test('refused on a waiting run through the decide update, each with why, and nothing changes', async () => {
  const { handle } = await waiting;
  const before = await e.status(handle);
  const told = [];
  for (const bad of BAD)
    for (const decision of ['approve', 'reject'])
      told.push([bad.what, await updateRefusal(handle, { ...bad.payload, decision })]);
  expect(told).toEqual(
    BAD.flatMap((b) => [
      [b.what, b.message],
      [b.what, b.message],
    ]),
  );
  // The decision itself: neither approve nor reject
  expect(await updateRefusal(handle, { stepId: STEP, decision: 'maybe', approver: 'alice' })).toBe(
    'decision must be "approve" or "reject", got "maybe"',
  );
  expect(await updateRefusal(handle, 'approve')).toBe('decision must be an object, got "approve"');

  const after = await e.status(handle);
  expect(visible(after)).toEqual(visible(before));
  // Each one is on record, as sent (cut to its bound), with why.
  const records = after.refusedDecisions.slice(before.refusedDecisions.length);
  expect(records.map((r) => [r.refusal, r.via, r.accepted])).toEqual([
    ...told.map(([, message]) => [message, 'update', false]),
    ['decision must be "approve" or "reject", got "maybe"', 'update', false],
    ['decision must be an object, got "approve"', 'update', false],
  ]);
});

test('refused on a waiting run through the approve and reject signals: recorded in refusedDecisions, bounded, nothing else changes', async () => {
  const { handle } = await waiting;
  const before = await e.status(handle);
  const sent = BAD.flatMap((b) => [
    { ...b, signal: 'approve' as const },
    { ...b, signal: 'reject' as const },
  ]);
  for (const s of sent)
    await handle.signal(s.signal === 'approve' ? approveSignal : rejectSignal, s.payload as never);
  // A payload that is no object at all, as anyone may send from the UI; sent last, so its record is the last
  await handle.signal(approveSignal, 'alice' as never);
  const after = await e.statusWhen(
    handle,
    `${sent.length + 1} refused signals recorded`,
    (s) => s.refusedDecisions.at(-1)?.refusal === 'decision must be an object, got "alice"',
  );
  expect(visible(after)).toEqual(visible(before));
  // The record keeps the latest MAX_REFUSED_RECORDS refusals: these signals pushed the oldest updates out.
  expect(after.refusedDecisions).toHaveLength(
    Math.min(MAX_REFUSED_RECORDS, before.refusedDecisions.length + sent.length + 1),
  );
  const records = after.refusedDecisions.slice(-(sent.length + 1));
  expect(records.map((r) => [r.decision, r.refusal, r.via, r.accepted])).toEqual([
    ...sent.map((s) => [s.signal, s.message, 'signal', false]),
    [null, 'decision must be an object, got "alice"', 'signal', false],
  ]);
  // What each sender claimed is kept as sent, cut to its bound: a flood of big signals cannot bloat status.
  for (const [i, s] of sent.entries()) {
    const r: DecisionRecord = records[i];
    expect(r.stepId).toBe(typeof s.payload.stepId === 'string' ? s.payload.stepId : null);
    expect(r.approver).toBe(typeof s.payload.approver === 'string' ? s.payload.approver : null);
    if (r.reason !== null) expect(utf8Length(r.reason)).toBeLessThanOrEqual(MAX_REASON_BYTES);
  }
  // The person reading the run sees them too, each with why
  const shown = expectExit(await cli('status', (await waiting).ref), 0).stdout;
  for (const b of BAD) expect(shown).toContain(`refused (${b.message})`);
});

test('refused on a waiting run through the CLI: exit 1 (or 2 before connecting) naming why, and nothing changes', async () => {
  const { handle, ref, workflowId } = await waiting;
  const before = await e.status(handle);
  const cases: [string[], number, string][] = [
    [
      ['approve', ref, '--as', 'Mallory'],
      1,
      `approve of ${STEP} refused by ${workflowId}: approver "Mallory" is not on the allow-list ${listed}`,
    ],
    [
      ['reject', ref, '--step', 'terminate-machine', '--as', 'alice'],
      1,
      `reject of terminate-machine refused by ${workflowId}: stepId "terminate-machine" is not the pending step: "${STEP}" (delete-vpsienode) awaits approval`,
    ],
    [['approve', ref, '--as', ''], 2, '--as must be your name (1 to 253 characters'],
    [['approve', ref, '--as', '   '], 2, '--as must be your name (1 to 253 characters'],
    [['approve', ref, '--as', 'alice\t'], 2, '--as must be your name (1 to 253 characters'],
    [['approve', ref, '--step', ' ', '--as', 'alice'], 2, '--step must be a plan step id'],
    [
      ['reject', ref, '--as', 'bob', '--reason', multibyte],
      2,
      `--reason must be at most ${MAX_REASON_BYTES} bytes, got ${utf8Length(multibyte)}`,
    ],
    [['approve', ref], 2, "required option '--as <name>' not specified"],
    [['approve', '--as', 'alice'], 2, "missing required argument 'ns/name|workflow-id'"],
  ];
  const runs = await Promise.all(cases.map(([args]) => cli(...args)));
  runs.forEach((r, i) => {
    const [args, code, message] = cases[i];
    if (r.code !== code || !r.stderr.includes(message) || r.stdout !== '')
      throw new Error(
        `vpsie-runbook ${args.join(' ')}: expected exit ${code} and "${message}", got ${explain(r)}`,
      );
  });
  const after = await e.status(handle);
  expect(visible(after)).toEqual(visible(before));
  // The two that reached the run are on record (sent at once: in either order); the others never left the CLI.
  const lastTwo = after.refusedDecisions.slice(-2).map((r) => [r.decision, r.stepId, r.approver, r.via]);
  expect(lastTwo.sort((a, b) => String(a[2]).localeCompare(String(b[2])))).toEqual([
    ['reject', 'terminate-machine', 'alice', 'update'],
    ['approve', STEP, 'Mallory', 'update'],
  ]);
});

test('twice: a second approval (or a rejection) after the accepted one is refused everywhere; the step is done once', async () => {
  const { vn, handle, ref, workflowId } = await approved;
  // VPSie refuses to remove the machine (the controller retries, and keeps the VPSieNode's finalizer), so the
  // approved run waits in wait-machine-gone (goneWait 30 minutes) however long the refusals below take.
  const refuseRemoval = e.t.vpsie.inject({
    method: 'DELETE',
    path: /\/delete\/slave$|^\/vm\//,
    fault: { type: 'status', status: 500 },
  });
  const first = await e.decide(handle, STEP, 'approve', 'alice', 'replace it');
  expect(first).toMatchObject({ stepId: STEP, decision: 'approve', approver: 'alice', accepted: true });
  const moving = await e.statusWhen(handle, 'the delete done', (s) =>
    s.plan.some((p) => p.id === STEP && p.state === 'done'),
  );
  expect(moving).toMatchObject({ stage: 'remediating', pendingApproval: null });

  const nothing = (d: string) => `no approval is pending: nothing to ${d} (stepId "${STEP}")`;
  expect(await updateRefusal(handle, { stepId: STEP, decision: 'approve', approver: 'alice' })).toBe(
    nothing('approve'),
  );
  expect(await updateRefusal(handle, { stepId: STEP, decision: 'reject', approver: 'bob' })).toBe(
    nothing('reject'),
  );
  await handle.signal(approveSignal, { stepId: STEP, approver: 'alice' });
  await handle.signal(rejectSignal, { stepId: STEP, approver: 'bob', reason: 'too late' });
  const [withStep, withoutStep] = await Promise.all([
    cli('approve', ref, '--step', STEP, '--as', 'bob'),
    cli('approve', ref, '--as', 'bob'),
  ]);
  expectExit(withStep, 1);
  expect(withStep.stderr).toContain(`approve of ${STEP} refused by ${workflowId}: ${nothing('approve')}`);
  expectExit(withoutStep, 1);
  expect(withoutStep.stderr).toContain(`nothing waits for approval in ${workflowId} (stage remediating)`);

  const after = await e.statusWhen(handle, 'the two refused signals', (s) => s.refusedDecisions.length >= 5);
  expect(after.refusedDecisions.map((r) => [r.decision, r.approver, r.refusal, r.via])).toEqual([
    ['approve', 'alice', nothing('approve'), 'update'],
    ['reject', 'bob', nothing('reject'), 'update'],
    ['approve', 'alice', nothing('approve'), 'signal'],
    ['reject', 'bob', nothing('reject'), 'signal'],
    ['approve', 'bob', nothing('approve'), 'update'],
  ]);
  expect(after.decisions.filter((d) => d.accepted)).toEqual([first]);
  expect(after).toMatchObject({
    stage: 'remediating',
    currentStep: 'wait-machine-gone',
    pendingApproval: null,
    outcome: null,
  });
  // The VPSieNode was deleted once, by the one approval; the product removed no machine itself.
  expect(after.plan.filter((p) => p.kind === 'delete-vpsienode').map((p) => p.state)).toEqual(['done']);
  expect((await e.t.getVN(vn.metadata.name))?.metadata.deletionTimestamp).toBeDefined();
  expect(e.productWrites()).toEqual([]);
  // the controller tried to remove the machine, and VPSie refused: what keeps the run waiting
  await e.t.waitFor('the controller to try removing the machine', async () => refuseRemoval.hits > 0);
  expect((await e.status(handle)).currentStep).toBe('wait-machine-gone');
  refuseRemoval.remove();
});

test('after completion: every channel says the run has ended, and its record is unchanged', async () => {
  const { handle, ref, workflowId } = await waiting;
  const decided = await e.decide(handle, STEP, 'reject', 'bob', 'keep the VM for debugging');
  expect(decided).toMatchObject({ decision: 'reject', approver: 'bob', accepted: true });
  const report = await e.result(handle);
  expect(report.outcome).toBe('Rejected');
  const description = await handle.describe();

  const update = await handle
    .executeUpdate('decide', { args: [{ stepId: STEP, decision: 'approve', approver: 'alice' }] })
    .then(
      () => null,
      (x: unknown) => x,
    );
  expect(update).toBeInstanceOf(Error);
  expect(String((update as Error).message)).toMatch(/completed/i);
  const signal = await handle.signal(approveSignal, { stepId: STEP, approver: 'alice' }).then(
    () => null,
    (x: unknown) => x,
  );
  expect(signal).toBeInstanceOf(WorkflowNotFoundError);
  expect(String((signal as Error).message)).toMatch(/completed/i);
  const [viaCli, viaCliStep] = await Promise.all([
    cli('approve', ref, '--as', 'alice'),
    cli('reject', ref, '--step', STEP, '--as', 'bob', '--reason', 'again'),
  ]);
  for (const r of [viaCli, viaCliStep]) {
    expectExit(r, 1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `${workflowId} has ended (Completed, outcome Rejected): nothing waits for a decision`,
    );
  }
  // The closed run is as it was: same history length, same decisions.
  const later = await handle.describe();
  expect(later.historyLength).toBe(description.historyLength);
  expect((await e.result(handle)).decisions).toEqual(report.decisions);
});
