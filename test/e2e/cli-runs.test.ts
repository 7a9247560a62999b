/**
 * The CLI against the real stack, as a person runs it (issue 9 item 3): the built `vpsie-runbook` in a child
 * process, the real Temporal server and apiserver, the product's worker with its real activities, the simulated
 * controller and VPSie. A VPSieNode whose machine never boots (ProvisioningTimeout) waits for approval of its
 * delete; the person triggers, reads, approves and rejects from the CLI, and sees at once what counted. Also the
 * Temporal CLI commands the README shows for the same (item 4), run as written there.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { RUNBOOK_FLAGS, flagName } from '../../src/cli/input-flags';
import type { RunbookStatus } from '../../src/runbook';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import type { VPSieNodeObj } from '../support/cluster';
import { builtCli, cliOn, explain, type CliRun } from '../support/cli';
import { FAST_OPTIONS, RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';
import { temporalAddress } from '../support/temporal';

jest.setTimeout(180_000);

const e = new RunbookE2E('cli-runs');
/**
 * Each test's VPSieNodes, staged at once when the file starts: the controller takes its 10 s limit to fail
 * each, so staging them side by side keeps that wait from adding up test after test.
 */
let staged: Record<'trig' | 'refuse' | 'tupd' | 'tsig', Promise<{ ng: string; vn: VPSieNodeObj }>>;
beforeAll(async () => {
  await Promise.all([e.start('cli-runs'), builtCli()]);
  staged = {
    trig: e.stuckNode('trig'),
    refuse: e.stuckNode('refuse'),
    tupd: e.stuckNode('tupd'),
    tsig: e.stuckNode('tsig'),
  };
  for (const p of Object.values(staged)) p.catch(() => undefined); // each test awaits its own
}, 240_000);
afterAll(() => e.stop());
afterEach(() => expect(e.t.sim.errors).toEqual([]));

const STEP = 'delete-vpsienode';

/** FAST_OPTIONS as the CLI's flags: the same short waits the other end-to-end tests give their runs. */
const FAST_FLAGS = Object.entries(FAST_OPTIONS).flatMap(([field, value]) => {
  const f = RUNBOOK_FLAGS.find((x) => x.field === field);
  if (!f) throw new Error(`no flag for ${field}`);
  return [flagName(f), String(value)];
});

const cli = cliOn(e.taskQueue);

const handleOf = (name: string) =>
  e.ctx.client.workflow.getHandle(`provisioning-failed/${e.t.ns}/${name}`) as RunbookHandle;

function expectExit(r: CliRun, code: number): void {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${explain(r)}`);
}

/** The Temporal CLI, as the README writes it: `temporal …`, pointed at the test server. */
async function temporal(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = await findTemporalCli();
  if (!bin) throw new Error('no Temporal CLI');
  try {
    const { stdout, stderr } = await promisify(execFile)(bin, [...args, '--address', temporalAddress()]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const x = err as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

test('trigger starts the run once and joins it after; status shows what it waits for; approve (the pending step) → Remediated', async () => {
  const { ng, vn } = await staged.trig;
  const { name, uid } = vn.metadata;
  const ref = `${e.t.ns}/${name}`;
  const workflowId = `provisioning-failed/${ref}`;

  const first = await cli('trigger', ref, ...FAST_FLAGS);
  expectExit(first, 0);
  expect(first.stdout).toMatch(
    new RegExp(`^started ${workflowId} \\(run [0-9a-f-]+\\) on task queue ${e.taskQueue}\\n$`),
  );
  expect(first.stderr).toContain(`vpsie-runbook status ${ref}`);
  const runId = /\(run ([0-9a-f-]+)\)/.exec(first.stdout)![1];

  // A second trigger joins the open run, and its options (a dry run) do not change it.
  const second = await cli('--output', 'json', 'trigger', ref, '--dry-run');
  expectExit(second, 0);
  expect(JSON.parse(second.stdout)).toEqual({ workflowId, runId, result: 'joined', taskQueue: e.taskQueue });

  const handle = handleOf(name);
  const d = await handle.describe();
  expect(d.runId).toBe(runId);
  expect(await d.staticSummary()).toBe(`VPSieNode ${ref}, NodeGroup unknown, started by cli`);
  expect(d.memo?.origin).toEqual({ source: 'cli' });

  const pending = await e.pending(handle, STEP);
  const text = await cli('status', ref);
  expectExit(text, 0);
  expect(text.stderr).toBe('');
  const out = text.stdout;
  expect(out).toContain(`Run         ${workflowId} (run ${runId}, Running)`);
  expect(out).toMatch(/^Stage {7}awaiting-approval since /m);
  expect(out).toMatch(/^Cause {7}ProvisioningTimeout/m);
  expect(out).toMatch(/^Plan$/m);
  expect(out).not.toMatch(/^Dry run/m);
  expect(out).toMatch(
    new RegExp(`^  awaiting-approval  ${STEP} +Delete ${e.t.ns}/${name} \\(uid ${uid}\\)`, 'm'),
  );
  expect(out).toMatch(/^ {2}pending {12}wait-replacement-ready /m);
  expect(out).toContain(`  target      VPSieNode ${ref} (uid ${uid})`);
  expect(out).toContain(`  exactly     ${JSON.stringify(pending.target)}`);
  expect(out).toContain(`  expires     ${pending.expiresAt} (in `);
  expect(out).toContain('  who         anyone allowed to signal this workflow');
  expect(out).toContain(`  approve     vpsie-runbook approve ${ref} --step ${STEP} --as <you>`);
  expect(out).toContain(
    `  reject      vpsie-runbook reject ${ref} --step ${STEP} --as <you> --reason '<why>'`,
  );
  expect(out).not.toMatch(/^Outcome/m);

  const json = await cli('status', ref, '--output', 'json');
  expectExit(json, 0);
  const raw = JSON.parse(json.stdout) as RunbookStatus;
  const live = await e.status(handle);
  expect(raw).toMatchObject({
    ref: { namespace: e.t.ns, name },
    stage: 'awaiting-approval',
    cause: 'ProvisioningTimeout',
    pendingApproval: live.pendingApproval,
    plan: live.plan,
    dryRun: false,
    outcome: null,
  });

  const approved = await cli('approve', ref, '--as', 'alice', '--reason', 'the VM never booted');
  expectExit(approved, 0);
  expect(approved.stdout).toMatch(
    new RegExp(`^approved ${STEP} of ${workflowId} as alice at \\S+ \\(the VM never booted\\)\\n$`),
  );
  const report = await e.result(handle);
  expect(report.outcome).toBe('Remediated');
  expect(report.decisions).toEqual([
    expect.objectContaining({
      stepId: STEP,
      decision: 'approve',
      approver: 'alice',
      reason: 'the VM never booted',
      via: 'update',
      accepted: true,
    }),
  ]);
  expect(report.replacement?.name).toMatch(new RegExp(`^${ng}-`));

  // The ended run, by its workflow id; and nothing more to decide.
  const done = await cli('status', workflowId);
  expectExit(done, 0);
  expect(done.stdout).toMatch(/^Stage {7}completed/m);
  expect(done.stdout).toMatch(/^ {2}done +delete-vpsienode /m);
  expect(done.stdout).toMatch(
    new RegExp(
      `^Replacement ${e.t.ns}/${report.replacement!.name} \\(uid ${report.replacement!.uid}\\)`,
      'm',
    ),
  );
  expect(done.stdout).toMatch(/^Outcome {5}Remediated/m);
  const late = await cli('approve', ref, '--as', 'alice');
  expectExit(late, 1);
  expect(late.stdout).toBe('');
  expect(late.stderr).toContain(
    `${workflowId} has ended (Completed, outcome Remediated): nothing waits for a decision`,
  );
});

test('refusals are told at once (exit 1) and change nothing: another step, a name not on --approver; reject → Rejected', async () => {
  const { vn } = await staged.refuse;
  const { name, uid } = vn.metadata;
  const ref = `${e.t.ns}/${name}`;
  const workflowId = `provisioning-failed/${ref}`;
  expectExit(await cli('trigger', ref, ...FAST_FLAGS, '--approver', 'bob', '--approver', 'carol'), 0);
  const handle = handleOf(name);
  await e.pending(handle, STEP);

  const wrongStep = await cli('approve', ref, '--step', 'wait-machine-gone', '--as', 'bob');
  expectExit(wrongStep, 1);
  expect(wrongStep.stdout).toBe('');
  expect(wrongStep.stderr).toContain(
    `approve of wait-machine-gone refused by ${workflowId}: stepId "wait-machine-gone" is not the pending step: "${STEP}" (delete-vpsienode) awaits approval`,
  );
  const stranger = await cli('approve', ref, '--as', 'mallory');
  expectExit(stranger, 1);
  expect(stranger.stderr).toContain(
    `approve of ${STEP} refused by ${workflowId}: approver "mallory" is not on the allow-list (bob, carol)`,
  );
  // Refused and recorded as refused; the step still waits.
  const afterRefusals = await e.status(handle);
  expect(afterRefusals).toMatchObject({ stage: 'awaiting-approval', pendingApproval: { stepId: STEP } });
  expect(afterRefusals.decisions.map((d) => [d.stepId, d.approver, d.via, d.accepted])).toEqual([
    ['wait-machine-gone', 'bob', 'update', false],
    [STEP, 'mallory', 'update', false],
  ]);
  const status = await cli('status', ref);
  expect(status.stdout).toContain('  who         bob, carol');

  const rejected = await cli(
    'reject',
    ref,
    '--step',
    STEP,
    '--as',
    'carol',
    '--reason',
    'investigating the VM first',
  );
  expectExit(rejected, 0);
  expect(rejected.stdout).toMatch(new RegExp(`^rejected ${STEP} of ${workflowId} as carol at `));
  const report = await e.result(handle);
  expect(report.outcome).toBe('Rejected');
  expect(report.decisions?.filter((d) => d.accepted)).toEqual([
    expect.objectContaining({
      stepId: STEP,
      decision: 'reject',
      approver: 'carol',
      reason: 'investigating the VM first',
      via: 'update',
      accepted: true,
    }),
  ]);
  // Nothing was deleted.
  expect((await e.t.getVN(name))?.metadata.uid).toBe(uid);

  const nobody = await cli('approve', `${e.t.ns}/no-such-node`, '--as', 'bob');
  expectExit(nobody, 1);
  expect(nobody.stderr).toContain(
    `no run found for ${e.t.ns}/no-such-node (workflow id provisioning-failed/${e.t.ns}/no-such-node`,
  );
});

test('the Temporal CLI commands the README shows: query status, update decide (refused, then accepted), signal approve', async () => {
  const [x, y] = await Promise.all([staged.tupd, staged.tsig]);
  const ids = [x, y].map(({ vn }) => `provisioning-failed/${e.t.ns}/${vn.metadata.name}`);
  for (const { vn } of [x, y])
    expectExit(await cli('trigger', `${e.t.ns}/${vn.metadata.name}`, ...FAST_FLAGS), 0);
  const [hx, hy] = [x, y].map(({ vn }) => handleOf(vn.metadata.name));
  await Promise.all([e.pending(hx, STEP), e.pending(hy, STEP)]);

  const query = await temporal(['workflow', 'query', '--workflow-id', ids[0], '--type', 'status']);
  expect(query.code).toBe(0);
  expect(query.stdout).toContain(STEP);

  const update = (stepId: string) =>
    temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      ids[0],
      '--name',
      'decide',
      '--input',
      JSON.stringify({ stepId, decision: 'reject', approver: 'alice', reason: 'VM kept for debugging' }),
    ]);
  const refused = await update('wait-replacement');
  expect(refused.code).not.toBe(0);
  expect(`${refused.stdout}${refused.stderr}`).toContain('is not the pending step');
  const accepted = await update(STEP);
  expect(accepted.code).toBe(0);
  expect(accepted.stdout).toContain('accepted:true');
  expect((await e.result(hx)).outcome).toBe('Rejected');

  // What the UI's "Send a Signal" takes: signal name `approve` (or `reject`) and this JSON.
  const signal = await temporal([
    'workflow',
    'signal',
    '--workflow-id',
    ids[1],
    '--name',
    'approve',
    '--input',
    JSON.stringify({ stepId: STEP, approver: 'dave' }),
  ]);
  expect(signal.code).toBe(0);
  const report = await e.result(hy);
  expect(report.outcome).toBe('Remediated');
  expect(report.decisions).toEqual([
    expect.objectContaining({
      stepId: STEP,
      decision: 'approve',
      approver: 'dave',
      via: 'signal',
      accepted: true,
    }),
  ]);
});
