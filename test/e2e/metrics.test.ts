/**
 * Issue 9 item 5: the worker's `/metrics`, scraped over HTTP as Prometheus scrapes it, while the whole product
 * runs (test/support/runbook-e2e.ts: the real worker and activities, the simulated VPSie and autoscaler, the
 * escalation channels pointed at the checking sink): the Temporal SDK's own metrics (Core's exporter, installed
 * through the runtime's telemetry) and the project's on one page, moving as runs end.
 *
 * Temporal's Runtime is installed once per process, and Jest gives each test file its own module registry (so
 * its own Runtime): this file installs it first, with Core's exporter on a free loopback port, before anything
 * that would install the harness's plain one (test/support/temporal.ts, imported by runbook-e2e, which is
 * therefore imported only after). The metrics servers only take that exporter's address, so each test can start
 * its own without clashing.
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { ChannelsConfig } from '../../src/channels';
import { sdkTelemetryOptions, startMetricsServer, type MetricsServer } from '../../src/metrics/server';
import { startRunbook } from '../../src/temporal/start-runbook';
import { freePort } from '../../src/temporal/free-port';
import { statusQuery } from '../../src/workflows/messages';
import type { VPSieNodeObj } from '../support/cluster';
import { uniq } from '../support/cluster/test-helpers';
import { EscalationSink, type SinkRequest, type SinkService } from '../support/escalation-sink';
import type { RunbookOptions } from '../../src/runbook';
import type { RunbookE2E as RunbookE2EType, RunbookHandle } from '../support/runbook-e2e';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

jest.setTimeout(120_000);

const ROUTES: ChannelsConfig['routes'] = {
  'vpsie-support': ['pagerduty', 'slack'],
  'platform-team': ['slack', 'webhook'],
};

let sdkAddress = '';
let e: RunbookE2EType;
let FAST: RunbookOptions;
const sink = new EscalationSink();
let secretsDir = '';
let metrics: MetricsServer;

// ---------------------------------------------------------------------------------------------------------------
// The page, read as Prometheus reads it.

interface Page {
  text: string;
  contentType: string | null;
  /** `name{a="x",b="y"}` (labels sorted) → value. */
  samples: Map<string, number>;
  /** Every problem a strict reader of the text format would have with it. */
  problems: string[];
}

const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;

function key(name: string, labels: Record<string, string> = {}): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return `${name}{${parts.join(',')}}`;
}

function parsePage(text: string, contentType: string | null): Page {
  const samples = new Map<string, number>();
  const problems: string[] = [];
  const types = new Map<string, string>();
  const closed = new Set<string>();
  let current: string | null = null;
  const familyOf = (name: string): string | undefined => {
    if (types.has(name)) return name;
    const base = name.replace(/_(bucket|sum|count|total|created)$/, '');
    return types.has(base) ? base : undefined;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      if (types.has(type[1])) problems.push(`second TYPE for ${type[1]}`);
      types.set(type[1], type[2]);
      if (current) closed.add(current);
      current = type[1];
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) {
      problems.push(`not a sample: ${line}`);
      continue;
    }
    const family = familyOf(m[1]);
    if (!family) problems.push(`no TYPE for ${m[1]}`);
    else if (family !== current) problems.push(`${m[1]} apart from its family ${family}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]] = l[2];
    const k = key(m[1], labels);
    if (samples.has(k)) problems.push(`duplicate series ${k}`);
    samples.set(k, Number(m[3]));
  }
  return { text, contentType, samples, problems };
}

async function scrape(url = metrics.url): Promise<Page> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return parsePage(await res.text(), res.headers.get('content-type'));
}

/** A sample's value; 0 when absent (a counter's series appears at its first increment). */
const value = (p: Page, name: string, labels: Record<string, string> = {}): number =>
  p.samples.get(key(name, labels)) ?? 0;

/** The series of `family` whose value changed from `before` to `after`, with the change. */
function changes(before: Page, after: Page, family: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after.samples) {
    if (!k.startsWith(`${family}{`)) continue;
    const d = v - (before.samples.get(k) ?? 0);
    if (d !== 0) out[k.slice(family.length)] = d;
  }
  return out;
}

/** Scrapes until `ok` holds (the metric has caught up with what the test saw); fails showing the last page. */
async function scrapeUntil(what: string, ok: (p: Page) => boolean, timeoutMs = 30_000): Promise<Page> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await scrape();
    if (ok(p)) return p;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; last page:\n${p.text
          .split('\n')
          .filter((l) => l.startsWith('vpsie_runbook_'))
          .join('\n')}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

const OUTCOMES = 'vpsie_runbook_outcomes_total';
const DELIVERIES = 'vpsie_runbook_escalation_deliveries_total';
const HISTOGRAM = 'vpsie_runbook_alert_to_outcome_seconds';
const PENDING = 'vpsie_runbook_approvals_pending';

// ---------------------------------------------------------------------------------------------------------------
// VPSieNodes staged when the file starts (as in runbook-escalation.test.ts).

async function capacityFailed(prefix: string): Promise<VPSieNodeObj> {
  const name = uniq(prefix);
  await e.t.sim.stage(name, 'capacity-limit');
  await e.t.createVN(name);
  return e.t.phase(name, 'Failed');
}

async function stuckInGroup(prefix: string): Promise<{ ng: string; vn: VPSieNodeObj }> {
  const ng = uniq(prefix);
  await e.t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
  await e.t.sim.createNodeGroup(ng);
  const [vn] = await e.t.waitFor(`the VPSieNode of ${ng}`, async () => {
    const vns = await e.t.listVNs(ng);
    return vns.length === 1 && vns[0].status?.phase ? vns : undefined;
  });
  return { ng, vn };
}

let staged: { capacity: Promise<VPSieNodeObj>; approval: Promise<{ ng: string; vn: VPSieNodeObj }> };

function sent(service: SinkService, wf: string): SinkRequest[] {
  return sink.of(service).filter((r) => {
    const b = r.body as Record<string, unknown> | undefined;
    if (service === 'pagerduty') return String(b?.dedup_key ?? '') === wf;
    if (service === 'webhook') return b?.workflowId === wf;
    return JSON.stringify(b ?? null).includes(`\`${wf}\``);
  });
}

beforeAll(async () => {
  sdkAddress = `127.0.0.1:${await freePort()}`;
  Runtime.install({ logger: new DefaultLogger('WARN'), telemetryOptions: sdkTelemetryOptions(sdkAddress) });
  const support = await import('../support/runbook-e2e');
  FAST = support.FAST_OPTIONS;
  e = new support.RunbookE2E('metrics');
  await sink.start();
  secretsDir = await mkdtemp(join(tmpdir(), 'e2e-metrics-'));
  await e.start('metrics', {}, await sink.channelsConfig(secretsDir, ROUTES));
  staged = { capacity: capacityFailed('cap'), approval: stuckInGroup('appr') };
  for (const p of Object.values(staged)) p.catch(() => undefined);
  metrics = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    sdkMetricsAddress: sdkAddress,
    approvals: { client: e.ctx.client, taskQueue: e.taskQueue, cacheMs: 0 },
  });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(Object.values(staged ?? {}));
  await metrics?.close();
  await e?.stop();
  await sink.stop();
  if (secretsDir) await rm(secretsDir, { recursive: true, force: true });
}, 120_000);

afterEach(() => {
  expect(e.t.sim.errors).toEqual([]);
});

// ---------------------------------------------------------------------------------------------------------------

test("one page in the text format: the SDK's metrics for this worker's task queue and the project's", async () => {
  // the worker polls as soon as it runs; Core's gauge says so once its pollers are up
  const p = await scrapeUntil('the SDK to count the pollers of this task queue', (x) =>
    [...x.samples.keys()].some((k) => k.startsWith('temporal_num_pollers{') && k.includes(e.taskQueue)),
  );
  expect(p.problems).toEqual([]);
  expect(p.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(
    value(p, 'temporal_worker_start', {
      namespace: 'default',
      service_name: 'temporal-core-sdk',
      task_queue: e.taskQueue,
    }),
  ).toBe(1);
  expect(value(p, 'vpsie_runbook_metrics_source_up', { source: 'temporal_sdk' })).toBe(1);
  expect(value(p, 'vpsie_runbook_metrics_source_up', { source: 'temporal_visibility' })).toBe(1);
  // nothing waits for a person on this task queue yet: both kinds of run show 0, not nothing
  expect(value(p, PENDING, { workflow_type: 'provisioningFailedRunbook' })).toBe(0);
  expect(p.samples.has(key(PENDING, { workflow_type: 'orphanedVmCleanup' }))).toBe(true);
  for (const family of [OUTCOMES, DELIVERIES, HISTOGRAM, 'vpsie_runbook_runs_started_total'])
    expect(p.text).toMatch(new RegExp(`^# TYPE ${family.replace(/_total$/, '(_total)?')} `, 'm'));
  // the process's own (prom-client's defaults), the event loop's lag among them
  expect(p.text).toMatch(/^nodejs_eventloop_lag_seconds /m);
});

test('an escalated run counts one outcome and one observation; each channel counts its delivery once, though the escalation was retried; a query that replays the closed run counts nothing more', async () => {
  const vn = await staged.capacity;
  const before = await scrape();
  // PagerDuty fails the first attempt (retried: delivered by the second), Slack refuses for good
  sink.fail('pagerduty', { status: 503 });
  sink.fail('slack', { status: 400 });
  const h = await e.alert(vn.metadata.name);
  const startedAt = Date.now();
  const report = await e.result(h);
  expect(report).toMatchObject({ outcome: 'Escalated', cause: 'VMCreationFailed' });
  expect(report.escalation?.record?.channels.map((c) => [c.channel, c.ok])).toEqual([
    ['kubernetes-event', true],
    ['pagerduty', true],
    ['slack', false],
  ]);
  // the retry happened: PagerDuty got the trigger twice (503, then 202), Slack once (400, not retried)
  expect(sent('pagerduty', h.workflowId).map((r) => r.answer)).toEqual([503, 202]);
  expect(sent('slack', h.workflowId).map((r) => r.answer)).toEqual([400]);

  // counted when the run ended, before result() returned
  const after = await scrape();
  expect(after.problems).toEqual([]);
  expect(changes(before, after, OUTCOMES)).toEqual({ '{cause="VMCreationFailed",outcome="Escalated"}': 1 });
  expect(changes(before, after, DELIVERIES)).toEqual({
    '{channel="kubernetes-event",kind="escalation",result="delivered"}': 1,
    '{channel="pagerduty",kind="escalation",result="delivered"}': 1,
    '{channel="slack",kind="escalation",result="refused"}': 1,
  });
  // started by a program, not an alert: from the run's start; one observation, as long as the run took
  const run = { outcome: 'Escalated', since: 'run' };
  expect(value(after, `${HISTOGRAM}_count`, run) - value(before, `${HISTOGRAM}_count`, run)).toBe(1);
  const took = value(after, `${HISTOGRAM}_sum`, run) - value(before, `${HISTOGRAM}_sum`, run);
  expect(took).toBeGreaterThan(0);
  expect(took).toBeLessThanOrEqual((Date.now() - startedAt) / 1000 + 5);
  // the SDK saw the same run complete
  const completed = {
    namespace: 'default',
    service_name: 'temporal-core-sdk',
    task_queue: e.taskQueue,
    workflow_type: 'provisioningFailedRunbook',
  };
  expect(value(after, 'temporal_workflow_completed', completed)).toBe(
    value(before, 'temporal_workflow_completed', completed) + 1,
  );

  // A query of the closed run: the worker dropped the run from its cache when it completed, so it answers by
  // replaying the run's whole history, which runs the code that counted its end once more.
  const cache = { namespace: 'default', service_name: 'temporal-core-sdk', task_queue: e.taskQueue };
  const answered = {
    namespace: 'default',
    operation: 'RespondQueryTaskCompleted',
    service_name: 'temporal-core-sdk',
  };
  const evicted = await scrapeUntil(
    'the worker to drop the completed run from its cache',
    (x) => value(x, 'temporal_sticky_cache_size', cache) === 0,
  );
  const { runId } = await h.describe();
  const status = await e.ctx.client.workflow.getHandle(h.workflowId, runId).query(statusQuery);
  expect(status).toMatchObject({ stage: 'completed', outcome: 'Escalated' });
  // the worker answered it (not the server): Core counts the query task it completed
  const replayed = await scrapeUntil(
    'the worker to answer the query task',
    (x) => value(x, 'temporal_request', answered) > value(evicted, 'temporal_request', answered),
  );
  expect(changes(after, replayed, OUTCOMES)).toEqual({});
  expect(changes(after, replayed, `${HISTOGRAM}_count`)).toEqual({});
  expect(changes(after, replayed, DELIVERIES)).toEqual({});
});

test('a run waiting for a person shows in the approvals gauge until approved; ended, it counts its outcome and the time since its alert', async () => {
  const { vn } = await staged.approval;
  const before = await scrape();
  // as the receiver starts it: the alert has been firing for ten minutes
  const firing = new Date(Date.now() - 10 * 60_000).toISOString();
  const { handle } = await startRunbook(
    e.ctx.client,
    { namespace: e.t.ns, name: vn.metadata.name, options: FAST },
    {
      taskQueue: e.taskQueue,
      origin: { source: 'alertmanager', alertName: 'VPSieNodeProvisioningTimeout', startsAt: firing },
    },
  );
  const h = handle as RunbookHandle;
  await e.pending(h, 'delete-vpsienode');
  const waiting = await scrapeUntil(
    'the gauge to count the run waiting for approval',
    (x) => value(x, PENDING, { workflow_type: 'provisioningFailedRunbook' }) === 1,
  );
  expect(value(waiting, PENDING, { workflow_type: 'orphanedVmCleanup' })).toBe(0);
  // announced to the approval channels (Slack and the webhook) once each
  await e.t.waitFor('the approval announced on both channels', async () =>
    sent('webhook', h.workflowId).length === 1 && sent('slack', h.workflowId).length === 1 ? true : undefined,
  );

  await e.decide(h, 'delete-vpsienode', 'approve');
  const report = await e.result(h);
  expect(report).toMatchObject({ outcome: 'Remediated', cause: 'ProvisioningTimeout' });
  const done = await scrapeUntil(
    'the gauge to drop the approved run',
    (x) => value(x, PENDING, { workflow_type: 'provisioningFailedRunbook' }) === 0,
  );
  expect(done.problems).toEqual([]);
  expect(changes(before, done, OUTCOMES)).toEqual({
    '{cause="ProvisioningTimeout",outcome="Remediated"}': 1,
  });
  // the approval's announcements, and the resolve every Remediated run sends PagerDuty
  expect(changes(before, done, DELIVERIES)).toEqual({
    '{channel="slack",kind="approval",result="delivered"}': 1,
    '{channel="webhook",kind="approval",result="delivered"}': 1,
    '{channel="pagerduty",kind="resolve",result="delivered"}': 1,
  });
  // one observation, from the alert's start: at least the ten minutes it fired before the run
  const alert = { outcome: 'Remediated', since: 'alert' };
  expect(value(done, `${HISTOGRAM}_count`, alert) - value(before, `${HISTOGRAM}_count`, alert)).toBe(1);
  const seconds = value(done, `${HISTOGRAM}_sum`, alert) - value(before, `${HISTOGRAM}_sum`, alert);
  expect(seconds).toBeGreaterThanOrEqual(600);
  expect(seconds).toBeLessThan(600 + 120);
  expect(value(done, `${HISTOGRAM}_bucket`, { ...alert, le: '300' })).toBe(
    value(before, `${HISTOGRAM}_bucket`, { ...alert, le: '300' }),
  );
  expect(
    value(done, `${HISTOGRAM}_bucket`, { ...alert, le: '900' }) -
      value(before, `${HISTOGRAM}_bucket`, { ...alert, le: '900' }),
  ).toBe(1);
});

test("without Core's exporter the page still has the project's metrics, and says the SDK's are missing; close() stops it", async () => {
  // a port nothing listens on: Core's exporter gone (the runtime stopping at shutdown)
  const gone = `127.0.0.1:${await freePort()}`;
  const alone = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    sdkMetricsAddress: gone,
    approvals: null,
  });
  try {
    const p = await scrape(alone.url);
    expect(p.problems).toEqual([]);
    expect(value(p, 'vpsie_runbook_metrics_source_up', { source: 'temporal_sdk' })).toBe(0);
    expect(p.text).not.toMatch(/^temporal_/m);
    expect(p.text).toMatch(/^# TYPE vpsie_runbook_outcomes_total counter$/m);
    expect((await fetch(alone.url.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(alone.url, { method: 'POST' })).status).toBe(405);
  } finally {
    await alone.close();
  }
  await expect(fetch(alone.url)).rejects.toThrow();
});
