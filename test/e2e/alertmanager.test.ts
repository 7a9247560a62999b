/**
 * Issue 9, "a real Alertmanager drives the receiver end to end": Debian's Alertmanager, running the shipped
 * example route and receiver (deploy/alertmanager/alertmanager.yml, rendered for the test), is fed alerts through
 * its own API as Prometheus sends them, and its webhook notifications start the runs on the real Temporal server
 * (the product's worker, the simulated autoscaler and VPSie: test/support/runbook-e2e.ts).
 *
 * Alertmanager's notifications reach the receiver through a recording pass-through (`tap`, below): it forwards
 * each request as it came (path, headers, body) and returns the receiver's answer as it is, and keeps both. That
 * is how the test sees *per group* that Alertmanager sent a repeat and what the receiver did with it: its own
 * metrics only count notifications per integration.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { startReceiver, WEBHOOK_PATH, type IntakeAnswer, type ReceiverServer } from '../../src/receiver';
import { workflowIdFor } from '../../src/runbook';
import { ORIGIN_MEMO_KEY } from '../../src/temporal/start-runbook';
import { uniq } from '../support/cluster/test-helpers';
import type { VPSieNodeObj } from '../support/cluster';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { kubeConfigFor } from '../support/kube';
import { closeNow, listenOnLoopback } from '../support/loopback-server';
import {
  findPrometheusTools,
  startAlertmanager,
  type RunningAlertmanager,
} from '../support/prometheus-tools';
import { FAST_OPTIONS, RunbookE2E, type RunbookHandle } from '../support/runbook-e2e';
import { secret } from '../support/secrets';

jest.setTimeout(120_000);

const SHIPPED = resolve(__dirname, '..', '..', 'deploy', 'alertmanager', 'alertmanager.yml');
const RECEIVER_NAME = 'vpsie-runbook';

/**
 * The only values the test changes in the shipped config. The route's timings are the shipped ones made short,
 * each for its own reason:
 * - `group_wait: 1s`: how long Alertmanager holds a new group (here: one VPSieNode's alert) before its first
 *   notification, to gather more alerts into it. The shipped 10s would only make the first run start later; each
 *   group here has one alert, there is nothing to gather.
 * - `group_interval: 1s`: how often a group that has notified is looked at again. A changed group (the resolved
 *   alert) goes out at the next look, so within about a second instead of a minute. Alertmanager gives each
 *   notification max(group_interval, 10s) to complete, so a short interval does not cut a slow receiver off.
 * - `repeat_interval: 1s`: an unchanged firing alert is sent again at the first look at least this long after the
 *   last notification: here every other look, about every 2 s, so the test sees real repeats within seconds
 *   instead of the shipped hour.
 */
const TIMINGS = { group_wait: '1s', group_interval: '1s', repeat_interval: '1s' } as const;

const e = new RunbookE2E('alertmanager');
const tools = findPrometheusTools();
const TOKEN = secret('receiver-token');
let dir = '';
let tokenFile = '';
let receiver: ReceiverServer;
let tap: http.Server;
let tapUrl = '';
let shipped: AmConfig;
let rendered: AmConfig;
let renderedFile = '';
let am: RunningAlertmanager | undefined;
/** Runs the test leaves open (waiting for approval): terminated in afterAll. */
const openRuns: RunbookHandle[] = [];

// ---------------------------------------------------------------------------------------------------------------
// The shipped config, rendered for the test

interface WebhookConfig {
  url: string;
  http_config?: { authorization?: { type?: string; credentials_file?: string } };
  [key: string]: unknown;
}
interface AmConfig {
  route: { routes?: { receiver: string; [key: string]: unknown }[]; [key: string]: unknown };
  receivers: { name: string; webhook_configs?: WebhookConfig[] }[];
  [key: string]: unknown;
}

const runbookRoute = (c: AmConfig) => {
  const route = c.route.routes?.find((r) => r.receiver === RECEIVER_NAME);
  if (!route) throw new Error(`${SHIPPED}: no route to receiver ${RECEIVER_NAME}`);
  return route;
};
const runbookWebhook = (c: AmConfig): WebhookConfig => {
  const hook = c.receivers.find((r) => r.name === RECEIVER_NAME)?.webhook_configs?.[0];
  if (!hook) throw new Error(`${SHIPPED}: receiver ${RECEIVER_NAME} has no webhook_configs`);
  return hook;
};

/**
 * The shipped config with only what must change for a test: the webhook's scheme, host and port (its path stays
 * the shipped one, so a wrong path fails here), the token file, and the route's timings ({@link TIMINGS}).
 */
function render(config: AmConfig, receiverOrigin: string, token: string): AmConfig {
  const out = structuredClone(config);
  Object.assign(runbookRoute(out), TIMINGS);
  const hook = runbookWebhook(out);
  const url = new URL(hook.url);
  const origin = new URL(receiverOrigin);
  url.protocol = origin.protocol;
  url.host = origin.host;
  hook.url = url.toString();
  if (!hook.http_config?.authorization?.credentials_file)
    throw new Error(`${SHIPPED}: the webhook has no authorization.credentials_file to point at the token`);
  hook.http_config.authorization.credentials_file = token;
  return out;
}

/** Paths of the leaves that differ between two parsed YAML documents. */
function changedPaths(a: unknown, b: unknown, at = ''): string[] {
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) =>
      changedPaths(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        at ? `${at}.${k}` : k,
      ),
    );
  }
  return Object.is(a, b) ? [] : [at];
}

function run(bin: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, output }));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The tap: every notification Alertmanager sent, and the receiver's answer to it

interface NotifiedAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  fingerprint: string;
}

interface Delivery {
  /** When the tap got it: a delivery received after a moment was handled by the receiver after it. */
  at: number;
  userAgent: string;
  groupKey: string;
  alerts: NotifiedAlert[];
  answerStatus: number;
  answer: IntakeAnswer['body'];
}

const deliveries: Delivery[] = [];
const tapErrors: string[] = [];
/** The headers passed on: everything but hop-by-hop ones and the length (fetch sets it again). */
const DROPPED = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive']);

async function startTap(): Promise<void> {
  tap = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      const body = Buffer.concat(chunks);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (!DROPPED.has(k) && typeof v === 'string') headers[k] = v;
      void (async () => {
        try {
          const answer = await fetch(`${receiver.url}${req.url ?? '/'}`, {
            method: req.method,
            headers,
            ...(body.length ? { body } : {}),
          });
          const text = await answer.text();
          const sent = JSON.parse(body.toString()) as { groupKey: string; alerts: NotifiedAlert[] };
          deliveries.push({
            at,
            userAgent: req.headers['user-agent'] ?? '',
            groupKey: sent.groupKey,
            alerts: sent.alerts,
            answerStatus: answer.status,
            answer: JSON.parse(text) as IntakeAnswer['body'],
          });
          res.writeHead(answer.status, {
            'content-type': answer.headers.get('content-type') ?? 'text/plain',
          });
          res.end(text);
        } catch (err) {
          tapErrors.push(`${req.method} ${req.url}: ${String(err)}`);
          res.writeHead(502);
          res.end();
        }
      })();
    });
  });
  tapUrl = `http://127.0.0.1:${await listenOnLoopback(tap)}`;
}

/** The notifications that carried the VPSieNode's alert, oldest first. */
const deliveriesFor = (vpsienode: string) =>
  deliveries.filter((d) => d.alerts.some((a) => a.labels.vpsienode === vpsienode));

const actionsOf = (d: Delivery) => d.answer.alerts.flatMap((a) => a.runs ?? []);

/** Waits for a notification carrying the VPSieNode's alert, received after `since` (ms), and answers it. */
function nextDelivery(vpsienode: string, since: number, what: string): Promise<Delivery> {
  return e.t.waitFor(
    `Alertmanager's notification for ${vpsienode} (${what})`,
    async () => deliveriesFor(vpsienode).find((d) => d.at > since),
    45_000,
  );
}

/**
 * Runs a test; when it fails, its message also lists every notification and the receiver's answer, and the end
 * of Alertmanager's log (debug: each flush, each notification, each error).
 */
function explained(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (err) {
      const t0 = deliveries[0]?.at ?? 0;
      const lines = deliveries.map(
        (d) =>
          `+${d.at - t0} ms ${d.alerts.map((a) => `${a.labels.vpsienode} ${a.status}`).join(', ')} → ` +
          `${d.answerStatus} ${actionsOf(d)
            .map((r) => `${r.action} ${r.runId ?? ''}`)
            .join(', ')}`,
      );
      const detail = `\nnotifications:\n${lines.join('\n')}\ntap errors: ${tapErrors.join('; ')}\nAlertmanager logged:\n${am?.output().slice(-8_000) ?? ''}`;
      if (err instanceof Error) err.message += detail;
      throw err;
    }
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Alertmanager's side

interface PostedAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

/**
 * An alert as Prometheus posts it: startsAt when it started firing, endsAt its validity (Prometheus sends
 * 4 × its resend delay ahead, then again before that passes), the expression's link. startsAt's milliseconds end
 * in 0 on purpose: Alertmanager's API then writes it `.130Z` and its webhook `.13Z` (Go's RFC3339Nano drops
 * trailing zeros), the same time in two spellings.
 */
function prometheusAlert(labels: Record<string, string>): PostedAlert {
  const now = Math.floor(Date.now() / 10) * 10;
  return {
    labels,
    annotations: {
      summary: `VPSieNode ${labels.namespace}/${labels.vpsienode} failed to provision`,
      description: `VPSieNode ${labels.vpsienode} of NodeGroup ${labels.nodegroup} is in phase Failed.`,
      runbook_url:
        'https://github.com/vpsieinc/vpsie-k8s-autoscaler/blob/main/docs/runbooks/provisioning-failed.md',
    },
    startsAt: new Date(now).toISOString(),
    endsAt: new Date(now + 4 * 60_000).toISOString(),
    generatorURL: `http://prometheus:9090/graph?g0.expr=${encodeURIComponent(
      'max by (namespace, vpsienode, nodegroup) (kube_customresource_vpsienode_status_phase{phase="Failed"}) == 1',
    )}&g0.tab=1`,
  };
}

async function postAlerts(alerts: PostedAlert[]): Promise<void> {
  const res = await fetch(`${am!.url}/api/v2/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(alerts),
  });
  if (res.status !== 200) throw new Error(`POST /api/v2/alerts: ${res.status} ${await res.text()}`);
}

interface GettableAlert {
  labels: Record<string, string>;
  fingerprint: string;
  startsAt: string;
  receivers: { name: string }[];
  status: { state: string };
}

/** Alertmanager's own view of the alert with these labels (its fingerprint, receivers, startsAt). */
async function amAlert(labels: Record<string, string>): Promise<GettableAlert> {
  return e.t.waitFor(`Alertmanager to list ${JSON.stringify(labels)}`, async () => {
    const res = await fetch(`${am!.url}/api/v2/alerts`);
    const all = (await res.json()) as GettableAlert[];
    return all.find((a) => sameLabels(a.labels, labels));
  });
}

const sameLabels = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => a[k] === b[k]);

/** A sample of Alertmanager's /metrics, by name and exact label set (`{integration="webhook"}`). */
async function amMetric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${am!.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  if (!line) throw new Error(`Alertmanager's /metrics has no ${name}${labels}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

// ---------------------------------------------------------------------------------------------------------------
// Temporal's side

const handleOf = (name: string) =>
  e.ctx.client.workflow.getHandle(workflowIdFor({ namespace: e.t.ns, name })) as RunbookHandle;

/** The run ids of the VPSieNode's workflow id that visibility lists, once it lists `expected`. */
async function listedRuns(name: string, expected: string): Promise<string[]> {
  const query = `WorkflowId = '${workflowIdFor({ namespace: e.t.ns, name })}'`;
  return e.t.waitFor(`visibility to list run ${expected} of ${name}`, async () => {
    const ids: string[] = [];
    for await (const r of e.ctx.client.workflow.list({ query })) ids.push(r.runId);
    return ids.includes(expected) ? ids : undefined;
  });
}

// ---------------------------------------------------------------------------------------------------------------

beforeAll(async () => {
  await e.start('alertmanager');
  dir = await mkdtemp(join(tmpdir(), 'alertmanager-'));
  tokenFile = join(dir, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  receiver = await startReceiver({
    connection: e.ctx.connection,
    taskQueue: e.taskQueue,
    kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
    host: '127.0.0.1',
    port: 0,
    token: { variable: 'RECEIVER_TOKEN_FILE', file: tokenFile },
    runOptions: FAST_OPTIONS,
  });
  await startTap();

  shipped = parse(await readFile(SHIPPED, 'utf8')) as AmConfig;
  rendered = render(shipped, tapUrl, tokenFile);
  renderedFile = join(dir, 'alertmanager.yml');
  await writeFile(renderedFile, stringify(rendered));
  am = await startAlertmanager({ configFile: renderedFile, storagePath: join(dir, 'data') });
});

afterAll(async () => {
  for (const h of openRuns) await h.terminate('test done').catch(() => undefined);
  // stopped first, so that nothing is sent to a receiver that is going away; a clean exit is part of the test
  const code = am ? await am.stop() : 0;
  if (tap) await closeNow(tap);
  await receiver?.close();
  await e.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  expect(code).toBe(0);
});

test('the shipped config, rendered for the test, changes only the address, the token file and the timings, and amtool accepts it', async () => {
  expect(changedPaths(shipped, rendered).sort()).toEqual(
    [
      'receivers.1.webhook_configs.0.url',
      'receivers.1.webhook_configs.0.http_config.authorization.credentials_file',
      'route.routes.0.group_wait',
      'route.routes.0.group_interval',
      'route.routes.0.repeat_interval',
    ].sort(),
  );
  // the shipped URL's path is the receiver's
  expect(new URL(runbookWebhook(rendered).url).pathname).toBe(WEBHOOK_PATH);
  expect(runbookWebhook(rendered).url).toBe(`${tapUrl}${WEBHOOK_PATH}`);
  const check = await run(tools.amtool, ['check-config', renderedFile]);
  expect(check.output).toContain('SUCCESS');
  expect(check.code).toBe(0);
});

test(
  'Alertmanager starts one run per VPSieNode, its repeats start nothing new, and its resolve reaches the run',
  explained(async () => {
    // A: a VPSieNode of a NodeGroup whose machine never boots: Failed (ProvisioningTimeout) once the controller's
    // limit passes; its run asks approval to delete it and stays open. B: refused for capacity, Failed at once; its
    // run escalates and closes.
    const ngA = uniq('ng-am');
    await e.t.sim.stage({ nodeGroup: ngA }, 'stuck-provisioning', { count: 1, answer: 'sync' });
    await e.t.sim.createNodeGroup(ngA);
    const nameB = uniq('cap');
    const ngB = uniq('ng-cap');
    await e.t.sim.stage(nameB, 'capacity-limit', { answer: 'sync' });
    await e.t.createVN(
      nameB,
      { nodeGroupName: ngB },
      { labels: { 'autoscaler.vpsie.com/nodegroup': ngB, 'autoscaler.vpsie.com/managed': 'true' } },
    );
    const [vnA] = await e.t.waitFor(`the VPSieNode of ${ngA}`, async () => {
      const vns = await e.t.listVNs(ngA);
      return vns.length === 1 ? vns : undefined;
    });
    const nameA = vnA.metadata.name;
    const failed: VPSieNodeObj[] = await Promise.all([
      e.t.phase(nameA, 'Failed'),
      e.t.phase(nameB, 'Failed'),
    ]);
    expect(failed.map((vn) => vn.status?.phase)).toEqual(['Failed', 'Failed']);

    // what Prometheus posts when the rule fires for both, with an alert of another team in the same batch
    const labelsOf = (vpsienode: string, nodegroup: string) => ({
      alertname: 'VPSieNodeProvisioningFailed',
      namespace: e.t.ns,
      vpsienode,
      nodegroup,
      severity: 'critical',
    });
    const alertA = prometheusAlert(labelsOf(nameA, ngA));
    const alertB = prometheusAlert(labelsOf(nameB, ngB));
    const unrelatedName = uniq('unrelated');
    const unrelated = prometheusAlert({
      alertname: 'KubeNodeNotReady',
      namespace: e.t.ns,
      vpsienode: unrelatedName,
      nodegroup: ngA,
      severity: 'warning',
    });
    const posted = Date.now();
    await postAlerts([alertA, alertB, unrelated]);
    const amA = await amAlert(alertA.labels);
    const amB = await amAlert(alertB.labels);

    // the first notification of each group starts its run, carrying the alert as Alertmanager sent it
    const runIds = new Map<string, string>();
    for (const [name, ng, amx] of [
      [nameA, ngA, amA],
      [nameB, ngB, amB],
    ] as const) {
      expect(amx.receivers.map((r) => r.name)).toEqual([RECEIVER_NAME]);
      const first = await nextDelivery(name, posted - 1, 'the first');
      expect(first.userAgent).toMatch(/^Alertmanager\//);
      expect(first.alerts.map((a) => [a.status, a.fingerprint])).toEqual([['firing', amx.fingerprint]]);
      const sentStartsAt = first.alerts[0].startsAt;
      expect(Date.parse(sentStartsAt)).toBe(Date.parse(amx.startsAt));
      expect(first.answerStatus).toBe(200);
      const [started] = actionsOf(first);
      expect(actionsOf(first)).toEqual([
        expect.objectContaining({
          action: 'started',
          vpsieNode: `${e.t.ns}/${name}`,
          workflowId: workflowIdFor({ namespace: e.t.ns, name }),
        }),
      ]);
      runIds.set(name, started.runId!);

      const d = await handleOf(name).describe();
      expect(d.runId).toBe(started.runId);
      expect(await d.staticSummary()).toBe(
        `VPSieNode ${e.t.ns}/${name}, NodeGroup ${ng}, alert VPSieNodeProvisioningFailed`,
      );
      expect(d.memo?.[ORIGIN_MEMO_KEY]).toEqual({
        source: 'alertmanager',
        alertName: 'VPSieNodeProvisioningFailed',
        nodeGroup: ng,
        labels: labelsOf(name, ng),
        annotations: (name === nameA ? alertA : alertB).annotations,
        fingerprint: amx.fingerprint,
        startsAt: sentStartsAt,
      });
    }

    // A waits for a person; B escalates (nothing to fix) and closes
    const hA = handleOf(nameA);
    openRuns.push(hA);
    const pending = await e.pending(hA, 'delete-vpsienode');
    expect(pending.target).toMatchObject({ kind: 'VPSieNode', name: nameA });
    expect((await e.result(handleOf(nameB))).outcome).toBe('Escalated');
    const closedB = Date.now();

    // Alertmanager sends both again (repeat_interval): the open run is joined; the closed one's firing is answered
    // from the receiver's record of what it answered (minutes old: `joined`, as it was), starting nothing
    const repeatA = await nextDelivery(nameA, closedB, 'a repeat while the run waits for approval');
    const repeatB = await nextDelivery(nameB, closedB, 'a repeat after the run closed');
    expect(repeatA.alerts.map((a) => [a.status, a.fingerprint])).toEqual([['firing', amA.fingerprint]]);
    expect(repeatB.alerts.map((a) => [a.status, a.fingerprint])).toEqual([['firing', amB.fingerprint]]);
    expect(actionsOf(repeatA)).toEqual([
      expect.objectContaining({ action: 'joined', runId: runIds.get(nameA) }),
    ]);
    expect(actionsOf(repeatB)).toEqual([
      expect.objectContaining({
        action: 'joined',
        runId: runIds.get(nameB),
        why: expect.stringContaining("answered from this receiver's record"),
      }),
    ]);
    // every notification so far, of either group: answered 200, one `started`, the same run
    for (const name of [nameA, nameB]) {
      const all = deliveriesFor(name);
      expect(all.length).toBeGreaterThanOrEqual(2);
      expect(all.map((d) => d.answerStatus)).toEqual(all.map(() => 200));
      const runs = all.flatMap(actionsOf);
      expect(runs.filter((r) => r.action === 'started')).toHaveLength(1);
      expect(new Set(runs.map((r) => r.runId))).toEqual(new Set([runIds.get(name)]));
      // on the server: still that one run
      expect((await handleOf(name).describe()).runId).toBe(runIds.get(name));
      expect(await listedRuns(name, runIds.get(name)!)).toEqual([runIds.get(name)]);
    }
    expect(await e.status(hA)).toMatchObject({
      stage: 'awaiting-approval',
      pendingApproval: expect.objectContaining({ stepId: 'delete-vpsienode' }),
    });
    // Alertmanager counted them as delivered
    const seen = deliveries.length;
    expect(
      await amMetric('alertmanager_notifications_total', '{integration="webhook"}'),
    ).toBeGreaterThanOrEqual(seen);
    expect(await amMetric('alertmanager_notifications_failed_total', '{integration="webhook"}')).toBe(0);
    expect(tapErrors).toEqual([]);

    // the other team's alert went to the default route (no webhook): never sent to the receiver, no run
    expect((await amAlert(unrelated.labels)).receivers.map((r) => r.name)).toEqual(['default']);
    expect(deliveries.flatMap((d) => d.alerts.map((a) => a.labels.alertname))).not.toContain(
      'KubeNodeNotReady',
    );
    await expect(handleOf(unrelatedName).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);

    // A's alert resolves (Prometheus posts it with endsAt in the past): Alertmanager sends it (send_resolved), the
    // run notes it and still waits for the person
    const endsAt = new Date(Date.now() - 1_000).toISOString();
    const resolvedPosted = Date.now();
    await postAlerts([{ ...alertA, endsAt }]);
    const resolved = await e.t.waitFor('the resolved notification for A', async () =>
      deliveriesFor(nameA).find((d) => d.at > resolvedPosted && d.alerts[0].status === 'resolved'),
    );
    expect(resolved.alerts).toEqual([
      expect.objectContaining({ status: 'resolved', fingerprint: amA.fingerprint }),
    ]);
    expect(Date.parse(resolved.alerts[0].startsAt)).toBe(Date.parse(amA.startsAt));
    expect(Date.parse(resolved.alerts[0].endsAt)).toBe(Date.parse(endsAt));
    expect(actionsOf(resolved)).toEqual([
      expect.objectContaining({ action: 'signalled', vpsieNode: `${e.t.ns}/${nameA}` }),
    ]);
    const noted = await e.statusWhen(hA, 'the resolved alert noted', (s) => s.alertResolvedAt !== null);
    expect(Date.parse(noted.alertResolvedAt!)).toBe(Date.parse(endsAt));
    expect(noted.alertResolved).toEqual({
      alertName: 'VPSieNodeProvisioningFailed',
      fingerprint: amA.fingerprint,
      startsAt: resolved.alerts[0].startsAt,
      endsAt: resolved.alerts[0].endsAt,
    });
    expect([noted.stage, noted.pendingApproval?.stepId]).toEqual(['awaiting-approval', 'delete-vpsienode']);
    expect((await handleOf(nameA).describe()).runId).toBe(runIds.get(nameA));
  }),
);
