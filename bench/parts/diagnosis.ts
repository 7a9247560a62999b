/**
 * Parts 1 and 2: alert to diagnosis, beside Temporal's own floors, and the API requests each diagnosis costs.
 *
 * Each round runs, one after another (so they share the machine's state of the moment): the empty workflow
 * started and awaited; the diagnosis-shaped no-op workflow (bench/floor-workflows.ts); and the runbook for one
 * Failed VPSieNode, started by POSTing its Alertmanager notification to the product's receiver. A run is timed
 * from just before the POST (or the start call) to the event time of the history event that upserts
 * `RunbookCause`: the moment the server recorded the cause, on this machine's clock. Runs are `dryRun`: the
 * path to the cause is the same as a real run's, and a dryRun run ends right there, so it makes no request that
 * is not part of its diagnosis (the count of part 2) and leaves no approvals or leases behind.
 */
import { randomBytes } from 'node:crypto';
import { auditMark, auditRequestsSince, breakdown } from '../audit';
import { failedNotification, Poster } from '../alerts';
import { Fleet } from '../fleet';
import { causePath, historyOf, type CausePath } from '../history';
import { FLOOR_TASK_QUEUE } from '../stack';
import { nowMs, summarize, type Summary } from '../stats';
import { BENCH_LIMIT_MS, Stopped, type Figure, type PartContext } from './context';

export interface DiagnosisOptions {
  /** The simulated controller's tick (bench/fleet.ts). */
  simTickMs: number;
  runs: number;
  warmup: number;
  groups: number;
}

interface RunbookSample {
  workflowId: string;
  runId: string;
  t0: number;
  answeredMs: number;
  awaitedMs: number;
  path?: CausePath | null;
}

export interface DiagnosisResult {
  figures: Figure[];
  details: Record<string, unknown>;
}

const hex = () => randomBytes(4).toString('hex');

export async function runDiagnosis(ctx: PartContext, o: DiagnosisOptions): Promise<DiagnosisResult> {
  const { stack, progress } = ctx;
  const client = stack.client!;
  progress(`part 1/2: alert to diagnosis and API economy (${o.runs} runs, ${o.warmup} warm-up)`);
  const fleet = new Fleet({
    admin: stack.admin,
    vpsie: stack.vpsie!,
    prefix: 'bench-diagnosis',
    groups: o.groups,
    nodes: o.runs + o.warmup,
    limitMs: BENCH_LIMIT_MS,
    tickMs: o.simTickMs,
    progress,
    stopping: ctx.stopping,
  });
  try {
    await fleet.stage();
    const url = await stack.startReceiver({ ...fleet.limitOptions, dryRun: true });
    const poster = new Poster(url, 4);
    const empty: number[] = [];
    const shapeAwaited: number[] = [];
    const shapeStarts: { id: string; t0: number }[] = [];
    const samples: RunbookSample[] = [];
    let auditFrom = 0;
    let vpsieFrom = 0;
    const startsAt = new Date();

    for (let i = 0; i < o.warmup + o.runs; i++) {
      if (ctx.stopping()) throw new Stopped();
      const measured = i >= o.warmup;
      if (i === o.warmup) {
        auditFrom = auditMark(stack.auditLog);
        vpsieFrom = stack.vpsie!.requestsTo().at(-1)?.seq ?? 0;
      }
      // the empty workflow, started and awaited
      let t0 = nowMs();
      await client.workflow.execute('benchEmptyWorkflow', {
        taskQueue: FLOOR_TASK_QUEUE,
        workflowId: `bench-empty-${i}-${hex()}`,
      });
      if (measured) empty.push(nowMs() - t0);
      // the runbook's shape with no-ops
      const node = fleet.nodes[i];
      const shapeId = `bench-shape-${i}-${hex()}`;
      t0 = nowMs();
      const shape = await client.workflow.start('benchDiagnosisShapeWorkflow', {
        taskQueue: FLOOR_TASK_QUEUE,
        workflowId: shapeId,
        args: [{ namespace: node.namespace, name: node.name }],
      });
      await shape.result();
      if (measured) {
        shapeAwaited.push(nowMs() - t0);
        shapeStarts.push({ id: shapeId, t0 });
      }
      // the runbook, from the alert
      t0 = nowMs();
      const answer = await poster.post(failedNotification(node, startsAt));
      const answeredMs = nowMs() - t0;
      const run = answer.body.alerts?.[0]?.runs?.[0];
      if (answer.status !== 200 || !run?.runId || run.action !== 'started')
        throw new Error(
          `the receiver answered ${answer.status} for ${node.namespace}/${node.name}: ${JSON.stringify(answer.body).slice(0, 500)}`,
        );
      const report = (await client.workflow.getHandle(run.workflowId, run.runId).result()) as {
        outcome?: string;
        cause?: string;
      };
      const awaitedMs = nowMs() - t0;
      if (report.outcome !== 'DryRun')
        throw new Error(
          `run ${run.workflowId} ended ${report.outcome}, not DryRun: ${JSON.stringify(report).slice(0, 500)}`,
        );
      if (measured) samples.push({ workflowId: run.workflowId, runId: run.runId, t0, answeredMs, awaitedMs });
      if (measured && (i - o.warmup + 1) % 50 === 0) progress(`  ${i - o.warmup + 1}/${o.runs} rounds`);
    }
    poster.close();
    const auditTo = auditMark(stack.auditLog);
    const vpsieTo = stack.vpsie!.requestsTo().at(-1)?.seq ?? 0;

    // The event times, read after the measurement so that reading does not load it.
    const shapeRecorded: number[] = [];
    const shapePaths: { t0: number; path: CausePath }[] = [];
    for (const s of shapeStarts) {
      const p = causePath(await historyOf(client, s.id));
      if (p) {
        shapeRecorded.push(p.causeAt - s.t0);
        shapePaths.push({ t0: s.t0, path: p });
      }
    }
    const causes = new Map<string, number>();
    const pathShapes = new Map<string, number>();
    for (const s of samples) {
      const events = await historyOf(client, s.workflowId, s.runId);
      s.path = causePath(events);
      if (!s.path) throw new Error(`run ${s.workflowId} ${s.runId} never upserted RunbookCause`);
      const key = `${s.path.workflowTasks} workflow task(s), ${s.path.activities} activities, ${s.path.localActivities} local activities`;
      pathShapes.set(key, (pathShapes.get(key) ?? 0) + 1);
      const report = (await client.workflow.getHandle(s.workflowId, s.runId).result()) as { cause?: string };
      causes.set(report.cause ?? 'none', (causes.get(report.cause ?? 'none') ?? 0) + 1);
    }
    const diagnosis = samples.map((s) => s.path!.causeAt - s.t0);
    const d = summarize(diagnosis);
    const e = summarize(empty);
    const shapeR = summarize(shapeRecorded);
    const shapeA = summarize(shapeAwaited);
    const awaited = summarize(samples.map((s) => s.awaitedMs));
    const answered = summarize(samples.map((s) => s.answeredMs));
    // Where the time goes, from the histories: to the server's start event, waiting in the task queue, and the
    // workflow task that recorded the cause (the worker's reads and code, and the completion).
    const phases = (xs: { t0: number; path: CausePath }[]) => ({
      postOrStartToStartedEvent: summarize(xs.map((x) => x.path.startedAt - x.t0)),
      startedEventToTaskStarted: summarize(xs.map((x) => x.path.taskStartedAt - x.path.startedAt)),
      taskStartedToCauseRecorded: summarize(xs.map((x) => x.path.causeAt - x.path.taskStartedAt)),
    });
    const breakdownMs = {
      runbook: phases(samples.map((s) => ({ t0: s.t0, path: s.path! }))),
      shapeFloor: phases(shapePaths),
    };

    // Part 2: the product's requests during the measured rounds (only its runs made any).
    const kube = auditRequestsSince(stack.auditLog, auditFrom, auditTo);
    const vpsie = stack
      .vpsie!.requestsTo()
      .filter(
        (r) => r.seq > vpsieFrom && r.seq <= vpsieTo && (r.userAgent ?? '').startsWith('vpsie-runbook/'),
      );
    const n = samples.length;
    const kubePer = kube.length / n;
    const vpsiePer = vpsie.length / n;

    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    const figures: Figure[] = [
      {
        id: 'diagnosis.p50',
        part: 'diagnosis',
        label: 'alert → diagnosis p50',
        value: d.p50,
        unit: 'ms',
        floor: { label: 'empty workflow p50', value: e.p50 },
        ratio: ratio(d.p50, e.p50),
        target: '≤ 4× empty',
        pass: d.p50 <= 4 * e.p50,
      },
      {
        id: 'diagnosis.p99',
        part: 'diagnosis',
        label: 'alert → diagnosis p99',
        value: d.p99,
        unit: 'ms',
        floor: { label: 'empty workflow p99', value: e.p99 },
        ratio: ratio(d.p99, e.p99),
        target: '< 1000 ms',
        pass: d.p99 < 1000,
      },
      {
        id: 'diagnosis.vs-shape.p50',
        part: 'diagnosis',
        label: 'alert → diagnosis p50 vs no-op of its shape',
        value: d.p50,
        unit: 'ms',
        floor: { label: 'shape start → cause p50', value: shapeR.p50 },
        ratio: ratio(d.p50, shapeR.p50),
      },
      {
        id: 'floor.empty.p50',
        part: 'diagnosis',
        label: 'floor: empty workflow started+awaited p50',
        value: e.p50,
        unit: 'ms',
      },
      {
        id: 'floor.empty.p99',
        part: 'diagnosis',
        label: 'floor: empty workflow started+awaited p99',
        value: e.p99,
        unit: 'ms',
      },
      {
        id: 'floor.shape.p50',
        part: 'diagnosis',
        label: 'floor: no-op diagnosis shape, start → cause p50',
        value: shapeR.p50,
        unit: 'ms',
        floor: { label: 'empty p50', value: e.p50 },
        ratio: ratio(shapeR.p50, e.p50),
      },
      {
        id: 'floor.shape.p99',
        part: 'diagnosis',
        label: 'floor: no-op diagnosis shape, start → cause p99',
        value: shapeR.p99,
        unit: 'ms',
      },
      {
        id: 'api.kubernetes',
        part: 'api',
        label: 'Kubernetes requests per diagnosis (audit log)',
        value: Math.round(kubePer * 100) / 100,
        unit: 'req',
        target: '≤ 12',
        pass: kubePer <= 12,
      },
      {
        id: 'api.vpsie',
        part: 'api',
        label: 'VPSie requests per diagnosis (simulator log)',
        value: Math.round(vpsiePer * 100) / 100,
        unit: 'req',
        target: '≤ 6',
        pass: vpsiePer <= 6,
      },
    ];
    const perRun = (b: Record<string, number>) =>
      Object.fromEntries(Object.entries(b).map(([k, v]) => [k, Math.round((v / n) * 100) / 100]));
    return {
      figures,
      details: {
        runs: n,
        warmup: o.warmup,
        namespace: fleet.namespace,
        definition:
          'alert → diagnosis: from just before the POST of the notification to the receiver until the eventTime of the UpsertWorkflowSearchAttributes event that writes RunbookCause (the Temporal server and the bench share this machine clock)',
        alertToDiagnosisMs: d,
        emptyWorkflowMs: e,
        shapeStartToCauseMs: shapeR,
        shapeStartedAndAwaitedMs: shapeA,
        runbookPostToAnswerMs: answered,
        runbookPostToResultMs: awaited,
        causes: Object.fromEntries(causes),
        pathToCause: Object.fromEntries(pathShapes),
        whereTheTimeGoesMs: breakdownMs,
        kubernetesRequests: { total: kube.length, perDiagnosis: perRun(breakdown(kube)) },
        vpsieRequests: {
          total: vpsie.length,
          perDiagnosis: perRun(
            breakdown(vpsie.map((r) => ({ method: r.method, path: r.path.replace(/\d+/g, '{id}') }))),
          ),
        },
      },
    };
  } finally {
    await fleet.stop();
  }
}

export type { Summary };
