/**
 * Part 3: the alert storm. `nodes` Failed VPSieNodes in `groups` NodeGroups; Alertmanager's notifications for
 * them (one alert per notification, as deploy/alertmanager/alertmanager.yml groups them), each VPSieNode's sent
 * again and again with the same fingerprint and startsAt (its group_interval/repeat_interval re-sends and
 * retries), `notifications` in all, shuffled and posted `concurrency` at a time. A 5xx is retried as
 * Alertmanager retries it. Then: runs started per workflow id from visibility (closed runs included), the
 * receiver's answers, and, once the runs have settled, how many destructive steps ever held a NodeGroup's lease
 * at once (from each run's history: a `lease-notice` grant received until its `release` sent).
 *
 * The runs auto-approve `delete-vpsienode` and use the default lease policy (budget 1, storm past 3 failures in
 * 15 min): nothing but the lease keeps 25 deletes per group from running at once, so that is what is measured.
 */
import { LEASE_DEFAULTS } from '../../src/runbook/lease';
import { failedNotification, Poster, pool } from '../alerts';
import { Fleet } from '../fleet';
import { historyOf, leaseIntervals, maxOverlap } from '../history';
import { nowMs, summarize } from '../stats';
import { BENCH_LIMIT_MS, sleep, Stopped, type Figure, type PartContext } from './context';
import { countRuns, listRuns, terminateOpen } from './runs';

export interface StormOptions {
  /** The simulated controller's tick (bench/fleet.ts). */
  simTickMs: number;
  notifications: number;
  nodes: number;
  groups: number;
  concurrency: number;
  settleSeconds: number;
}

const DESTRUCTIVE_ACTS = new Set([
  'deleteVPSieNode',
  'setNodeGroupKubernetesVersion',
  'terminateVM',
  'removeClusterNode',
]);

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export async function runStorm(ctx: PartContext, o: StormOptions) {
  const { stack, progress } = ctx;
  const client = stack.client!;
  progress(
    `part 3: alert storm (${o.notifications} notifications for ${o.nodes} VPSieNodes in ${o.groups} NodeGroups, ${o.concurrency} at a time)`,
  );
  const fleet = new Fleet({
    admin: stack.admin,
    vpsie: stack.vpsie!,
    prefix: 'bench-storm',
    groups: o.groups,
    nodes: o.nodes,
    limitMs: BENCH_LIMIT_MS,
    tickMs: o.simTickMs,
    progress,
    stopping: ctx.stopping,
  });
  const runsQuery = () => `WorkflowId STARTS_WITH 'provisioning-failed/${fleet.namespace}/'`;
  try {
    await fleet.stage();
    const url = await stack.startReceiver({
      ...fleet.limitOptions,
      autoApprove: ['delete-vpsienode'],
      recheckInterval: '10s',
      registrationWait: '10s',
      goneWait: '1m',
      replacementWait: '10s',
      readyWait: '10s',
    });
    const startsAt = new Date();
    const bodies = fleet.nodes.map((n) => failedNotification(n, startsAt));
    const order = shuffle(Array.from({ length: o.notifications }, (_, i) => i % bodies.length));
    const poster = new Poster(url, o.concurrency);
    const statuses = new Map<number, number>();
    const actions = new Map<string, number>();
    const latencies: number[] = [];
    let retries = 0;
    let accepted = 0;
    let failed = 0;
    const started = new Set<string>();
    /** When the receiver had answered `started` for every VPSieNode: the rest were repeats of known firings. */
    let allStarted: { at: number; accepted: number } | undefined;
    const t0 = nowMs();
    let said = t0;
    await pool(order, o.concurrency, async (index) => {
      if (ctx.stopping()) throw new Stopped();
      for (let attempt = 1; ; attempt++) {
        const a0 = nowMs();
        let status = 0;
        let body: Awaited<ReturnType<Poster['post']>>['body'] = {};
        try {
          ({ status, body } = await poster.post(bodies[index]));
        } catch {
          status = 0; // a network error: Alertmanager retries it like a 5xx
        }
        latencies.push(nowMs() - a0);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (status >= 200 && status < 300) {
          accepted += 1;
          for (const run of body.alerts?.flatMap((a) => a.runs ?? []) ?? []) {
            actions.set(run.action, (actions.get(run.action) ?? 0) + 1);
            if (run.action === 'started') started.add(`${run.workflowId} ${run.runId}`);
          }
          if (!allStarted && started.size >= o.nodes) allStarted = { at: nowMs(), accepted };
          break;
        }
        if ((status >= 400 && status < 500) || attempt >= 10) {
          failed += 1;
          break;
        }
        retries += 1;
        await sleep(100 * attempt);
      }
      if (nowMs() - said > 5_000) {
        said = nowMs();
        progress(`  ${accepted} of ${o.notifications} notifications accepted`);
      }
    });
    const wallMs = nowMs() - t0;
    poster.close();
    const rate = (accepted / wallMs) * 1000;
    progress(
      `  ${accepted} accepted in ${(wallMs / 1000).toFixed(1)} s (${rate.toFixed(0)}/s); reading the runs`,
    );

    // Runs per workflow id, closed ones included: visibility catches up within moments; wait until it shows
    // every VPSieNode and the count holds still.
    let runs = await listRuns(client, runsQuery());
    for (let i = 0, last = -1; i < 60; i++) {
      const ids = new Set(runs.map((r) => r.workflowId)).size;
      if (ids >= o.nodes && runs.length === last) break;
      last = runs.length;
      await sleep(1_000);
      runs = await listRuns(client, runsQuery());
    }
    const perId = new Map<string, number>();
    for (const r of runs) perId.set(r.workflowId, (perId.get(r.workflowId) ?? 0) + 1);
    const runsStarted = runs.length;
    const duplicates = [...perId.values()].reduce((a, n) => a + Math.max(0, n - 1), 0);
    const workflowIds = perId.size;

    // Let the runs settle: storm escalations end at once; the few that hold a lease verify their delete first.
    const settleUntil = Date.now() + o.settleSeconds * 1000;
    let open = await countRuns(client, `${runsQuery()} AND ExecutionStatus = 'Running'`);
    while (open > 0 && Date.now() < settleUntil) {
      if (ctx.stopping()) throw new Stopped();
      progress(`  ${open} of the storm's runs still open`);
      await sleep(5_000);
      open = await countRuns(client, `${runsQuery()} AND ExecutionStatus = 'Running'`);
    }
    runs = await listRuns(client, runsQuery());
    const nodeGroupOf = new Map(
      fleet.nodes.map((n) => [`provisioning-failed/${n.namespace}/${n.name}`, n.nodeGroup]),
    );
    const intervals = new Map<string, { from: number; to: number | null }[]>();
    const acts = new Map<string, number>();
    const outcomes = new Map<string, number>();
    const escalations = new Map<string, number>();
    const readAt = Date.now();
    await pool(runs, 8, async (r) => {
      const group = nodeGroupOf.get(r.workflowId) ?? '?';
      const events = await historyOf(client, r.workflowId, r.runId);
      intervals.set(group, [...(intervals.get(group) ?? []), ...leaseIntervals(events)]);
      const n = events.filter((e) =>
        DESTRUCTIVE_ACTS.has(e.activityTaskScheduledEventAttributes?.activityType?.name ?? ''),
      ).length;
      acts.set(group, (acts.get(group) ?? 0) + n);
      if (r.status.name === 'COMPLETED') {
        const report = (await client.workflow.getHandle(r.workflowId, r.runId).result()) as {
          outcome?: string;
          escalation?: { kind?: string } | null;
        };
        outcomes.set(report.outcome ?? '?', (outcomes.get(report.outcome ?? '?') ?? 0) + 1);
        if (report.escalation?.kind)
          escalations.set(report.escalation.kind, (escalations.get(report.escalation.kind) ?? 0) + 1);
      } else outcomes.set(r.status.name, (outcomes.get(r.status.name) ?? 0) + 1);
    });
    const perGroup = Object.fromEntries(
      fleet.groups.map((g) => [
        g,
        {
          maxLeaseHoldersAtOnce: maxOverlap(intervals.get(g) ?? [], readAt),
          destructiveActs: acts.get(g) ?? 0,
        },
      ]),
    );
    const maxInFlight = Math.max(0, ...Object.values(perGroup).map((g) => g.maxLeaseHoldersAtOnce));
    const budget = LEASE_DEFAULTS.budget;
    const leftOpen = await terminateOpen(client, runsQuery(), 'bench: the storm part is over');
    await terminateOpen(
      client,
      `WorkflowId STARTS_WITH 'nodegroup-lease/${fleet.namespace}/'`,
      'bench: the storm part is over',
    );
    const lat = summarize(latencies);
    const figures: Figure[] = [
      {
        id: 'storm.rate',
        part: 'storm',
        label: 'storm: notifications accepted per second',
        value: Math.round(rate),
        unit: '/s',
        target: '≥ 500/s',
        pass: rate >= 500,
      },
      {
        id: 'storm.runsStarted',
        part: 'storm',
        label: 'storm: runs started (visibility, closed included)',
        value: runsStarted,
        unit: '',
        target: `= ${o.nodes}`,
        pass: runsStarted === o.nodes && workflowIds === o.nodes,
      },
      {
        id: 'storm.duplicates',
        part: 'storm',
        label: 'storm: duplicate starts',
        value: duplicates,
        unit: '',
        target: '= 0',
        pass: duplicates === 0,
      },
      {
        id: 'storm.maxDestructiveInFlight',
        part: 'storm',
        label: 'storm: most destructive steps in flight per NodeGroup',
        value: maxInFlight,
        unit: '',
        target: `≤ ${budget} (lease budget)`,
        pass: maxInFlight <= budget,
      },
      {
        id: 'storm.latency.p99',
        part: 'storm',
        label: 'storm: receiver answer p99 (per notification)',
        value: lat.p99,
        unit: 'ms',
        floor: { label: 'p50', value: lat.p50 },
      },
    ];
    return {
      figures,
      details: {
        namespace: fleet.namespace,
        notifications: o.notifications,
        accepted,
        failedForGood: failed,
        retries,
        wallSeconds: Math.round(wallMs) / 1000,
        httpStatuses: Object.fromEntries(statuses),
        receiverActions: Object.fromEntries(actions),
        receiverStartedDistinct: started.size,
        phases: allStarted
          ? {
              secondsUntilEveryVPSieNodeHadItsRun: Math.round(allStarted.at - t0) / 1000,
              acceptedMeanwhile: allStarted.accepted,
              ratePerSecondUntilThen: Math.round((allStarted.accepted / (allStarted.at - t0)) * 1000),
              ratePerSecondAfter: Math.round(
                ((accepted - allStarted.accepted) / Math.max(1, t0 + wallMs - allStarted.at)) * 1000,
              ),
            }
          : null,
        answerLatencyMs: lat,
        workflowIds,
        runsStarted,
        duplicates,
        runsLeftOpenAfterSettle: leftOpen,
        outcomes: Object.fromEntries(outcomes),
        escalationKinds: Object.fromEntries(escalations),
        leaseBudget: budget,
        destructiveActsTotal: [...acts.values()].reduce((a, b) => a + b, 0),
        perNodeGroup: perGroup,
      },
    };
  } finally {
    await fleet.stop();
  }
}
