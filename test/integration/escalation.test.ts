/**
 * The activity `escalate` against the real kube-apiserver, as the restricted identity `vpsie-runbook` (so these
 * tests also prove that deploy/kubernetes/role.yaml lets it create Events), in an activity context with the SDK's
 * own logger, and through a real Temporal worker where retries matter.
 */
import { randomUUID } from 'node:crypto';
import { CoreV1Api, type CoreV1Event } from '@kubernetes/client-node';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, type LogEntry } from '@temporalio/worker';
import { createEscalationActivities, escalationEventName } from '../../src/activities/escalation';
import { createKubernetesActivities } from '../../src/activities/kubernetes';
import { KubernetesApiError, KubernetesClient } from '../../src/clients/kubernetes';
import {
  ESCALATION_EVENT_REASON,
  MAX_EVENT_MESSAGE_BYTES,
  utf8Length,
  type Escalation,
  type EscalationRecord,
} from '../../src/runbook';
import { rejectsWith } from '../support/expect-rejection';
import {
  createTestNamespace,
  kubeConfigFor,
  kubeConfigImpersonating,
  VPSieNodeFixtures,
} from '../support/kube';
import { TestWorker, uniqueTaskQueue } from '../support/temporal';

const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
const runbookKube = new KubernetesClient(kubeConfigFor('runbook'));
const reads = createKubernetesActivities(runbookKube);
const fixtures = new VPSieNodeFixtures();

/**
 * The project's client with one fault for tests: the next `createEvent` reaches the apiserver and creates the
 * Event, then its answer is lost (a 503, as a dropped connection or a restarting apiserver would give).
 */
class LosesNextAnswer extends KubernetesClient {
  calls = 0;
  loseNext = false;

  override async createEvent(namespace: string, event: CoreV1Event): Promise<'created' | 'already-exists'> {
    this.calls += 1;
    const written = await super.createEvent(namespace, event);
    if (this.loseNext) {
      this.loseNext = false;
      throw new KubernetesApiError(503, `create event ${namespace}`, 'the answer was lost (injected)');
    }
    return written;
  }
}

let ns: string;
let uid: string;
const name = 'ng-a-7x2k';

beforeAll(async () => {
  ns = await createTestNamespace('escal');
  uid = (await fixtures.vpsieNode(ns, name)).metadata.uid;
});

/** A run's escalation about the test's VPSieNode; each call is another run unless `runId` is given. */
const escalation = (over: Partial<Escalation> = {}): Escalation => ({
  workflowId: `provisioning-failed/${ns}/${name}`,
  runId: randomUUID(),
  ref: { namespace: ns, name },
  uid,
  cause: 'SSHKeyInvalid',
  kind: 'cause',
  reason: 'The NodeGroup names SSH keys the VPSie account lacks: add key-9 to the account or fix sshKeyIDs.',
  step: 'escalate',
  evidence: [
    'NodeGroup spec.sshKeyIDs: key-9 is not in the VPSie account',
    'VPSieNode status.lastError: failed to create VPS: ssh key not found',
  ],
  ...over,
});

/** Runs `escalate` in an activity context whose logger keeps what it is given. */
async function escalateLogged(
  kube: KubernetesClient,
  e: unknown,
): Promise<{ record: EscalationRecord; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  const env = new MockActivityEnvironment(undefined, {
    logger: new DefaultLogger('DEBUG', (entry) => logs.push(entry)),
  });
  const { escalate } = createEscalationActivities(kube);
  const record = await env.run<[Escalation], EscalationRecord, typeof escalate>(escalate, e as Escalation);
  return { record, logs: logs.filter((l) => /escalat/i.test(l.message)) };
}

/** Every Event in the test namespace written for this run, as the admin reads them (all fields). */
async function eventsOfRun(runId: string): Promise<CoreV1Event[]> {
  const list = await adminCore.listNamespacedEvent({ namespace: ns });
  return list.items.filter((e) => e.metadata.annotations?.['vpsie-runbook/run-id'] === runId);
}

describe('escalate', () => {
  it('writes a Warning Event RunbookEscalated about the VPSieNode, which the runbook reads back as evidence', async () => {
    const e = escalation();
    const before = Date.now();
    const { record, logs } = await escalateLogged(runbookKube, e);

    const [event, ...more] = await eventsOfRun(e.runId);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      metadata: {
        namespace: ns,
        name: escalationEventName(e),
        annotations: {
          'vpsie-runbook/workflow-id': e.workflowId,
          'vpsie-runbook/run-id': e.runId,
          'vpsie-runbook/step': 'escalate',
          'vpsie-runbook/kind': 'cause',
          'vpsie-runbook/cause': 'SSHKeyInvalid',
        },
      },
      involvedObject: {
        apiVersion: 'autoscaler.vpsie.com/v1alpha1',
        kind: 'VPSieNode',
        namespace: ns,
        name,
        uid,
      },
      type: 'Warning',
      reason: 'RunbookEscalated',
      source: { component: 'vpsie-runbook' },
      reportingComponent: 'vpsie-runbook',
      reportingInstance: e.workflowId,
      count: 1,
    });
    expect(event.metadata.name).toMatch(new RegExp(`^${name}\\.[0-9a-f]{16}$`));
    expect(event.message).toBe(
      [
        e.reason,
        'Cause: SSHKeyInvalid; step: escalate; kind: cause.',
        'Evidence:',
        `- ${e.evidence[0]}`,
        `- ${e.evidence[1]}`,
      ].join('\n'),
    );

    expect(record.channels).toEqual([
      {
        channel: 'kubernetes-event',
        ok: true,
        detail: `Warning Event RunbookEscalated ${ns}/${event.metadata.name} about VPSieNode ${ns}/${name}`,
      },
    ]);
    expect(Date.parse(record.recordedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(record.recordedAt).toBe(new Date(record.recordedAt).toISOString());

    // runbook step 2 sees it, as a person's `kubectl describe vpsienode` would
    const seen = await reads.listVPSieNodeEvents({ namespace: ns, name }, uid);
    expect(seen.filter((s) => s.reason === ESCALATION_EVENT_REASON && s.message === event.message)).toEqual([
      expect.objectContaining({
        type: 'Warning',
        source: 'vpsie-runbook',
        count: 1,
        involvedObject: { kind: 'VPSieNode', name, uid },
      }),
    ]);

    // and the worker's log says it, with the activity's own context
    expect(logs).toEqual([
      expect.objectContaining({
        level: 'WARN',
        message: 'Runbook escalated',
        meta: expect.objectContaining({
          vpsieNode: `${ns}/${name}`,
          uid,
          cause: 'SSHKeyInvalid',
          kind: 'cause',
          step: 'escalate',
          event: `${ns}/${event.metadata.name}`,
          message: event.message,
          activityType: expect.any(String),
        }),
      }),
    ]);
  });

  it('writes one Event however often the same escalation is recorded; another step is another Event', async () => {
    const e = escalation();
    const first = await escalateLogged(runbookKube, e);
    const second = await escalateLogged(runbookKube, e);
    expect(first.record.channels[0]).toMatchObject({ ok: true });
    expect(second.record.channels[0]).toMatchObject({
      ok: true,
      detail: expect.stringMatching(/was already written \(an earlier attempt\)$/),
    });
    expect(await eventsOfRun(e.runId)).toHaveLength(1);

    await escalateLogged(runbookKube, { ...e, step: 'wait-replacement-ready', kind: 'wait-expired' });
    const events = await eventsOfRun(e.runId);
    expect(events.map((ev) => ev.metadata.annotations?.['vpsie-runbook/step']).sort()).toEqual([
      'escalate',
      'wait-replacement-ready',
    ]);
  });

  it('escalates before classification or without a UID: the Event still names the VPSieNode', async () => {
    const e = escalation({
      uid: null,
      cause: null,
      kind: 'read-failed',
      step: null,
      reason: 'The VPSieNode could not be read: Kubernetes503 after 10 attempts. Check the apiserver.',
      evidence: [],
    });
    const { record } = await escalateLogged(runbookKube, e);
    expect(record.channels[0].ok).toBe(true);
    const [event] = await eventsOfRun(e.runId);
    expect(event.involvedObject).toEqual({
      apiVersion: 'autoscaler.vpsie.com/v1alpha1',
      kind: 'VPSieNode',
      namespace: ns,
      name,
    });
    expect(event.metadata.annotations).not.toHaveProperty('vpsie-runbook/cause');
    expect(event.metadata.annotations).not.toHaveProperty('vpsie-runbook/step');
    expect(event.message).toBe(`${e.reason}\nCause: not classified; step: none; kind: read-failed.`);
  });

  it('keeps a long escalation within 1024 bytes of UTF-8 on the apiserver, and says where the rest is', async () => {
    const evidence = Array.from({ length: 60 }, (_, i) => `source ${i}: ノードが登録されていません 🚫`);
    const e = escalation({ evidence });
    await escalateLogged(runbookKube, e);
    const [event] = await eventsOfRun(e.runId);
    const message = event.message ?? '';
    expect(utf8Length(message)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(Buffer.byteLength(message)).toBe(utf8Length(message));
    const lines = message.split('\n');
    const shownEvidence = lines.slice(3, -1).map((l) => l.replace(/^- /, ''));
    expect(shownEvidence).toEqual(evidence.slice(0, shownEvidence.length));
    expect(lines.at(-1)).toBe(`… (${60 - shownEvidence.length} more lines in workflow ${e.workflowId})`);
  });

  it('an identity without the role gets ok:false with the reason, not a failed run, and writes nothing', async () => {
    const e = escalation();
    const forbidden = new KubernetesClient(kubeConfigImpersonating('no-role-bound'));
    const { record, logs } = await escalateLogged(forbidden, e);
    expect(record.channels).toEqual([
      {
        channel: 'kubernetes-event',
        ok: false,
        detail: expect.stringMatching(
          new RegExp(
            `^no Event about VPSieNode ${ns}/${name}: Kubernetes403: create event .*forbidden.*no-role-bound`,
          ),
        ),
      },
    ]);
    expect(logs.map((l) => [l.level, l.message])).toEqual([
      ['WARN', 'Runbook escalated'],
      ['ERROR', 'Runbook escalation not written as a Kubernetes Event'],
    ]);
    expect(await eventsOfRun(e.runId)).toEqual([]);
  });

  it('a namespace that is gone gets ok:false too', async () => {
    const gone = `escal-gone-${randomUUID().slice(0, 6)}`;
    const { record } = await escalateLogged(runbookKube, escalation({ ref: { namespace: gone, name } }));
    expect(record.channels).toEqual([
      {
        channel: 'kubernetes-event',
        ok: false,
        detail: expect.stringMatching(/: Kubernetes404: create event .*not found/),
      },
    ]);
  });

  it('refuses invalid input non-retryably, naming the field, before touching the apiserver', async () => {
    const client = new LosesNextAnswer(kubeConfigFor('runbook'));
    const { escalate } = createEscalationActivities(client);
    const err = await rejectsWith(
      new MockActivityEnvironment().run(escalate, {
        ...escalation(),
        kind: 'panic',
      } as unknown as Escalation),
      ApplicationFailure,
    );
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(err.message).toMatch(/^escalation\.kind must be one of cause, wait-expired, .*"panic"$/);
    expect(client.calls).toBe(0);
  });
});

describe('escalate under Temporal retries', () => {
  const taskQueue = uniqueTaskQueue('escalation');
  const client = new LosesNextAnswer(kubeConfigFor('runbook'));
  const worker = new TestWorker({
    taskQueue,
    workflowsPath: require.resolve('../support/run-activity-workflow'),
    activities: createEscalationActivities(client),
  });

  beforeAll(() => worker.start(), 120_000);
  afterAll(() => worker.stop());
  beforeEach(() => {
    client.calls = 0;
    client.loseNext = false;
  });

  const run = (args: unknown[]) =>
    worker.ctx.client.workflow.execute('runActivity', {
      taskQueue,
      workflowId: `escalation-activity-${randomUUID()}`,
      args: [
        'escalate',
        args,
        {
          startToCloseTimeout: '30 seconds',
          retry: { initialInterval: '100 ms', backoffCoefficient: 1, maximumAttempts: 5 },
        },
      ],
    });

  it('an attempt whose answer was lost is retried, and the retry finds its Event: one Event, recorded ok', async () => {
    const e = escalation();
    client.loseNext = true;
    const record = (await run([e])) as EscalationRecord;
    expect(client.calls).toBe(2);
    expect(record.channels).toEqual([
      expect.objectContaining({ ok: true, detail: expect.stringMatching(/was already written/) }),
    ]);
    expect(await eventsOfRun(e.runId)).toHaveLength(1);
  });

  it('invalid input fails the activity once, with the non-retryable type InvalidInput', async () => {
    const e = { ...escalation(), evidence: ['fine', 42] };
    const err = await rejectsWith(run([e]), WorkflowFailedError);
    const cause = (err.cause as { cause?: unknown }).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
      message: 'escalation.evidence[1] must be a string, got 42',
    });
    expect(client.calls).toBe(0);
    expect(await eventsOfRun(e.runId)).toEqual([]);
  });
});
