/**
 * Issue 9's Done-when "a visibility query by ApprovalPending finds exactly the runs waiting for a person", and the
 * CLI's `list` over the search attributes, on the real Temporal server (its visibility store) with runs in every
 * state: two waiting for approval, one dry run and one rejected (both completed), then one of the waiting ones
 * rejected and the other terminated by hand. Visibility is eventually consistent, so each expectation is polled
 * until the listing equals it; equality also proves that nothing else is listed.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { flagName, RUNBOOK_FLAGS } from '../../src/cli/input-flags';
import type { RunRow } from '../../src/cli/runs';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import type { VPSieNodeObj } from '../support/cluster';
import { builtCli, cliOn, explain, type CliRun } from '../support/cli';
import { FAST_OPTIONS, RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';
import { temporalAddress } from '../support/temporal';

jest.setTimeout(180_000);

const e = new RunbookE2E('cli-vis');
beforeAll(() => Promise.all([e.start('cli-vis'), builtCli()]), 240_000);
afterAll(() => e.stop());
afterEach(() => expect(e.t.sim.errors).toEqual([]));

const STEP = 'delete-vpsienode';
const FAST_FLAGS = Object.entries(FAST_OPTIONS).flatMap(([field, value]) => [
  flagName(RUNBOOK_FLAGS.find((f) => f.field === field)!),
  String(value),
]);
const cli = cliOn(e.taskQueue);

function ok(r: CliRun): CliRun {
  if (r.code !== 0) throw new Error(`expected exit 0, got ${explain(r)}`);
  return r;
}

/** Runs `list … --output json` until its workflow ids are `expected` (visibility catches up within seconds). */
async function listed(args: string[], expected: string[], timeoutMs = 45_000): Promise<RunRow[]> {
  const want = [...expected].sort();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = ok(await cli('list', ...args, '--output', 'json'));
    const rows = JSON.parse(r.stdout) as RunRow[];
    const got = rows.map((x) => x.workflowId).sort();
    if (JSON.stringify(got) === JSON.stringify(want)) return rows;
    if (Date.now() > deadline)
      throw new Error(`list ${args.join(' ')}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

/** `temporal workflow list --query …`: the workflow ids of this file's runs it lists. */
async function temporalList(query: string): Promise<string[]> {
  const bin = await findTemporalCli();
  if (!bin) throw new Error('no Temporal CLI');
  const { stdout } = await promisify(execFile)(bin, [
    'workflow',
    'list',
    '--query',
    query,
    '--address',
    temporalAddress(),
    '-o',
    'json',
  ]);
  const mine = `provisioning-failed/${e.t.ns}/`;
  // Each execution names its workflow id more than once (its own, its root's): a set of them.
  const ids = new Set([...stdout.matchAll(/"workflowId":\s*"([^"]+)"/g)].map((m) => m[1]));
  return [...ids].filter((id) => id.startsWith(mine)).sort();
}

test('list --pending-approval and ApprovalPending = true find exactly the runs waiting for a person', async () => {
  const [a, b, c, d] = await Promise.all(['vis-a', 'vis-b', 'vis-c', 'vis-d'].map((p) => e.stuckNode(p)));
  const refOf = (x: { vn: VPSieNodeObj }) => `${e.t.ns}/${x.vn.metadata.name}`;
  const idOf = (x: { vn: VPSieNodeObj }) => `provisioning-failed/${refOf(x)}`;
  const handle = (x: { vn: VPSieNodeObj }) => e.ctx.client.workflow.getHandle(idOf(x)) as RunbookHandle;
  await Promise.all([
    ...[a, b, d].map(async (x) => ok(await cli('trigger', refOf(x), ...FAST_FLAGS))),
    (async () => ok(await cli('trigger', refOf(c), ...FAST_FLAGS, '--dry-run')))(),
  ]);
  const [pa, pb] = await Promise.all([a, b, d].map((x) => e.pending(handle(x), STEP)));
  // What a run waits for is in its memo too, for the inbox; the key goes once nobody needs to decide.
  expect((await handle(a).describe()).memo?.pendingApproval).toEqual(pa);
  ok(await cli('reject', refOf(d), '--as', 'bob', '--reason', 'not this one'));
  expect((await e.result(handle(d))).outcome).toBe('Rejected');
  expect((await handle(d).describe()).memo).not.toHaveProperty('pendingApproval');
  expect((await e.result(handle(c))).outcome).toBe('DryRun');

  // Exactly the two waiting, each with its step and expiry from the run itself.
  const rows = await listed(['--pending-approval'], [idOf(a), idOf(b)]);
  for (const [x, p] of [
    [a, pa],
    [b, pb],
  ] as const)
    expect(rows.find((r) => r.workflowId === idOf(x))).toMatchObject({
      type: 'provisioningFailedRunbook',
      status: 'Running',
      taskQueue: e.taskQueue,
      vpsieNode: refOf(x),
      nodeGroup: x.ng,
      stage: 'awaiting-approval',
      cause: 'ProvisioningTimeout',
      outcome: null,
      approvalPending: true,
      pendingApproval: p,
    });
  const text = ok(await cli('list', '--pending-approval'));
  expect(text.stderr).toContain(
    `query: WorkflowType IN ('provisioningFailedRunbook', 'orphanedVmCleanup') AND TaskQueue = '${e.taskQueue}' AND ApprovalPending = true AND ExecutionStatus = 'Running'`,
  );
  const lines = text.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^WORKFLOW ID +STATUS +STAGE +CAUSE +OUTCOME +NODEGROUP +STARTED +APPROVAL$/);
  expect(
    lines
      .slice(1)
      .map((l) => l.split(/\s+/)[0])
      .sort(),
  ).toEqual([idOf(a), idOf(b)].sort());
  expect(text.stdout).toContain(`${STEP} until ${pa.expiresAt} (in `);
  // The raw query, as the README gives it, lists the same runs of this file (other files' runs share the server).
  expect(await temporalList('ApprovalPending = true')).toEqual([idOf(a), idOf(b)].sort());

  // The other filters, each exactly.
  await listed(['--cause', 'ProvisioningTimeout', '--nodegroup', a.ng], [idOf(a)]);
  await listed(['--outcome', 'DryRun'], [idOf(c)]);
  await listed(['--outcome', 'Rejected'], [idOf(d)]);
  await listed(['--open'], [idOf(a), idOf(b)]);
  await listed([], [a, b, c, d].map(idOf));

  // One answered, one terminated by hand while it waited: nobody is waiting any more.
  ok(await cli('reject', refOf(a), '--as', 'bob'));
  await handle(b).terminate('operator stopped it');
  await listed(['--pending-approval'], []);
  const empty = ok(await cli('list', '--pending-approval'));
  expect(empty.stdout).toBe('');
  expect(empty.stderr).toContain('no runs match');
  // A terminated run keeps the search attributes it had: the bare query still lists it, which is why
  // `list --pending-approval` (and the README) add ExecutionStatus = 'Running'.
  expect(await temporalList('ApprovalPending = true')).toEqual([idOf(b)]);
  expect(await temporalList(`ApprovalPending = true AND ExecutionStatus = 'Running'`)).toEqual([]);
});

test("list --pending-approval reads each step waiting from the runs' memo: it answers with no worker up", async () => {
  const x = await e.stuckNode('vis-memo');
  const ref = `${e.t.ns}/${x.vn.metadata.name}`;
  const id = `provisioning-failed/${ref}`;
  ok(await cli('trigger', ref, ...FAST_FLAGS));
  const p = await e.pending(e.ctx.client.workflow.getHandle(id) as RunbookHandle, STEP);
  // Nobody could answer a status query now (the last test of the file: the worker stays down).
  await e.stopWorker();
  const [row] = await listed(['--pending-approval'], [id]);
  expect(row).toMatchObject({ workflowId: id, approvalPending: true, pendingApproval: p });
  const text = ok(await cli('list', '--pending-approval'));
  expect(text.stdout).toContain(`${STEP} until ${p.expiresAt} (in `);
});
