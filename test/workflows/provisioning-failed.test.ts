import { CoreV1Api } from '@kubernetes/client-node';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createActivities } from '../../src/activities';
import { KubernetesClient } from '../../src/clients/kubernetes';
import {
  ESCALATION_EVENT_REASON,
  InvalidInputError,
  workflowIdFor,
  type DiagnosisReport,
  type RunbookInput,
  type RunbookStatus,
} from '../../src/runbook';
import { startRunbook } from '../../src/temporal/start-runbook';
import { statusQuery } from '../../src/workflows/messages';
import {
  ApprovalPending,
  NodeGroup,
  RunbookCause,
  RunbookOutcome,
  RunbookStage,
  VPSieNodeName,
} from '../../src/workflows/search-attributes';
import { rejectsWith } from '../support/expect-rejection';
import { recordHistory } from '../support/histories';
import {
  ClusterCleanup,
  createTestNamespace,
  joinsAndBecomesReady,
  kubeConfigFor,
  kubeConfigImpersonating,
  VPSieNodeFixtures,
} from '../support/kube';
import { connectTemporal, uniqueTaskQueue, withWorker, type TemporalTestContext } from '../support/temporal';

/*
 * The runbook workflow with VPSie not configured (`vpsie: null`) and VPSieNodes written by the test as the
 * controller would write them, without NodeGroups (unless a test makes one). What a person sees: the wait while
 * the controller has time, then evidence, cause, plan and outcome. The VPSie side of each cause, approvals and
 * remediation are played end to end with the simulators in other files; these tests keep to what needs no VPSie.
 */

let ctx: TemporalTestContext;
let namespace: string;
const taskQueue = uniqueTaskQueue('provisioning-failed');
const fixtures = new VPSieNodeFixtures();
const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
const cleanup = new ClusterCleanup();
// The worker reads the cluster as the restricted identity, with only the project's RBAC role.
const activities = () =>
  createActivities({ kubernetes: new KubernetesClient(kubeConfigFor('runbook')), vpsie: null });
const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
// The shortest recheck the input allows. Tests that need a second look wait for it once (about 10 s).
const RECHECK = '10s';
/**
 * A VPSie node group id, as the NodeGroup controller copies it into each VPSieNode: without one (0) the
 * controller cannot create the machine, which the runbook reports as VMCreationFailed.
 */
const GROUP = { vpsieGroupID: 7 };

beforeAll(async () => {
  ctx = await connectTemporal();
  namespace = await createTestNamespace('wf');
});
afterAll(async () => {
  await cleanup.deleteAll();
  await ctx?.close();
});

function input(name: string, options: RunbookInput['options'] = {}): RunbookInput {
  return { namespace, name, options };
}

/** What an alert receiver does: the product's start helper, with its policies. */
function alert(name: string, options: RunbookInput['options'] = {}) {
  return startRunbook(ctx.client, input(name, options), { taskQueue });
}

/** The Warning Events the runbook wrote about a VPSieNode when it escalated (`kubectl describe vpsienode`). */
async function escalationEvents(name: string) {
  const { items } = await adminCore.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.name=${name},reason=${ESCALATION_EVENT_REASON}`,
  });
  return items;
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
 * event. `TemporalChangeVersion` is left out: the SDK writes it itself, once per run, for the `patched()` markers.
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
/** What a local activity's marker records: its type and the attempt that completed it. */
function localActivity(e: HistoryEvent): { type: string; attempt: number } | null {
  const m = e.markerRecordedEventAttributes;
  if (m?.markerName !== 'core_local_activity') return null;
  const data = m.details?.data?.payloads?.[0];
  const d = data
    ? (defaultPayloadConverter.fromPayload(data) as { activity_type: string; attempt: number })
    : null;
  return d ? { type: d.activity_type, attempt: d.attempt } : null;
}

/** The activities a run scheduled, by type, in order; local activities as `local:<type>`. */
const activitiesScheduled = (events: HistoryEvent[]) =>
  events.flatMap((e) => {
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
      return [e.activityTaskScheduledEventAttributes?.activityType?.name];
    const local = localActivity(e);
    return local ? [`local:${local.type}`] : [];
  });

/** The search attribute writes every new run starts with. */
const firstWrite = (name: string) => ({
  VPSieNodeNamespace: namespace,
  VPSieNodeName: name,
  RunbookStage: 'diagnosing',
  ApprovalPending: false,
});

describe('provisioningFailedRunbook', () => {
  it('waits while the controller still has time, answers status meanwhile, and ends Recovered when the node joins', async () => {
    const ref = { namespace, name: 'ng-a-waits' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 4101, nodeGroupName: 'ng-a', ...GROUP },
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
        // nothing is diagnosed, planned or asked while the controller still has time
        cause: null,
        plan: [],
        pendingApproval: null,
        escalation: null,
        dryRun: false,
        approvers: [],
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

      // The node joins: the runbook sees it on its next look, reads the evidence, and does nothing else.
      const nodeName = await joinsAndBecomesReady(fixtures, cleanup, ref);
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({
        outcome: 'Recovered',
        runs: 1,
        error: null,
        startedAt: waiting.startedAt,
        cause: 'Recovered',
        plan: [],
        decisions: [],
        escalation: null,
        replacement: null,
      });
      expect(report.checks).toBeGreaterThanOrEqual(2);
      expect(report.vpsieNode).toMatchObject({
        phase: 'Ready',
        vpsieInstanceID: 4101,
        nodeGroupName: 'ng-a',
      });
      // The cause names its evidence: the Node, found by the controller's label, is Ready.
      expect(report.reasons).toEqual([
        expect.objectContaining({
          finding: 'node-ready',
          source: 'node',
          field: `Node ${nodeName} condition Ready`,
          value: 'True',
        }),
      ]);
      expect(report.evidence).toMatchObject({
        vpsieNode: { phase: 'Ready' },
        node: { status: 'ok', value: { matchedBy: 'label', node: { name: nodeName, readyStatus: 'True' } } },
        // VPSie is not configured: its sources say so, the Kubernetes side is read all the same
        machine: { status: 'unavailable', why: 'VPSie is not configured' },
        nodeGroup: { status: 'ok', value: null },
      });

      const done = await handle.query(statusQuery);
      expect(done).toMatchObject({ stage: 'completed', outcome: 'Recovered', cause: 'Recovered' });
      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(VPSieNodeName)).toBe('ng-a-waits');
      expect(description.typedSearchAttributes.get(RunbookStage)).toBe('completed');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('Recovered');
      expect(description.typedSearchAttributes.get(RunbookCause)).toBe('Recovered');
      expect(description.typedSearchAttributes.get(NodeGroup)).toBe('ng-a');
      expect(description.typedSearchAttributes.get(ApprovalPending)).toBe(false);

      // One read per look, one round of evidence, then any incident of an earlier run resolved; search
      // attributes written once per change.
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(activitiesScheduled(events)).toEqual([
        ...Array<string>(report.checks).fill('local:checkVPSieNode'),
        'local:gatherEvidence',
        'resolveEscalation',
      ]);
      expect(searchAttributeWrites(events)).toEqual([
        firstWrite('ng-a-waits'),
        { RunbookStage: 'waiting-for-controller' },
        { RunbookStage: 'gathering-evidence' },
        { RunbookCause: 'Recovered', NodeGroup: 'ng-a' },
        { RunbookStage: 'completed', RunbookOutcome: 'Recovered' },
      ]);
      await recordHistory(handle.workflowId, runId, 'whole-waits-then-recovered.json');
    });
  });

  it('escalates a node stuck past the controller limit when no NodeGroup would replace it, and destroys nothing', async () => {
    const ref = { namespace, name: 'ng-a-stuck' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 0, nodeGroupName: 'ng-a', ...GROUP },
      { phase: 'Provisioning', createdAt: minutesAgo(25) },
    );
    const uid = (await fixtures.get('vpsienodes', namespace, ref.name))!.metadata.uid;
    await withWorker(ctx, taskQueue, activities(), async () => {
      const { handle, runId } = await alert(ref.name);
      const report: DiagnosisReport = await handle.result();
      const why = `NodeGroup ${namespace}/ng-a does not exist, so nothing would replace a deleted ng-a-stuck: a person must decide.`;
      expect(report).toMatchObject({
        outcome: 'Escalated',
        checks: 1,
        error: null,
        progress: { kind: 'stuck' },
        vpsieNode: { vpsieInstanceID: 0, uid },
        cause: 'ProvisioningTimeout',
        decisions: [],
        replacement: null,
        escalation: {
          kind: 'cause',
          step: 'escalate',
          cause: 'ProvisioningTimeout',
          ref,
          uid,
          reason: why,
          workflowId: handle.workflowId,
          runId,
          record: {
            channels: [
              {
                channel: 'kubernetes-event',
                ok: true,
                detail: expect.stringContaining(`Warning Event ${ESCALATION_EVENT_REASON}`),
              },
            ],
          },
        },
      });
      expect(report.progress?.reason).toMatch(/^Provisioning for 2[45] min, past the controller's limit$/);
      expect(report.reasons?.[0]).toMatchObject({
        finding: 'provisioning-timeout',
        source: 'vpsieNode',
        field: 'status.createdAt',
      });
      expect(report.reasons?.[0].says).toMatch(
        /^in Provisioning for 2[45] min, past the controller's 10 min$/,
      );
      // The plan is the hand-off alone; the escalation carries the evidence, the unread VPSie side included.
      expect(report.plan).toEqual([
        expect.objectContaining({ id: 'escalate', kind: 'escalate', destructive: false, state: 'done' }),
      ]);
      expect(report.escalation?.evidence).toContain(
        'could not read machine: unavailable: VPSie is not configured',
      );

      // Nothing was destroyed: the same object is there, not being deleted.
      const after = await fixtures.get('vpsienodes', namespace, ref.name);
      expect(after?.metadata.uid).toBe(uid);
      expect(after?.metadata.deletionTimestamp).toBeUndefined();
      // `kubectl describe vpsienode` shows the hand-off.
      const events = await escalationEvents(ref.name);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'VPSieNode', uid } });
      expect(events[0].message).toContain(why);

      const status: RunbookStatus = await handle.query(statusQuery);
      expect(status).toMatchObject({
        stage: 'completed',
        outcome: 'Escalated',
        cause: 'ProvisioningTimeout',
      });
      expect(status.escalation).toEqual(report.escalation);
      const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      expect(metadata.currentDetails).toBe(`VPSieNode ${namespace}/ng-a-stuck: Escalated (${why})`);

      const [{ events: history }] = await chain(handle.workflowId, runId);
      expect(activitiesScheduled(history)).toEqual([
        'local:checkVPSieNode',
        'local:gatherEvidence',
        'escalate',
      ]);
      expect(searchAttributeWrites(history)).toEqual([
        firstWrite('ng-a-stuck'),
        { RunbookStage: 'gathering-evidence' },
        { RunbookCause: 'ProvisioningTimeout', NodeGroup: 'ng-a' },
        { RunbookStage: 'remediating' },
        { RunbookStage: 'escalating' },
        { RunbookStage: 'completed', RunbookOutcome: 'Escalated' },
      ]);
      await recordHistory(handle.workflowId, runId, 'whole-escalated-no-nodegroup.json');
    });
  });

  it('escalates a Failed node with a VPSie error when VPSie cannot be asked whether recreating would help', async () => {
    const ref = { namespace, name: 'ng-a-failed' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 0, nodeGroupName: 'ng-a', ...GROUP },
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
        outcome: 'Escalated',
        progress: { kind: 'failed', reason: 'phase Failed (VPSieAPIError: offering 99 not found)' },
        cause: 'VMCreationFailed',
        escalation: { kind: 'cause', step: 'escalate', cause: 'VMCreationFailed' },
      });
      expect(report.reasons).toEqual([
        expect.objectContaining({
          finding: 'creation-error',
          source: 'vpsieNode',
          field: 'status.conditions[Error], status.lastError',
          value: 'VPSieAPIError: offering 99 not found',
        }),
        expect.objectContaining({ finding: 'catalog-unverified', value: 'VPSie is not configured' }),
      ]);
      expect(report.escalation?.reason).toBe(
        "Creating the machine failed and the NodeGroup's ids could not be checked against VPSie (VPSie is not configured), so a recreate is not shown to help. Nothing is deleted.",
      );
      expect(
        (await fixtures.get('vpsienodes', namespace, ref.name))?.metadata.deletionTimestamp,
      ).toBeUndefined();
    });
  });

  it('ends VPSieNodeGone when the VPSieNode does not exist, escalating nothing', async () => {
    await withWorker(ctx, taskQueue, activities(), async () => {
      const { handle, runId } = await alert('never-created');
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({
        outcome: 'VPSieNodeGone',
        vpsieNode: null,
        checks: 1,
        error: null,
        cause: 'VPSieNodeGone',
        plan: [],
        escalation: null,
      });
      expect(report.reasons).toEqual([
        expect.objectContaining({ finding: 'vpsienode-gone', value: 'not found' }),
      ]);
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(activitiesScheduled(events)).toEqual(['local:checkVPSieNode', 'local:gatherEvidence']);
      expect(searchAttributeWrites(events)).toEqual([
        firstWrite('never-created'),
        { RunbookStage: 'gathering-evidence' },
        { RunbookCause: 'VPSieNodeGone' },
        { RunbookStage: 'completed', RunbookOutcome: 'VPSieNodeGone' },
      ]);
      await recordHistory(handle.workflowId, runId, 'whole-vpsienode-never-existed.json');
    });
  });

  it('escalates with the error, not a failed run, when the read is refused', async () => {
    const ref = { namespace, name: 'ng-a-forbidden' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a', ...GROUP },
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
        outcome: 'Escalated',
        progress: null,
        vpsieNode: null,
        checks: 0,
        runs: 1,
        error: {
          step: 'checkVPSieNode',
          type: 'Kubernetes403',
          retryState: 'NON_RETRYABLE_FAILURE',
        },
        evidence: null,
        cause: null,
        plan: [],
        escalation: { kind: 'read-failed', step: null, cause: null, uid: null, ref },
      });
      expect(report.error?.message).toMatch(/forbidden/i);
      expect(report.error?.message).toMatch(/no-role-bound/);
      const error = report.error!;
      expect(report.escalation?.reason).toBe(
        `VPSieNode ${namespace}/ng-a-forbidden could not be read: Kubernetes403: ${error.message}`,
      );
      expect(report.escalation?.evidence).toEqual([`checkVPSieNode: Kubernetes403: ${error.message}`]);
      // The same identity may not write the Event either: the run says so and still carries the escalation.
      expect(report.escalation?.record?.channels).toEqual([
        {
          channel: 'kubernetes-event',
          ok: false,
          detail: expect.stringMatching(/Kubernetes403: .*events is forbidden/),
        },
      ]);

      const status: RunbookStatus = await handle.query(statusQuery);
      expect(status).toMatchObject({ stage: 'completed', outcome: 'Escalated', error: report.error });
      expect(status.escalation).toEqual(report.escalation);
      const description = await handle.describe();
      expect(description.status.name).toBe('COMPLETED');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('Escalated');
      // A permanent answer is not retried: one attempt, then the hand-off.
      const [{ events }] = await chain(handle.workflowId, runId);
      expect(activitiesScheduled(events)).toEqual(['local:checkVPSieNode', 'escalate']);
      expect(events.map(localActivity).filter((a) => a !== null)).toEqual([
        { type: 'checkVPSieNode', attempt: 1 },
      ]);
      const started = eventsOfType(events, 'EVENT_TYPE_ACTIVITY_TASK_STARTED');
      expect(started.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
      expect(searchAttributeWrites(events)).toEqual([
        firstWrite('ng-a-forbidden'),
        { RunbookStage: 'escalating' },
        { RunbookStage: 'completed', RunbookOutcome: 'Escalated' },
      ]);
      await recordHistory(handle.workflowId, runId, 'whole-read-failed.json');
    });
  });

  it('continues as new after checksPerRun looks, and status and report read as one run', async () => {
    const ref = { namespace, name: 'ng-a-long' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a', ...GROUP },
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

      await joinsAndBecomesReady(fixtures, cleanup, ref);
      const report: DiagnosisReport = await handle.result();
      expect(report).toMatchObject({ outcome: 'Recovered', cause: 'Recovered', startedAt: first.startedAt });
      expect(report.runs).toBeGreaterThanOrEqual(2);
      expect(report.checks).toBe(report.runs);

      const runs = await chain(handle.workflowId, firstRunId);
      expect(runs).toHaveLength(report.runs);
      expect(eventsOfType(runs[0].events, 'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW')).toHaveLength(1);
      // Evidence is gathered once, by the last run.
      expect(
        runs.flatMap((r) => activitiesScheduled(r.events)).filter((a) => a === 'local:gatherEvidence'),
      ).toHaveLength(1);
      // The continued runs inherit the search attributes: across the whole chain each change is written once.
      expect(runs.flatMap((r) => searchAttributeWrites(r.events))).toEqual([
        firstWrite('ng-a-long'),
        { RunbookStage: 'waiting-for-controller' },
        { RunbookStage: 'gathering-evidence' },
        { RunbookCause: 'Recovered', NodeGroup: 'ng-a' },
        { RunbookStage: 'completed', RunbookOutcome: 'Recovered' },
      ]);
      const description = await handle.describe();
      expect(description.runId).toBe(runs.at(-1)?.runId);
      expect(description.typedSearchAttributes.get(VPSieNodeName)).toBe('ng-a-long');
      expect(description.typedSearchAttributes.get(RunbookOutcome)).toBe('Recovered');
      await recordHistory(handle.workflowId, firstRunId, 'whole-continued-as-new.json');
    });
  });

  it('runs once per VPSieNode: a second alert joins the open run; after it closed, an alert starts a new one', async () => {
    const ref = { namespace, name: 'ng-a-once' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a', ...GROUP },
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

      // The node recovers and the run closes; then its machine is lost: a new alert, a new run.
      const nodeName = await joinsAndBecomesReady(fixtures, cleanup, ref);
      const firstReport: DiagnosisReport = await first.handle.result();
      expect(firstReport.outcome).toBe('Recovered');
      await adminCore.deleteNode({ name: nodeName });
      await fixtures.setStatus(ref, { phase: 'Failed', lastError: 'VM lost' });
      const next = await alert(ref.name);
      expect(next.runId).not.toBe(first.runId);
      const nextReport: DiagnosisReport = await next.handle.result();
      // Nothing the runbook knows explains "VM lost" without VPSie: a person gets it, with the evidence.
      expect(nextReport).toMatchObject({
        outcome: 'Escalated',
        checks: 1,
        cause: 'Unknown',
        escalation: { kind: 'cause', step: 'escalate' },
      });
      expect(nextReport.escalation?.evidence).toContain(
        'the error the controller recorded (vpsieNode status.lastError: VM lost)',
      );
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

  it.each([
    [{ recheckInterval: '1s' }, 'options.recheckInterval must be between 10s and 1h, got "1s"'],
    [{ dryRun: 'yes' }, 'options.dryRun must be true or false, got "yes"'],
    [{ approvalTtl: '1s' }, 'options.approvalTtl must be between 10s and 7 days, got "1s"'],
    [
      { autoApprove: ['delete-everything'] },
      'options.autoApprove: unknown step kind(s) "delete-everything"; known: patch-nodegroup-version, delete-vpsienode, terminate-machine',
    ],
    [{ approvers: [42] }, 'options.approvers[0] must be a non-empty string, got 42'],
    [{ readyWait: '1s' }, 'options.readyWait must be between 10s and 6h, got "1s"'],
  ])('refuses bad input %j before starting a run, naming the field', async (options, message) => {
    const bad = input(
      `ng-a-refused-${Object.keys(options)[0].toLowerCase()}`,
      options as RunbookInput['options'],
    );
    const err = await rejectsWith(startRunbook(ctx.client, bad, { taskQueue }), InvalidInputError);
    expect(err.message).toBe(message);
    await rejectsWith(ctx.client.workflow.getHandle(workflowIdFor(bad)).describe(), WorkflowNotFoundError);
  });

  it('refuses a continuation from anyone but the workflow', async () => {
    const smuggled = { ...input('ng-a-smuggled'), continuation: {} } as RunbookInput;
    await expect(startRunbook(ctx.client, smuggled, { taskQueue })).rejects.toThrow(
      'continuation is set only by the workflow itself when it continues as new',
    );
    await rejectsWith(
      ctx.client.workflow.getHandle(workflowIdFor(smuggled)).describe(),
      WorkflowNotFoundError,
    );
  });

  let badRuns = 0;
  it.each([
    [{ recheckInterval: 'whenever' }, /options\.recheckInterval must be a duration/],
    [{ recheckInterval: '1s' }, /options\.recheckInterval must be between 10s and 1h, got "1s"/],
    [{ joiningLimit: '12h' }, /options\.joiningLimit must be more than 0 and at most 6h, got "12h"/],
    [{ checksPerRun: 0 }, /options\.checksPerRun must be a whole number between 1 and 1000, got 0/],
    [{ dryRun: 'yes' }, /^options\.dryRun must be true or false, got "yes"$/],
    [{ approvalTtl: '1s' }, /^options\.approvalTtl must be between 10s and 7 days, got "1s"$/],
    [
      { autoApprove: ['delete-everything'] },
      /^options\.autoApprove: unknown step kind\(s\) "delete-everything"/,
    ],
    [{ approvers: [42] }, /^options\.approvers\[0\] must be a non-empty string, got 42$/],
    [{ readyWait: '1s' }, /^options\.readyWait must be between 10s and 6h, got "1s"$/],
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
      expect((err.cause as ApplicationFailure).nonRetryable).toBe(true);
      expect((err.cause as ApplicationFailure).message).toMatch(message);
      // It failed before reading anything.
      const { events } = await handle.fetchHistory();
      expect(activitiesScheduled(events ?? [])).toEqual([]);
    });
  });
});
