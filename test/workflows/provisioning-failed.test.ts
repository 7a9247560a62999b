import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../../src/activities';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { workflowIdFor, type DiagnosisReport, type RunbookInput } from '../../src/runbook';
import { statusQuery } from '../../src/workflows/messages';
import { RunbookOutcome, RunbookStage, VPSieNodeName } from '../../src/workflows/search-attributes';
import { findTemporalCli } from '../../src/temporal/cli-binary';
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

beforeAll(async () => {
  ctx = await connectTemporal();
  namespace = await createTestNamespace('wf');
});
afterAll(() => ctx?.close());

function start(name: string, options: RunbookInput['options'] = {}) {
  const input: RunbookInput = { namespace, name, options };
  return ctx.client.workflow.start('provisioningFailedRunbook', {
    taskQueue,
    workflowId: workflowIdFor(input),
    args: [input],
  });
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('provisioningFailedRunbook', () => {
  it('waits while the controller still has time, answers status meanwhile, and ends when the node is Ready', async () => {
    const ref = { namespace, name: 'ng-a-waits' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 4101, nodeGroupName: 'ng-a' },
      {
        phase: 'Provisioning',
        createdAt: minutesAgo(1),
      },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const handle = await start(ref.name, { recheckInterval: '300ms' });
      expect(handle.workflowId).toBe(`provisioning-failed/${namespace}/ng-a-waits`);

      const waiting = await eventually(
        () => handle.query(statusQuery),
        (s) => s.stage === 'waiting-for-controller',
      );
      expect(waiting).toMatchObject({
        ref,
        stage: 'waiting-for-controller',
        progress: { kind: 'in-progress' },
        outcome: null,
      });
      expect(waiting.progress?.reason).toMatch(/^Provisioning for \d+ min, within the controller's limit$/);
      expect(waiting.nextCheckAt).not.toBeNull();
      // What the Temporal UI shows as the run's current details.
      const metadata = (await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string };
      expect(metadata.currentDetails).toMatch(
        new RegExp(`^VPSieNode ${namespace}/ng-a-waits: Provisioning for \\d+ min.*next check in`),
      );

      // The controller finishes: the runbook sees it on its next look and does nothing else.
      await fixtures.setStatus(ref, { phase: 'Ready', readyAt: new Date().toISOString() });
      const report: DiagnosisReport = await handle.result();
      expect(report.outcome).toBe('recovered');
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

      if (process.env.RECORD_HISTORIES) {
        // Exported by the Temporal CLI, in the JSON form the UI's and CLI's "download history" give.
        const cli = await findTemporalCli();
        if (!cli) throw new Error('recording histories needs the Temporal CLI');
        const json = execFileSync(
          cli,
          [
            'workflow',
            'show',
            '--workflow-id',
            handle.workflowId,
            '--output',
            'json',
            '--address',
            temporalAddress(),
          ],
          { encoding: 'utf8' },
        );
        writeFileSync(join(HISTORY_DIR, 'waits-then-recovered.json'), json);
      }
    });
  });

  it('does not wait for a node stuck past the controller limit', async () => {
    const ref = { namespace, name: 'ng-a-stuck' };
    await fixtures.create(
      ref,
      { vpsieInstanceID: 0, nodeGroupName: 'ng-a' },
      {
        phase: 'Provisioning',
        createdAt: minutesAgo(25),
      },
    );
    await withWorker(ctx, taskQueue, activities(), async () => {
      const report: DiagnosisReport = await (await start(ref.name)).result();
      expect(report.outcome).toBe('needs-remediation');
      expect(report.checks).toBe(1);
      expect(report.progress).toMatchObject({ kind: 'stuck' });
      expect(report.progress.reason).toMatch(/^Provisioning for 2[45] min, past the controller's limit$/);
      expect(report.vpsieNode?.vpsieInstanceID).toBe(0);
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
      const report: DiagnosisReport = await (await start(ref.name)).result();
      expect(report).toMatchObject({
        outcome: 'needs-remediation',
        progress: { kind: 'failed', reason: 'phase Failed (VPSieAPIError: offering 99 not found)' },
      });
    });
  });

  it('reports a VPSieNode that does not exist as not-found', async () => {
    await withWorker(ctx, taskQueue, activities(), async () => {
      const report: DiagnosisReport = await (await start('never-created')).result();
      expect(report).toMatchObject({ outcome: 'not-found', vpsieNode: null, checks: 1 });
    });
  });

  it('runs once per VPSieNode: a second start with the same node is refused', async () => {
    const ref = { namespace, name: 'ng-a-once' };
    await fixtures.create(
      ref,
      { nodeGroupName: 'ng-a' },
      { phase: 'Provisioning', createdAt: minutesAgo(0) },
    );
    const handle = await start(ref.name, { recheckInterval: '1h' });
    await expect(start(ref.name)).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    await handle.terminate('test done');
  });

  it('fails at once, without retrying, on invalid input', async () => {
    await withWorker(ctx, taskQueue, activities(), async () => {
      const handle = await start('bad-options', { recheckInterval: 'whenever' });
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('InvalidInput');
      expect((cause as ApplicationFailure).message).toMatch(/options\.recheckInterval/);
    });
  });
});
