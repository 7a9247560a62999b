import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createActivities } from '../../src/activities';
import { KubernetesClient } from '../../src/clients/kubernetes';
import {
  InvalidInputError,
  workflowIdFor,
  type DiagnosisReport,
  type RunbookInput,
  type RunbookStatus,
} from '../../src/runbook';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { startRunbook } from '../../src/temporal/start-runbook';
import { statusQuery } from '../../src/workflows/messages';
import { RunbookOutcome, RunbookStage, VPSieNodeName } from '../../src/workflows/search-attributes';
import { rejectsWith } from '../support/expect-rejection';
import { createTestNamespace, kubeConfigFor, VPSieNodeFixtures } from '../support/kube';
import {
  connectTemporal,
  temporalAddress,
  uniqueTaskQueue,
  withWorker,
  type TemporalTestContext,
} from '../support/temporal';

const HISTORY_DIR = join(__dirname, '..', 'fixtures', 'histories');

let ctx: TemporalTestContext;
let namespace: string;
const taskQueue = uniqueTaskQueue('provisioning-failed');
const fixtures = new VPSieNodeFixtures();
// The worker reads the cluster as the restricted identity, with only the project's RBAC role.
const activities = () =>
  createActivities({ kubernetes: new KubernetesClient(kubeConfigFor('runbook')), vpsie: null });
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
// The shortest recheck the input allows. Tests that need a second look wait for it once (about 10 s).
const RECHECK = '10s';

beforeAll(async () => {
  ctx = await connectTemporal();
  namespace = await createTestNamespace('wf');
});
afterAll(() => ctx?.close());

function input(name: string, options: RunbookInput['options'] = {}): RunbookInput {
  return { namespace, name, options };
}

/** What an alert receiver does: the product's start helper, with its policies. */
function alert(name: string, options: RunbookInput['options'] = {}) {
  return startRunbook(ctx.client, input(name, options), { taskQueue });
}

/**
 * Polls until `ok`, and returns the last value either way. Errors count as "not yet" until the deadline (a query
 * can reach a run before its first workflow task has completed).
 */
async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await fn();
      if (ok(v) || Date.now() > deadline) return v;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Every run of a workflow id's chain, from `firstRunId` on, each with its history. */
async function chain(
  workflowId: string,
  firstRunId: string,
): Promise<{ runId: string; events: HistoryEvent[] }[]> {
  const runs: { runId: string; events: HistoryEvent[] }[] = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const history: temporal.api.history.v1.IHistory = await ctx.client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    const events: HistoryEvent[] = history.events ?? [];
    runs.push({ runId, events });
    runId = events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/**
 * The runbook's search attribute writes in a history, in order: one record per UpsertWorkflowSearchAttributes
 * event. `TemporalChangeVersion` is left out: the SDK writes it itself, once per run, for the `patched()` marker.
 */
function searchAttributeWrites(events: HistoryEvent[]): Record<string, unknown>[] {
  return events
    .map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields)
    .filter((f): f is NonNullable<typeof f> => !!f)
    .map((fields) =>
      Object.fromEntries(
        Object.entries(fields)
          .filter(([k]) => k !== 'TemporalChangeVersion')
          .map(([k, p]) => [k, defaultPayloadConverter.fromPayload(p)]),
      ),
    )
    .filter((w) => Object.keys(w).length > 0);
}

const { EventType } = temporal.api.enums.v1;
const eventsOfType = (events: HistoryEvent[], type: keyof typeof EventType) =>
  events.filter((e) => e.eventType === EventType[type]);

/** Writes a run's history in the JSON form the UI's and CLI's "download history" give, when recording. */
async function recordHistory(workflowId: string, runId: string, file: string): Promise<void> {
  if (!process.env.RECORD_HISTORIES) return;
  const cli = await findTemporalCli();
  if (!cli) throw new Error('recording histories needs the Temporal CLI');
  const json = execFileSync(
    cli,
    [
      'workflow',
      'show',
      ...['--workflow-id', workflowId, '--run-id', runId],
      ...['--output', 'json', '--address', temporalAddress()],
    ],
    { encoding: 'utf8' },
  );
  writeFileSync(join(HISTORY_DIR, file), json);
}

/** A kubeconfig for a user the apiserver knows nothing good about: no role is bound to it, so RBAC says 403. */
function kubeConfigImpersonating(user: string): KubeConfig {
  const admin = kubeConfigFor('admin');
  const cluster = admin.getCurrentCluster();
  const adminUser = admin.getCurrentUser();
  if (!cluster || !adminUser) throw new Error('admin kubeconfig has no cluster or user');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(cluster, { ...adminUser, name: `as-${user}`, impersonateUser: user });
  return kc;
}

describe('provisioningFailedRunbook', () => {
  it('waits while the controller still has time, answers status meanwhile, and ends when the node is Ready', async () => {
    const ref = { namespace, name: 'ng-a-waits' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 4101, nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(1) },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const { handle, runId } = await alert(ref.name, { recheckInterval: RECHECK });
      expect(handle.workflowId).toBe(`provisioning-failed/${namespace}/ng-a-waits`);

      const waiting = await eventually(
        () => handle.query(statusQuery),
        (s) => s.stage === 'waiting-for-controller',
      );
      expect(waiting).toMatchObject({
        ref,
        stage: 'waiting-for-controller',
        run: 1,
        checks: 1,
        progress: { kind: 'in-progress' },
        outcome: null,
        error: null,
      });
      expect(waiting.progress?.reason).toMatch(/^Provisioning for \d+ min, within the controller's limit$/);
      // The next look is one recheck interval after the first.
      const nextInMs = Date.parse(waiting.nextCheckAt ?? '') - Date.parse(waiting.stageSince);
      expect(nextInMs).toBeGreaterThanOrEqual(9_000);
      expect(nextInMs).toBeLessThanOrEqual(10_000);
      // What the Temporal UI shows as the run's current details.
      const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      expect(metadata.currentDetails).toMatch(
        new RegExp(`^VPSieNode ${namespace}/ng-a-waits: Provisioning for \\d+ min.*next check in`),
      );

      // The controller finishes: the runbook sees it on its next look and does nothing else.
      await fixtures.setStatus(ref, { phase: 'Ready', readyAt: new Date().toISOString() });
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({
        outcome: 'recovered',
        runs: 1,
        error: null,
        startedAt: waiting.startedAt,
      });
      expect(report.checks).toBeGreaterThanOrEqual(2);
      expect(report.vpsieNode).toMatchObject({
        phase: 'Ready',
        vpsieInstanceID: 4101,
        nodeGroupName: 'ng-a',
      });

      const done = await handle.query(statusQuery);
      expect(done).toMatchObject({ stage: 'completed', outcome: 'recovered' });
      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(VPSieNodeName)).toBe('ng-a-waits');
      expect(description.typedSearchAttributes.get(RunbookStage)).toBe('completed');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('recovered');

      // Search attributes are written once per change, however many looks the run took.
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(eventsOfType(events, 'EVENT_TYPE_ACTIVITY_TASK_SCHEDULED')).toHaveLength(report.checks);
      expect(searchAttributeWrites(events)).toEqual([
        { VPSieNodeNamespace: namespace, VPSieNodeName: 'ng-a-waits', RunbookStage: 'diagnosing' },
        { RunbookStage: 'waiting-for-controller' },
        { RunbookStage: 'completed', RunbookOutcome: 'recovered' },
      ]);
      await recordHistory(handle.workflowId, runId, 'bounded-waits-then-recovered.json');
    });
  });

  it('does not wait for a node stuck past the controller limit', async () => {
    const ref = { namespace, name: 'ng-a-stuck' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 0, nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(25) },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const { handle, runId } = await alert(ref.name);
      const report: DiagnosisReport = await handle.result();
      expect(report.outcome).toBe('needs-remediation');
      expect(report.checks).toBe(1);
      expect(report.progress).toMatchObject({ kind: 'stuck' });
      expect(report.progress?.reason).toMatch(/^Provisioning for 2[45] min, past the controller's limit$/);
      expect(report.vpsieNode?.vpsieInstanceID).toBe(0);
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(searchAttributeWrites(events)).toEqual([
        { VPSieNodeNamespace: namespace, VPSieNodeName: 'ng-a-stuck', RunbookStage: 'diagnosing' },
        { RunbookStage: 'completed', RunbookOutcome: 'needs-remediation' },
      ]);
    });
  });

  it('reports a Failed node with the controller error', async () => {
    const ref = { namespace, name: 'ng-a-failed' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 0, nodeGroupName: 'ng-a' },
      {
        phase: 'Failed',
        lastError: 'offering 99 not found',
        conditions: [
          {
            type: 'Error',
            status: 'True',
            reason: 'VPSieAPIError',
            message: 'offering 99 not found',
            lastTransitionTime: minutesAgo(2),
          },
        ],
      },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const report: DiagnosisReport = await (await alert(ref.name)).handle.result();
      expect(report).toMatchObject({
        outcome: 'needs-remediation',
        progress: { kind: 'failed', reason: 'phase Failed (VPSieAPIError: offering 99 not found)' },
      });
    });
  });

  it('reports a VPSieNode that does not exist as not-found', async () => {
    await withWorker(ctx, taskQueue, activities(), async () => {
      const report: DiagnosisReport = await (await alert('never-created')).handle.result();
      expect(report).toMatchObject({ outcome: 'not-found', vpsieNode: null, checks: 1 });
    });
  });

  it('ends with read-failed and the error, not a failed run, when the read is refused', async () => {
    const ref = { namespace, name: 'ng-a-forbidden' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(1) },
    );
    // A worker whose identity holds no role at all: the apiserver's RBAC refuses the read with 403.
    const forbiddenQueue = uniqueTaskQueue('forbidden');
    const unbound = createActivities({
      kubernetes: new KubernetesClient(kubeConfigImpersonating('no-role-bound')),
      vpsie: null,
    });
    await withWorker(ctx, forbiddenQueue, unbound, async () => {
      const { handle, runId } = await startRunbook(ctx.client, input(ref.name), {
        taskQueue: forbiddenQueue,
      });
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({
        outcome: 'read-failed',
        progress: null,
        vpsieNode: null,
        checks: 0,
        runs: 1,
        error: {
          step: 'checkVPSieNode',
          type: 'Kubernetes403',
          retryState: 'NON_RETRYABLE_FAILURE',
        },
      });
      expect(report.error?.message).toMatch(/forbidden/i);
      expect(report.error?.message).toMatch(/no-role-bound/);

      const status: RunbookStatus = await handle.query(statusQuery);
      expect(status).toMatchObject({ stage: 'completed', outcome: 'read-failed', error: report.error });
      const description = await handle.describe();
      expect(description.status.name).toBe('COMPLETED');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('read-failed');
      // A permanent answer is not retried: one attempt, then the outcome.
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(eventsOfType(events, 'EVENT_TYPE_ACTIVITY_TASK_STARTED')).toHaveLength(1);
      expect(
        eventsOfType(events, 'EVENT_TYPE_ACTIVITY_TASK_STARTED')[0].activityTaskStartedEventAttributes
          ?.attempt,
      ).toBe(1);
      await recordHistory(handle.workflowId, runId, 'bounded-read-failed.json');
    });
  });

  it('continues as new after checksPerRun looks, and status and report read as one run', async () => {
    const ref = { namespace, name: 'ng-a-long' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(0) },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const { handle, runId: firstRunId } = await alert(ref.name, {
        recheckInterval: RECHECK,
        checksPerRun: 1,
      });
      // The first run looks once and hands over; the second waits out the recheck interval.
      const second = await eventually(
        () => handle.query(statusQuery),
        (s) => s.run >= 2,
      );
      const first: RunbookStatus = await ctx.client.workflow
        .getHandle(handle.workflowId, firstRunId)
        .query(statusQuery);
      expect(first).toMatchObject({ run: 1, checks: 1, stage: 'waiting-for-controller' });
      expect(second).toMatchObject({
        run: 2,
        checks: 1,
        stage: 'waiting-for-controller',
        startedAt: first.startedAt,
        stageSince: first.stageSince,
        progress: first.progress,
        nextCheckAt: first.nextCheckAt,
        outcome: null,
      });

      await fixtures.setStatus(ref, { phase: 'Ready', readyAt: new Date().toISOString() });
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({ outcome: 'recovered', startedAt: first.startedAt });
      expect(report.runs).toBeGreaterThanOrEqual(2);
      expect(report.checks).toBe(report.runs);

      const runs = await chain(handle.workflowId, firstRunId);
      expect(runs).toHaveLength(report.runs);
      expect(eventsOfType(runs[0].events, 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW')).toHaveLength(1);
      // The continued runs inherit the search attributes: across the whole chain each change is written once.
      expect(runs.flatMap((r) => searchAttributeWrites(r.events))).toEqual([
        { VPSieNodeNamespace: namespace, VPSieNodeName: 'ng-a-long', RunbookStage: 'diagnosing' },
        { RunbookStage: 'waiting-for-controller' },
        { RunbookStage: 'completed', RunbookOutcome: 'recovered' },
      ]);
      const description = await handle.describe();
      expect(description.runId).toBe(runs.at(-1)?.runId);
      expect(description.typedSearchAttributes.get(VPSieNodeName)).toBe('ng-a-long');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('recovered');
      await recordHistory(handle.workflowId, firstRunId, 'bounded-continued-as-new.json');
    });
  });

  it('runs once per VPSieNode: a second alert joins the open run; after it closed, an alert starts a new one', async () => {
    const ref = { namespace, name: 'ng-a-once' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(0) },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const first = await alert(ref.name, { recheckInterval: RECHECK });
      await eventually(
        () => first.handle.query(statusQuery),
        (s) => s.stage === 'waiting-for-controller',
      );

      // Alertmanager re-sends the alert while the run waits: no second run, the answer is the open run.
      const again = await alert(ref.name, { recheckInterval: '30m' });
      expect(again.workflowId).toBe(first.workflowId);
      expect(again.runId).toBe(first.runId);
      const open = await ctx.client.workflow.getHandle(first.workflowId, first.runId).describe();
      expect(open.status.name).toBe('RUNNING');

      // The node recovers and the run closes; the node gets into trouble again: a new alert, a new run.
      await fixtures.setStatus(ref, { phase: 'Ready', readyAt: new Date().toISOString() });
      const firstReport: DiagnosisReport = await first.handle.result();
      expect(firstReport.outcome).toBe('recovered');
      await fixtures.setStatus(ref, { phase: 'Failed', lastError: 'VM lost' });
      const next = await alert(ref.name);
      expect(next.runId).not.toBe(first.runId);
      const nextReport: DiagnosisReport = await next.handle.result();
      expect(nextReport).toMatchObject({ outcome: 'needs-remediation', checks: 1 });
      expect(Date.parse(nextReport.startedAt)).toBeGreaterThan(Date.parse(firstReport.finishedAt));

      const runs = await eventually(
        async () => {
          const ids: string[] = [];
          for await (const w of ctx.client.workflow.list({ query: `WorkflowId = "${first.workflowId}"` })) {
            ids.push(w.runId);
          }
          return ids.sort();
        },
        (ids) => ids.length >= 2,
      );
      expect(runs).toEqual([first.runId, next.runId].sort());
    });
  });

  it('refuses bad input before starting a run, naming the field', async () => {
    const bad = input('ng-a-too-eager', { recheckInterval: '1s' });
    const err = await rejectsWith(startRunbook(ctx.client, bad, { taskQueue }), InvalidInputError);
    expect(err.message).toBe('options.recheckInterval must be between 10s and 1h, got "1s"');
    await rejectsWith(ctx.client.workflow.getHandle(workflowIdFor(bad)).describe(), WorkflowNotFoundError);

    const smuggled = { ...input('ng-a-smuggled'), continuation: {} } as RunbookInput;
    await expect(startRunbook(ctx.client, smuggled, { taskQueue })).rejects.toThrow(
      'continuation is set only by the workflow itself when it continues as new',
    );
  });

  let badRuns = 0;
  it.each([
    [{ recheckInterval: 'whenever' }, /options\.recheckInterval must be a duration/],
    [{ recheckInterval: '1s' }, /options\.recheckInterval must be between 10s and 1h, got "1s"/],
    [{ joiningLimit: '12h' }, /options\.joiningLimit must be more than 0 and at most 6h, got "12h"/],
    [{ checksPerRun: 0 }, /options\.checksPerRun must be a whole number between 1 and 1000, got 0/],
  ])('fails a run started around the helper at once, without retrying, on %j', async (options, message) => {
    await withWorker(ctx, taskQueue, activities(), async () => {
      const name = `bad-options-${(badRuns += 1)}`;
      const handle: WorkflowHandle = await ctx.client.workflow.start('provisioningFailedRunbook', {
        taskQueue,
        workflowId: workflowIdFor(input(name)),
        args: [input(name, options as RunbookInput['options'])],
      });
      const err = await rejectsWith(handle.result(), WorkflowFailedError);
      expect(err.cause).toBeInstanceOf(ApplicationFailure);
      expect((err.cause as ApplicationFailure).type).toBe('InvalidInput');
      expect((err.cause as ApplicationFailure).message).toMatch(message);
    });
  });
});
