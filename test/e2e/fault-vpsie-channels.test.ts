/**
 * Issue 10, "Faults survived": VPSie and an escalation channel misbehave for longer than the product retries.
 *
 * VPSie. A VPSieNode vanished but left its VM running: the run asks to terminate it (Manual VM Cleanup), and once
 * approved VPSie answers the VM's endpoint with 429 + Retry-After, 503 + Retry-After, 500, no answer at all, or
 * 401 (a revoked token), for good. `terminateVM` is retried by Temporal (6 attempts, backoff 1 s doubling, or the
 * API's Retry-After), then the run ends Escalated with a reason that names the error; a 401 is not retried. The
 * retry budget cannot be shortened through the run's options (there is none for it): the act's own policy
 * (src/workflows/reads.ts, 6 attempts, about 31 s of backoff) is what this file waits through, and the answers
 * with Retry-After space the attempts by it. The faults are injected at the simulated VPSie for that one VM's
 * path, so that runs of the file can share the simulator. A Retry-After longer than the policy's longest
 * interval (a minute) must not park the approved act for as long as the API asks (a day, here).
 *
 * Channels. PagerDuty is down for minutes while a run escalates: it answers 503 three times, then refuses
 * connections until the run's escalation has failed four more times (seven failed attempts, about two minutes of
 * Temporal's backoff), then comes back. Slack answers 503 twice, then takes the message. Each is delivered once:
 * one PagerDuty trigger accepted (one incident, paged once) and one Slack message. The escalation's retry policy
 * (15 attempts, backoff 1 s doubling to 1 min: about 9 minutes) is the longest outage it rides out; after that the
 * channel is recorded as undelivered. That run has a worker of its own, whose PagerDuty URL goes through a
 * front that can refuse connections; the VPSie runs' worker has no channels (Events only).
 *
 * Everything is staged at once in beforeAll; each test awaits its own scenario. Waits are for events: requests
 * seen by the simulators, attempts seen in the run's pending activity, never a fixed time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import type { Worker } from '@temporalio/worker';
import { createActivities } from '../../src/activities';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { VPSieClient } from '../../src/clients/vpsie';
import type { DiagnosisReport } from '../../src/runbook';
import { startRunbook } from '../../src/temporal/start-runbook';
import { createRunbookWorker } from '../../src/worker';
import { LABEL_SIMULATOR, type VPSieNodeObj } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { MERGE } from '../support/cluster/util';
import { EscalationSink } from '../support/escalation-sink';
import { kubeConfigFor } from '../support/kube';
import { FAST_OPTIONS, RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';
import { uniqueTaskQueue } from '../support/temporal';
import { VPSieSimulator, type Fault, type RecordedRequest } from '../support/vpsie-simulator';
import { TcpFront } from '../support/tcp-front';

jest.setTimeout(300_000);

const say = (line: string): void => void process.stderr.write(`[fault-vpsie-channels] ${line}\n`);

const e = new RunbookE2E('faultvc');
const sink = new EscalationSink();
let secretsDir = '';
/** The worker whose escalations go to the sink (PagerDuty through `pdFront`). */
let channelWorker: Worker | undefined;
let channelWorkerRunning: Promise<void> | undefined;
const channelQueue = uniqueTaskQueue('faultvc-channels');

/** A TCP pass-through to the sink for PagerDuty: `down` refuses connections (and cuts open ones). */
let pdFront: TcpFront;

/** Polls until `fn` answers something; fails naming `what`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The attempts Temporal made at each call of an activity: the attempt that ended it and the failure before. */
async function attempts(
  h: RunbookHandle,
  type: string,
): Promise<{ attempt: number; lastFailure: string | null }[]> {
  const events = (await h.fetchHistory()).events ?? [];
  const scheduled = new Set(
    events
      .filter((ev) => ev.activityTaskScheduledEventAttributes?.activityType?.name === type)
      .map((ev) => String(ev.eventId)),
  );
  return events.flatMap((ev) => {
    const s = ev.activityTaskStartedEventAttributes;
    if (!s || !scheduled.has(String(s.scheduledEventId))) return [];
    return [{ attempt: s.attempt ?? 0, lastFailure: s.lastFailure?.message ?? null }];
  });
}

// ---------------------------------------------------------------------------------------------------------------
// VPSie faults: a VM left behind, its termination approved while VPSie fails.

/** Deletes a VPSieNode without its finalizer: the controller never sees the deletion, so its machine stays. */
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
      return;
    } catch (err) {
      if (err instanceof ApiException && (err.code === 409 || err.code === 404)) continue;
      throw err;
    }
  }
}

interface VPSieFaultResult {
  vmId: number;
  report: DiagnosisReport;
  h: RunbookHandle;
  /** The product's requests to the VM's path after the approval, in order. */
  requests: RecordedRequest[];
  /** Whether the VM is still in VPSie after the run. */
  vmLeft: boolean;
}

/**
 * A VM left behind by its vanished VPSieNode; the run asks to terminate it; `fault` is armed on the VM's path and
 * the termination approved.
 */
async function vpsieFault(prefix: string, fault: Fault, method?: string): Promise<VPSieFaultResult> {
  const { h, vmId, since } = await approvedWhileFailing(prefix, fault, method);
  const report = await e.result(h);
  return {
    vmId,
    report,
    h,
    requests: e.productRequests(undefined, `/vm/${vmId}`).filter((r) => r.seq > since),
    vmLeft: e.t.vpsie.getVM(vmId) !== undefined,
  };
}

/** The staging of {@link vpsieFault} up to the approval; answers the run and the request mark before it. */
async function approvedWhileFailing(
  prefix: string,
  fault: Fault,
  method?: string,
): Promise<{ h: RunbookHandle; vmId: number; since: number }> {
  const { ng, vn } = await e.stuckNode(prefix);
  const { name } = vn.metadata;
  const vmId = vn.spec.vpsieInstanceID;
  const h = await e.alert(name, { provisioningLimit: '1h' });
  await e.statusWhen(h, 'waiting for the controller', (s) => s.stage === 'waiting-for-controller');
  // The NodeGroup does not replace the vanished node (its controller stalled): no pending creation of the group
  // may adopt the VM, so the approved terminate goes as far as VPSie.
  await e.t.sim.stallNodeGroup(ng);
  await removeBypassingFinalizer(name);
  const pending = await e.pending(h, 'terminate-machine');
  expect(pending.target).toMatchObject({ kind: 'VM', id: vmId });
  e.t.vpsie.inject({ path: `/vm/${vmId}`, ...(method ? { method } : {}), fault });
  const since = e.mark();
  await e.decide(h, 'terminate-machine', 'approve', 'alice');
  return { h, vmId, since };
}

/**
 * VPSie asks to be left alone for a day (429, Retry-After: 86400): when does the act try again? Answers the delay
 * Temporal scheduled after the first refused attempt; the run is then terminated (its act would wait that long).
 */
async function retryAfterTooLong(): Promise<{ delayMs: number; failure: string }> {
  const { h } = await approvedWhileFailing(
    'ra',
    { type: 'status', status: 429, retryAfter: 86_400 },
    'DELETE',
  );
  const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
    Number(t?.seconds ?? 0) * 1000 + Math.round((t?.nanos ?? 0) / 1e6);
  const a = await until('the terminate refused once and its retry scheduled', async () => {
    const { raw } = await h.describe();
    const p = raw.pendingActivities?.find((x) => x.activityType?.name === 'terminateVM');
    return p && (p.attempt ?? 0) >= 2 && p.nextAttemptScheduleTime ? p : undefined;
  });
  await h.terminate('fault-vpsie-channels: seen when it would try again');
  return {
    delayMs: ms(a.nextAttemptScheduleTime) - ms(a.lastAttemptCompleteTime),
    failure: a.lastFailure?.message ?? '',
  };
}

const escalatedNaming = (r: VPSieFaultResult, type: string, says: RegExp) => {
  expect(r.report.outcome).toBe('Escalated');
  expect(r.report.escalation).toMatchObject({ kind: 'step-failed', step: 'terminate-machine' });
  const reason = r.report.escalation!.reason;
  expect(reason).toContain(`terminate-machine failed: ${type}: `);
  expect(reason).toMatch(says);
  expect(r.report.plan?.find((s) => s.id === 'terminate-machine')).toMatchObject({ state: 'failed' });
  // recorded where people look: the RunbookEscalated Event on the VPSieNode's namespace
  expect(r.report.escalation?.record?.channels?.[0]).toMatchObject({ channel: 'kubernetes-event', ok: true });
  // nothing was terminated
  expect(r.vmLeft).toBe(true);
};

/** Gaps between consecutive requests, ms. */
const gaps = (rs: RecordedRequest[]) => rs.slice(1).map((r, i) => r.at - rs[i].at);

// ---------------------------------------------------------------------------------------------------------------
// The channel outage.

interface OutageResult {
  wf: string;
  report: DiagnosisReport;
  h: RunbookHandle;
  refusedAttempts: number;
  ms: number;
}

/** A VPSieNode VPSie refused to create (capacity): VMCreationFailed, escalated at once to VPSie support. */
async function channelOutage(): Promise<OutageResult> {
  const name = uniq('cap');
  await e.t.sim.stage(name, 'capacity-limit');
  await e.t.createVN(name);
  await e.t.phase(name, 'Failed');

  sink.fail('pagerduty', { status: 503 }, 3);
  sink.fail('slack', { status: 503 }, 2);
  const t0 = Date.now();
  const { handle } = await startRunbook(
    e.ctx.client,
    { namespace: e.t.ns, name, options: FAST_OPTIONS },
    { taskQueue: channelQueue },
  );
  const h = handle as RunbookHandle;
  // PagerDuty answered 503 three times; from now on it refuses connections
  await sink.waitFor('pagerduty', 3, 120_000);
  await pdFront.down();
  say(`PagerDuty refuses connections from ${Date.now() - t0} ms`);
  // ... until the escalation has failed four times more (the pending activity's 8th attempt is next)
  const pendingNow = async () => {
    const { raw } = await h.describe();
    return raw.pendingActivities?.find((a) => a.activityType?.name === 'escalate');
  };
  const p = await until('four refused attempts at PagerDuty', async () => {
    const a = await pendingNow();
    return a && (a.attempt ?? 0) >= 8 ? a : undefined;
  });
  await pdFront.up();
  say(`PagerDuty back after ${Date.now() - t0} ms (next: attempt ${p.attempt})`);
  const report = await e.result(h);
  return {
    wf: h.workflowId,
    report,
    h,
    refusedAttempts: (p.attempt ?? 0) - 1 - 3,
    ms: Date.now() - t0,
  };
}

// ---------------------------------------------------------------------------------------------------------------

const staged: {
  rateLimited?: Promise<VPSieFaultResult>;
  unavailable?: Promise<VPSieFaultResult>;
  serverError?: Promise<VPSieFaultResult>;
  noAnswer?: Promise<VPSieFaultResult>;
  revoked?: Promise<VPSieFaultResult>;
  tooLong?: Promise<{ delayMs: number; failure: string }>;
  outage?: Promise<OutageResult>;
} = {};
const fileStart = Date.now();

beforeAll(async () => {
  // the stuck VMs never fail the controller's limit: the runs wait for their VPSieNodes to vanish instead
  await Promise.all([
    e.start('faultvc', { timings: { provisioningTimeoutMs: 3_600_000 } }),
    sink.start(),
    mkdtemp(join(tmpdir(), 'faultvc-')).then((d) => (secretsDir = d)),
  ]);
  const port = Number(new URL(sink.url('pagerduty')).port);
  pdFront = new TcpFront(port);
  await pdFront.up();
  const channels = await sink.channelsConfig(
    secretsDir,
    { 'vpsie-support': ['pagerduty', 'slack'], 'platform-team': ['slack'] },
    [],
  );
  channels.pagerduty!.eventsUrl = `http://127.0.0.1:${pdFront.port}/v2/enqueue`;
  const codePath = process.env.VPSIE_TEST_WORKFLOW_BUNDLE;
  channelWorker = await createRunbookWorker({
    connection: e.ctx.nativeConnection,
    namespace: 'default',
    taskQueue: channelQueue,
    activities: createActivities({
      kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
      vpsie: new VPSieClient({
        baseUrl: e.t.vpsie.baseUrl,
        token: VPSieSimulator.DEFAULT_TOKEN,
        timeoutMs: 5_000,
      }),
      controller: { labelSelector: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${e.t.sim.id}` },
      channels,
    }),
    ...(codePath ? { workflowBundle: { codePath } } : {}),
  });
  channelWorkerRunning = channelWorker.run();

  const quiet = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => undefined); // awaited by its test; no unhandled rejection meanwhile
    return p;
  };
  staged.outage = quiet(channelOutage());
  staged.rateLimited = quiet(vpsieFault('rl', { type: 'status', status: 429, retryAfter: 2 }, 'DELETE'));
  staged.unavailable = quiet(vpsieFault('un', { type: 'status', status: 503, retryAfter: 2 }, 'DELETE'));
  staged.serverError = quiet(vpsieFault('se', { type: 'status', status: 500 }, 'DELETE'));
  staged.noAnswer = quiet(vpsieFault('na', { type: 'hang' }, 'DELETE'));
  // a revoked token: every request gets 401
  staged.revoked = quiet(vpsieFault('rv', { type: 'status', status: 401 }));
  staged.tooLong = quiet(retryAfterTooLong());
}, 120_000);

afterAll(async () => {
  channelWorker?.shutdown();
  await channelWorkerRunning;
  await e.stop();
  await pdFront?.down();
  await sink.stop();
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
  say(`file took ${Math.round((Date.now() - fileStart) / 1000)} s`);
});

test('VPSie answers 429 with Retry-After for good: the terminate is retried 6 times, spaced as VPSie asked, then the run escalates naming HTTP 429', async () => {
  const r = await staged.rateLimited!;
  escalatedNaming(r, 'VPSieRateLimited', /HTTP 429 Too Many Requests/);
  // each attempt re-reads the VM (its precondition), then sends the DELETE VPSie refuses
  expect(r.requests.map((x) => `${x.method} ${x.status}`)).toEqual(
    Array.from({ length: 6 }, () => ['GET 200', 'DELETE 429']).flat(),
  );
  const deletes = r.requests.filter((x) => x.method === 'DELETE');
  // Retry-After: 2 (seconds) rather than the policy's 1 s, 2 s, 4 s, ...
  for (const g of gaps(deletes)) expect(g).toBeGreaterThanOrEqual(1_900);
  expect(gaps(deletes).some((g) => g >= 3_900)).toBe(false);
  expect(await attempts(r.h, 'terminateVM')).toEqual([
    { attempt: 6, lastFailure: expect.stringMatching(/HTTP 429/) },
  ]);
});

test('VPSie answers 503 with Retry-After for good: retried 6 times as asked, then escalated naming HTTP 503', async () => {
  const r = await staged.unavailable!;
  escalatedNaming(r, 'VPSieServer', /HTTP 503 Service Unavailable/);
  const deletes = r.requests.filter((x) => x.method === 'DELETE');
  expect(deletes.map((x) => x.status)).toEqual(Array(6).fill(503));
  for (const g of gaps(deletes)) expect(g).toBeGreaterThanOrEqual(1_900);
  expect(await attempts(r.h, 'terminateVM')).toEqual([
    { attempt: 6, lastFailure: expect.stringMatching(/HTTP 503/) },
  ]);
});

test('VPSie answers 500 for good: retried with backoff through the policy (6 attempts), then escalated naming HTTP 500', async () => {
  const r = await staged.serverError!;
  escalatedNaming(r, 'VPSieServer', /HTTP 500 Internal Server Error/);
  const deletes = r.requests.filter((x) => x.method === 'DELETE');
  expect(deletes.map((x) => x.status)).toEqual(Array(6).fill(500));
  // Temporal's backoff, 1 s doubling: 1, 2, 4, 8, 16 s
  const g = gaps(deletes);
  expect(g.map((x, i) => x >= 1000 * 2 ** i - 100)).toEqual([true, true, true, true, true]);
  expect(await attempts(r.h, 'terminateVM')).toEqual([
    { attempt: 6, lastFailure: expect.stringMatching(/HTTP 500/) },
  ]);
});

test('VPSie never answers: each attempt times out, retried 6 times, then escalated naming the timeout', async () => {
  const r = await staged.noAnswer!;
  escalatedNaming(r, 'VPSieTimeout', /no answer within 5000 ms \(timeout\)/);
  const deletes = r.requests.filter((x) => x.method === 'DELETE');
  expect(deletes).toHaveLength(6);
  expect(deletes.every((x) => x.status === undefined && x.fault === 'hang')).toBe(true);
  expect(await attempts(r.h, 'terminateVM')).toEqual([
    { attempt: 6, lastFailure: expect.stringMatching(/timeout/) },
  ]);
});

test('VPSie answers 401 (the token was revoked): not retried, the run escalates at once naming HTTP 401', async () => {
  const r = await staged.revoked!;
  escalatedNaming(r, 'VPSieAuth', /HTTP 401 Unauthorized/);
  // one GET by the terminate (refused), none retried, and no DELETE sent
  expect(r.requests.filter((x) => x.method === 'DELETE')).toEqual([]);
  expect(await attempts(r.h, 'terminateVM')).toEqual([{ attempt: 1, lastFailure: null }]);
});

test("VPSie answers 429 with Retry-After: 86400: the act tries again within the policy's longest interval (1 min), not a day later", async () => {
  const r = await staged.tooLong!;
  expect(r.failure).toMatch(/HTTP 429/);
  // The retry policies back off to at most a minute (src/workflows/reads.ts); a Retry-After beyond that would
  // leave the approved act, and the person who approved it, waiting silently for as long as the API says.
  expect(r.delayMs).toBeGreaterThanOrEqual(1_000);
  expect(r.delayMs).toBeLessThanOrEqual(61_000);
});

test('PagerDuty down for minutes (503, then connections refused) and Slack briefly: the escalation is retried until both take it, each once', async () => {
  const o = await staged.outage!;
  say(`outage run ended after ${Math.round(o.ms / 1000)} s; refused attempts ${o.refusedAttempts}`);
  expect(o.report.outcome).toBe('Escalated');
  expect(o.refusedAttempts).toBeGreaterThanOrEqual(4);
  expect(o.report.escalation?.record?.channels).toEqual([
    expect.objectContaining({ channel: 'kubernetes-event', ok: true }),
    {
      channel: 'pagerduty',
      ok: true,
      detail: `PagerDuty accepted the trigger (HTTP 202, dedup_key ${o.wf}) for VPSie support`,
    },
    { channel: 'slack', ok: true, detail: 'posted to Slack (HTTP 200) for VPSie support' },
  ]);
  // what reached PagerDuty: three 503s (the refused attempts never arrived), then one accepted trigger
  const pd = sink.of('pagerduty');
  expect(pd.map((r) => [(r.body as { event_action?: string }).event_action, r.answer])).toEqual([
    ['trigger', 503],
    ['trigger', 503],
    ['trigger', 503],
    ['trigger', 202],
  ]);
  expect(pd.filter((r) => r.accepted)).toHaveLength(1);
  expect(sink.incidents.get(o.wf)).toMatchObject({ status: 'triggered', triggers: 1 });
  // Slack: two 503s, then one message, never sent again while PagerDuty was still down
  expect(sink.of('slack').map((r) => r.answer)).toEqual([503, 503, 200]);
  expect(sink.of('slack').filter((r) => r.accepted)).toHaveLength(1);
  // one escalate call, ended by its 8th attempt, after a refused connection
  expect(await attempts(o.h, 'escalate')).toEqual([
    {
      attempt: 3 + o.refusedAttempts + 1,
      lastFailure: expect.stringMatching(/PagerDuty: .*(ECONNREFUSED|refused)/),
    },
  ]);
  expect(sink.requests.every((r) => r.problems.length === 0)).toBe(true);
});
