/**
 * Issue 10, "Faults survived": the worker killed with SIGKILL at every step boundary of a delete and recreate,
 * and once inside a long wait. The product's worker runs as its own OS process (test/support/worker-process.ts:
 * the real worker configured from the environment, the restricted Kubernetes identity, VPSie pointed at the
 * simulator, approvals announced to the checking sink); each kill is followed by a new process.
 *
 * Runs of a ProvisioningTimeout (approval → lease → delete-vpsienode → wait-machine-gone → wait-vpsienode-gone →
 * wait-replacement → wait-replacement-ready) are killed successively at the boundaries of their chain: a run
 * crosses each boundary once, so one run killed at several of them proves what one run per boundary would, and
 * the chains (each its own run, task queue and worker processes) run side by side, because what a kill costs is
 * the server's recovery time (a workflow task or an activity timing out), which they then spend at once.
 * Boundaries are seen by long-polling the run's history (`waitNewEvent`): the kill comes as soon as the event is
 * written, while the worker that wrote it may still be working on what the event started (an activity it has
 * already picked up, the next workflow task). Boundaries written by one workflow task are one boundary (one kill).
 * One boundary is not in the history: the apiserver has answered the DELETE and the worker has not reported it
 * (the worker process freezes after that answer, WORKER_FREEZE_AFTER, and is killed).
 *
 * Checked where a user would look: the run ends `Remediated`; the apiserver saw the VPSieNode deleted once (a
 * watch sees one deletionTimestamp being set and one removal) and the product's processes sent one DELETE for it
 * (their request log); VPSie saw the VM removed once, by the controller (its request log); the sink got one
 * approval announcement (a retry carries the same Idempotency-Key) and the history asked for approval once.
 * Each chain prints how long the run stalled after each kill (FAULT_TRACE=file traces every event).
 */
import { Watch } from '@kubernetes/client-node';
import type { temporal } from '@temporalio/proto';
import { appendFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION, LABEL_SIMULATOR, type VPSieNodeObj } from '../support/cluster';
import { controlPlaneFromEnv, kubeconfigYaml } from '../support/control-plane';
import { EscalationSink } from '../support/escalation-sink';
import { connectTemporal, temporalAddress, uniqueTaskQueue } from '../support/temporal';
import {
  FAST_OPTIONS,
  RECREATED_AT_ONCE,
  RunbookE2E,
  SIM_LIMIT_MS,
  stepStates,
  type RunbookHandle,
} from '../support/runbook-e2e';
import { VPSieSimulator, type SimK8sNode } from '../support/vpsie-simulator';
import type { DiagnosisReport } from '../../src/runbook';
import { startRunbook } from '../../src/temporal/start-runbook';
import { decideUpdate } from '../../src/workflows/messages';
import { readRequestLog, WorkerProcess } from '../support/worker-process';

jest.setTimeout(420_000);

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = {
  WorkflowTaskCompleted: 6,
} as const;

const e = new RunbookE2E('kill');
const sink = new EscalationSink();
let dir = '';
/** The environment every worker process gets; each chain adds its task queue and request log. */
let baseEnv: Record<string, string> = {};

const trace = (line: string): void => {
  if (process.env.FAULT_TRACE) appendFileSync(process.env.FAULT_TRACE, `${line}\n`);
};

/** The run's history, event by event, as the server writes it (long poll), until the run closes. */
async function* follow(workflowId: string, runId: string): AsyncGenerator<HistoryEvent> {
  let nextPageToken: Uint8Array | undefined;
  for (;;) {
    const page = await e.ctx.client.workflowService.getWorkflowExecutionHistory({
      namespace: 'default',
      execution: { workflowId, runId },
      waitNewEvent: true,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    for (const ev of page.history?.events ?? []) yield ev;
    if (!page.nextPageToken?.length) return;
    nextPageToken = page.nextPageToken;
  }
}

/** A JSON payload's value (what the SDK's default converter writes), or undefined. */
function payloadOf(
  p: temporal.api.common.v1.IPayload | null | undefined,
): Record<string, unknown> | undefined {
  if (!p?.data) return undefined;
  try {
    return JSON.parse(Buffer.from(p.data).toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const summaryOf = (ev: HistoryEvent): string => {
  const v = payloadOf(ev.userMetadata?.summary) as unknown;
  return typeof v === 'string' ? v : '';
};

interface Boundary {
  name: string;
  is(ev: HistoryEvent, activityOf: (scheduledId: number) => string): boolean;
}

const scheduled =
  (type: string) =>
  (ev: HistoryEvent): boolean =>
    ev.activityTaskScheduledEventAttributes?.activityType?.name === type;
const completed =
  (type: string) =>
  (ev: HistoryEvent, activityOf: (id: number) => string): boolean =>
    !!ev.activityTaskCompletedEventAttributes &&
    activityOf(Number(ev.activityTaskCompletedEventAttributes.scheduledEventId)) === type;
/** A wait's first look (an activity, or a local activity's marker), named after its step by its summary. */
const waitStarted =
  (stepId: string) =>
  (ev: HistoryEvent): boolean =>
    !ev.timerStartedEventAttributes && summaryOf(ev).startsWith(`${stepId}:`);

/** Every boundary of a delete and recreate, in the order a run crosses them. */
const B = {
  approvalRequested: {
    name: 'approval requested (announcement scheduled)',
    is: scheduled('announceApproval'),
  },
  insideApprovalWait: {
    // the first re-read of the target is scheduled with the request; after it, the run only waits
    name: 'inside the approval wait (between two re-reads of the target, the timer running)',
    is: (() => {
      let timers = 0;
      return (ev: HistoryEvent) =>
        !!ev.timerStartedEventAttributes &&
        summaryOf(ev).startsWith('delete-vpsienode: is the target still there') &&
        ++timers === 2;
    })(),
  },
  approvalAnnounced: { name: 'approval announced', is: completed('announceApproval') },
  approvalAccepted: {
    name: 'approval accepted (lease requested)',
    is: (ev: HistoryEvent) => !!ev.workflowExecutionUpdateAcceptedEventAttributes,
  },
  leaseGranted: {
    name: 'lease granted',
    is: (ev: HistoryEvent) => {
      const signal = ev.workflowExecutionSignaledEventAttributes;
      return (
        signal?.signalName === 'lease-notice' && payloadOf(signal.input?.payloads?.[0])?.kind === 'granted'
      );
    },
  },
  deleteScheduled: { name: 'delete-vpsienode: delete scheduled', is: scheduled('deleteVPSieNode') },
  deleteAnswered: {
    name: 'delete-vpsienode: DELETE answered by the apiserver, not yet reported (the worker frozen, then killed)',
    is: () => false, // seen by the worker process itself (WORKER_FREEZE_AFTER), not in the history
  },
  deleteCompleted: { name: 'delete-vpsienode: delete completed', is: completed('deleteVPSieNode') },
  machineGoneStarted: { name: 'wait-machine-gone started', is: waitStarted('wait-machine-gone') },
  vpsieNodeGoneStarted: {
    name: 'wait-machine-gone ended, wait-vpsienode-gone started',
    is: waitStarted('wait-vpsienode-gone'),
  },
  replacementStarted: {
    name: 'wait-vpsienode-gone ended, wait-replacement started',
    is: waitStarted('wait-replacement'),
  },
  readyStarted: {
    name: 'wait-replacement ended, wait-replacement-ready started',
    is: waitStarted('wait-replacement-ready'),
  },
} satisfies Record<string, Boundary>;

/**
 * One run and its own series of worker processes (its own task queue), killed at its share of the boundaries.
 * The chains run at once: a kill costs the server's recovery time (timeouts), which the chains then spend side by
 * side instead of one after another. Each chain's boundaries are crossed in order; the long wait is killed in a
 * chain that was not killed just before it, so that its replacement is still not Ready when it is reached.
 */
class Chain {
  readonly taskQueue = uniqueTaskQueue('kill');
  readonly workers: WorkerProcess[] = [];
  private standby: Promise<WorkerProcess> | null = null;
  private kills: Promise<void> = Promise.resolve();
  env: Record<string, string> = {};
  /** Called when a worker of this chain froze after the DELETE's answer (WORKER_FREEZE_AFTER). */
  onFrozen: () => void = () => undefined;

  constructor(
    readonly name: string,
    readonly boundaries: Boundary[],
  ) {}

  get requestLog(): string {
    return join(dir, `requests-${this.name}.jsonl`);
  }

  async start(): Promise<void> {
    this.env = {
      ...baseEnv,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
      WORKER_REQUEST_LOG: this.requestLog,
      ...(this.boundaries.includes(B.deleteAnswered)
        ? {
            WORKER_FREEZE_AFTER: `DELETE /apis/${API_VERSION}/namespaces/`,
            WORKER_FREEZE_MARK: `${this.requestLog}.frozen`,
          }
        : {}),
    };
    await this.runNext(await WorkerProcess.prepare(this.env));
  }

  /** SIGKILLs the polling worker and starts the ready one in its place; makes the next one ready. One at a time. */
  killAndReplace(): Promise<void> {
    const done = this.kills.then(async () => {
      await this.workers.at(-1)!.kill();
      await this.runNext(await this.standby!);
    });
    this.kills = done.catch(() => undefined);
    return done;
  }

  private async runNext(w: WorkerProcess): Promise<void> {
    this.workers.push(w);
    w.printed('frozen').then(
      () => this.onFrozen(),
      () => undefined, // killed or stopped without freezing
    );
    await w.run();
    this.standby = WorkerProcess.prepare(this.env);
  }

  async stop(): Promise<void> {
    const waiting = await this.standby?.catch(() => null);
    await Promise.all([...this.workers, ...(waiting ? [waiting] : [])].map((w) => w.stop()));
  }
}

const chains = [
  new Chain('approval', [B.approvalRequested, B.approvalAnnounced, B.approvalAccepted]),
  new Chain('act', [
    B.insideApprovalWait,
    B.leaseGranted,
    B.deleteScheduled,
    B.deleteCompleted,
    B.machineGoneStarted,
  ]),
  new Chain('waits', [B.vpsieNodeGoneStarted, B.replacementStarted, B.readyStarted]),
  new Chain('lost-answer', [B.deleteAnswered]),
];

interface Kill {
  boundary: string;
  eventId: number;
  at: number;
  /** The process killed (worker identity `pid@host`). */
  pid?: number;
  /** When a workflow task was first completed by another process: the run went on. */
  resumedAt?: number;
  /** Activities the killed process had started, completed by a later attempt: `type after N s`. */
  retried: string[];
}

interface ChainResult {
  vn: VPSieNodeObj;
  machine: SimK8sNode;
  since: number;
  handle: RunbookHandle;
  report: DiagnosisReport;
  kills: Kill[];
  /** The apiserver's view of the VPSieNode: each deletionTimestamp it was given, and its removals. */
  seen: { deletionSet: string[]; removed: number };
  ms: number;
}

/** Stages a ProvisioningTimeout, starts its run, kills the chain's worker at each of its boundaries. */
async function runChain(chain: Chain): Promise<ChainResult> {
  const t0 = Date.now();
  const { vn } = await e.stuckNode(`kill-${chain.name}`);
  const machine = e.t.sim.machineOf(vn.metadata.name)!;
  const since = e.mark();
  const seen = { deletionSet: [] as string[], removed: 0 };
  const watch = await new Watch(e.t.admin).watch(
    `/apis/${API_VERSION}/namespaces/${e.t.ns}/vpsienodes`,
    { fieldSelector: `metadata.name=${vn.metadata.name}` },
    (type, obj: VPSieNodeObj) => {
      if (obj.metadata.uid !== vn.metadata.uid) return;
      const ts = (obj.metadata as { deletionTimestamp?: string }).deletionTimestamp;
      if (ts && !seen.deletionSet.includes(ts)) seen.deletionSet.push(ts);
      if (type === 'DELETED') seen.removed++;
    },
    () => undefined,
  );
  try {
    const { handle, runId } = await startRunbook(
      e.ctx.client,
      { namespace: e.t.ns, name: vn.metadata.name, options: FAST_OPTIONS },
      { taskQueue: chain.taskQueue },
    );
    const activities = new Map<number, string>();
    const kills: Kill[] = [];
    let next = 0;
    /** The workflow task after whose commands the last kill came: its other boundaries are the same moment. */
    let killedTask = -1;
    let task = -1;
    let decision: Promise<unknown> | null = null;
    let wasAnnounced = false;
    const announced = (ev: HistoryEvent, activityOf: (id: number) => string): boolean =>
      (wasAnnounced ||= B.approvalAnnounced.is(ev, activityOf));
    let frozenKill: Promise<void> = Promise.resolve();
    chain.onFrozen = () => {
      if (chain.boundaries[next] !== B.deleteAnswered) return;
      next++;
      const k: Kill = { boundary: B.deleteAnswered.name, eventId: -1, at: Date.now(), retried: [] };
      k.pid = chain.workers.at(-1)!.pid;
      kills.push(k);
      trace(`${chain.name} KILL at ${k.boundary}`);
      killedTask = -1;
      frozenKill = chain.killAndReplace();
    };
    for await (const ev of follow(handle.workflowId, runId)) {
      const id = Number(ev.eventId);
      trace(`${chain.name} ${((Date.now() - t0) / 1000).toFixed(1)} ${id} ${ev.eventType} ${summaryOf(ev)}`);
      const k = kills.at(-1);
      if (ev.eventType === EventType.WorkflowTaskCompleted) {
        task = id;
        const by = ev.workflowTaskCompletedEventAttributes?.identity ?? '';
        if (k?.pid && k.resumedAt === undefined && !by.startsWith(`${k.pid}@`)) k.resumedAt = Date.now();
      }
      const started = ev.activityTaskStartedEventAttributes;
      if (k?.pid && started && (started.attempt ?? 1) > 1)
        k.retried.push(
          `${activities.get(Number(started.scheduledEventId))} attempt ${started.attempt} done ${((Date.now() - k.at) / 1000).toFixed(1)} s after`,
        );
      const type = ev.activityTaskScheduledEventAttributes?.activityType?.name;
      if (type) activities.set(id, type);
      const b = chain.boundaries[next];
      if (b?.is(ev, (sid) => activities.get(sid) ?? '')) {
        next++;
        // events a worker did not write (an answer, a signal, a timer) each start a new workflow task
        const external =
          !!ev.activityTaskCompletedEventAttributes ||
          !!ev.workflowExecutionSignaledEventAttributes ||
          !!ev.timerFiredEventAttributes;
        if (!external && task === killedTask) {
          kills.push({
            boundary: `${b.name} (same task as the kill before)`,
            eventId: id,
            at: Date.now(),
            retried: [],
          });
        } else {
          kills.push({
            boundary: b.name,
            eventId: id,
            at: Date.now(),
            pid: chain.workers.at(-1)!.pid,
            retried: [],
          });
          killedTask = external ? -1 : task;
          trace(`${chain.name} KILL at ${b.name}`);
          await chain.killAndReplace();
        }
      }
      // A person approves once the request was announced, as on-call would after reading it (in a chain killed
      // inside the approval wait, once that kill happened).
      if (
        !decision &&
        announced(ev, (sid) => activities.get(sid) ?? '') &&
        !chain.boundaries.slice(next).includes(B.insideApprovalWait)
      )
        decision = handle.executeUpdate(decideUpdate, {
          args: [{ stepId: 'delete-vpsienode', decision: 'approve', approver: 'alice' }],
        });
    }
    await decision;
    await frozenKill;
    const report = (await handle.result()) as DiagnosisReport;
    return { vn, machine, since, handle, report, kills, seen, ms: Date.now() - t0 };
  } finally {
    watch.abort();
  }
}

/** Each chain's result, or why it failed; the chains run at once from beforeAll on. */
let results: Promise<{ ok: ChainResult } | { err: unknown }>[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fault-worker-kill-'));
  await Promise.all([
    e.t.start('kill', { timings: { provisioningTimeoutMs: SIM_LIMIT_MS, joiningTimeoutMs: SIM_LIMIT_MS } }),
    sink.start(),
  ]);
  e.ctx = await connectTemporal();
  const cp = controlPlaneFromEnv()!;
  // Secrets in files, as a deployment mounts them: nothing secret on the command line or in the environment.
  await writeFile(join(dir, 'kubeconfig'), kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }), {
    mode: 0o600,
  });
  await writeFile(join(dir, 'vpsie-token'), VPSieSimulator.DEFAULT_TOKEN, { mode: 0o600 });
  await writeFile(join(dir, 'webhook-url'), sink.url('webhook'), { mode: 0o600 });
  baseEnv = {
    TEMPORAL_ADDRESS: temporalAddress(),
    KUBECONFIG: join(dir, 'kubeconfig'),
    VPSIE_API_URL: e.t.vpsie.baseUrl,
    VPSIE_TOKEN_FILE: join(dir, 'vpsie-token'),
    // only this file's simulated controller: parallel test files run their own in kube-system too
    CONTROLLER_LABEL_SELECTOR: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${e.t.sim.id}`,
    ESCALATION_WEBHOOK_URL_FILE: join(dir, 'webhook-url'),
    APPROVAL_CHANNELS: 'webhook',
    ESCALATION_ROUTES: 'vpsie-support=webhook;platform-team=webhook',
    LOG_LEVEL: 'warn',
    VPSIE_TEST_WORKFLOW_BUNDLE: process.env.VPSIE_TEST_WORKFLOW_BUNDLE ?? '',
  };
  await Promise.all(chains.map((c) => c.start()));
  results = chains.map((c) =>
    runChain(c).then(
      (ok) => ({ ok }),
      (err: unknown) => ({ err }),
    ),
  );
});

afterAll(async () => {
  await Promise.allSettled(results);
  await Promise.all(chains.map((c) => c.stop()));
  await e.stop();
  await sink.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(chains.map((c, i) => [c.name, i, c.boundaries.map((b) => b.name).join('; ')] as const))(
  'worker SIGKILLed: chain %s',
  (_name, i, boundaries) => {
    test(`killed at: ${boundaries}: Remediated, the VPSieNode deleted once, its VM removed once, approval asked once`, async () => {
      const settled = await results[i];
      if ('err' in settled) throw settled.err;
      const { vn, machine, since, handle, report, kills, seen, ms } = settled.ok;
      const chain = chains[i];
      console.log(
        `chain ${chain.name}: ${report.outcome} in ${(ms / 1000).toFixed(1)} s, ${chain.workers.length} worker processes; steps ${JSON.stringify((report.plan ?? []).map((p) => [p.id, p.state, p.result]))}\n${kills
          .map(
            (k) =>
              `  ${k.boundary}: event ${k.eventId}${k.pid ? `; run went on ${k.resumedAt ? `${((k.resumedAt - k.at) / 1000).toFixed(1)} s` : '-'} after the kill` : ''}${k.retried.length ? `; ${k.retried.join(', ')}` : ''}`,
          )
          .join('\n')}`,
      );

      // every boundary was reached, and the worker killed there (or in the same workflow task, just before)
      expect(kills.map((k) => k.boundary.replace(/ \(same task.*$/, ''))).toEqual(
        chain.boundaries.map((b) => b.name),
      );
      expect(chain.workers.length).toBeGreaterThan(1);
      expect({ outcome: report.outcome, escalation: report.escalation }).toEqual({
        outcome: 'Remediated',
        escalation: null,
      });
      expect(stepStates(report)).toEqual([
        ['delete-vpsienode', 'done'],
        ['wait-machine-gone', 'done'],
        ...RECREATED_AT_ONCE,
      ]);

      // deleted exactly once: the apiserver saw one deletion, and the product's processes sent one DELETE for it
      expect(seen).toEqual({ deletionSet: [expect.any(String)], removed: 1 });
      const log = readRequestLog(await readFile(chain.requestLog, 'utf8'));
      expect(
        log
          .filter((r) => r.method === 'DELETE' && r.path.includes('/vpsienodes/'))
          .map((r) => r.path.replace(/\?.*$/, '')),
      ).toEqual([`/apis/${API_VERSION}/namespaces/${e.t.ns}/vpsienodes/${vn.metadata.name}`]);
      // no VM terminated twice: VPSie got one removal of the machine, by the controller; the product wrote nothing
      expect(e.machineDeletes(machine, since)).toEqual([
        `DELETE /k8s/cluster/byId/${e.t.sim.vpsieCluster}/delete/slave by controller`,
      ]);
      expect(
        e
          .productRequests()
          .filter((r) => r.seq > since && r.method !== 'GET' && r.path.includes(`${machine.vmId}`)),
      ).toEqual([]);

      // approval asked once: one announcement (a retry of it carries the same Idempotency-Key), one request in
      // the history, one decision
      const announcements = sink.of('webhook').filter((r) => {
        const body = r.body as { type?: string; workflowId?: string } | undefined;
        return body?.type === 'vpsie-runbook.approval-pending' && body.workflowId === handle.workflowId;
      });
      expect(announcements.length).toBeGreaterThan(0);
      expect(new Set(announcements.map((r) => r.headers['idempotency-key'])).size).toBe(1);
      const history = await handle.fetchHistory();
      expect(history.events?.filter((ev) => scheduled('announceApproval')(ev)).length).toBe(1);
      expect(report.decisions).toEqual([
        expect.objectContaining({ stepId: 'delete-vpsienode', decision: 'approve', accepted: true }),
      ]);
      expect(e.t.sim.errors).toEqual([]);
    });
  },
);
