/**
 * Issue 10, "Bad input refused": the alert receiver fed 1,100 generated bad requests (test/support/bad-input/:
 * ten categories, a seeded generator, each case with the answer a user must get), sent concurrently to a receiver
 * started as `npm start` starts it (a token, a body limit) on the real Temporal dev server, with the product's
 * worker on its task queue. Each gets its status and a message naming the field or value; the receiver keeps
 * serving; and none of them starts a run: every VPSieNode a bad request names is unique to this file, and after a
 * good request's run shows in Temporal's visibility (proof that visibility has caught up), no run names any of
 * them, by workflow id (read directly, strongly consistent) nor by search attribute.
 *
 * receiver.test.ts shows one request of each kind with its exact answer; this file is the volume and the spread.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import { KubernetesClient } from '../../src/clients/kubernetes';
import { runsStarted } from '../../src/metrics';
import { startReceiver, type ReceiverServer } from '../../src/receiver';
import { workflowIdFor } from '../../src/runbook';
import { generateIntakeCases, INTAKE_CATEGORIES, type IntakeCase } from '../support/bad-input/intake-cases';
import { pool, send, type Received } from '../support/bad-input/http';
import { kubeConfigFor } from '../support/kube';
import { FAST_OPTIONS, RunbookE2E } from '../support/runbook-e2e';

jest.setTimeout(120_000);

const SEED = 20261126;
const COUNT = 1_100;
const CONCURRENCY = 16;
const MAX_BODY = 8 * 1024;
const TOKEN = randomBytes(24).toString('hex');
/** Every VPSieNode a bad request names starts with this; nothing else in the cluster or in Temporal does. */
const PREFIX = `bad-${randomBytes(4).toString('hex')}`;

const e = new RunbookE2E('bad-intake');
let receiver: ReceiverServer;
const receiverLog: string[] = [];
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });

beforeAll(async () => {
  await e.start('bad-intake');
  receiver = await startReceiver({
    connection: e.ctx.connection,
    taskQueue: e.taskQueue,
    kubernetes: new KubernetesClient(kubeConfigFor('runbook')),
    host: '127.0.0.1',
    port: 0,
    token: { variable: 'RECEIVER_TOKEN', value: TOKEN },
    maxBodyBytes: MAX_BODY,
    runOptions: FAST_OPTIONS,
    log: (line) => receiverLog.push(line),
  });
}, 120_000);

afterAll(async () => {
  agent.destroy();
  await receiver?.close();
  await e.stop();
});

const startedByReceiver = async (): Promise<number> =>
  (await runsStarted.get()).values
    .filter((v) => v.labels.source === 'alertmanager')
    .reduce((n, v) => n + v.value, 0);

/** Why `got` is not the answer case `c` must get, or null. */
function mismatch(c: IntakeCase, got: Received): string | null {
  const x = c.expect;
  if (got.status !== x.status) return `status ${got.status}, expected ${x.status}`;
  if (!got.json || typeof got.json.message !== 'string') return `answer is not JSON with a message`;
  const message = got.json.message;
  if (typeof x.message === 'string' ? message !== x.message : !x.message.test(message))
    return `message ${JSON.stringify(message)}, expected ${String(x.message)}`;
  if (x.field) {
    const problems = message.slice(message.indexOf(': ') + 2).split('; ');
    if (!problems.some((p) => p.startsWith(`${x.field}: `)))
      return `message does not name the field ${x.field}: ${message}`;
  }
  for (const [k, v] of Object.entries(x.headers ?? {}))
    if (got.headers[k] !== v) return `header ${k}: ${String(got.headers[k])}, expected ${v}`;
  if (x.ignored) {
    const alerts = got.json.alerts ?? [];
    if (got.json.status !== 'ok') return `status field ${got.json.status}, expected ok`;
    if (alerts.length !== x.ignored.length)
      return `${alerts.length} alerts answered, expected ${x.ignored.length}`;
    const wrong = alerts.findIndex((a, i) => a.result !== 'ignored' || !a.reason?.includes(x.ignored![i]));
    if (wrong >= 0)
      return `alert ${wrong}: ${JSON.stringify(alerts[wrong])}, expected ignored: ${x.ignored[wrong]}`;
  } else if (got.json.status !== 'refused') return `status field ${got.json.status}, expected refused`;
  return null;
}

test(`${COUNT} generated bad requests get their 4xx naming the field, the receiver keeps serving, and none starts a run`, async () => {
  const cases = generateIntakeCases(SEED, COUNT, {
    token: TOKEN,
    namespace: e.t.ns,
    prefix: PREFIX,
    maxBodyBytes: MAX_BODY,
  });
  const perCategory = new Map<string, number>();
  for (const c of cases) perCategory.set(c.category, (perCategory.get(c.category) ?? 0) + 1);
  expect([...perCategory.keys()].sort()).toEqual([...INTAKE_CATEGORIES].sort());
  for (const n of perCategory.values()) expect(n).toBeGreaterThanOrEqual(100);
  const started0 = await startedByReceiver();

  const t0 = Date.now();
  // While the flood goes on, the receiver answers its liveness probe, as the kubelet asks it.
  let flooding = true;
  const probes: number[] = [];
  const probing = (async () => {
    while (flooding) {
      probes.push((await fetch(`${receiver.url}/healthz`)).status);
      await new Promise((r) => setTimeout(r, 50)); // a probe's period, not a wait for something
    }
  })();
  const answers = await pool(cases, CONCURRENCY, (c) => send(receiver.url, c, agent));
  const elapsed = Date.now() - t0;
  flooding = false;
  await probing;
  expect(probes.length).toBeGreaterThan(0);
  expect(probes.filter((x) => x !== 200)).toEqual([]);

  const wrong = cases.flatMap((c, i) => {
    const why = mismatch(c, answers[i]);
    return why ? [`#${c.id} ${c.category} (${c.what}): ${why}`] : [];
  });
  // All of them at once, so one run shows every kind of failure.
  expect(wrong).toEqual([]);
  // Nothing was a failure of the receiver's own (Alertmanager would retry a 5xx).
  expect(receiverLog.filter((l) => / 5\d\d: |unexpected/.test(l))).toEqual([]);
  // Sent in a few seconds: the receiver refuses cheaply (here about 1 s for all on a quiet machine).
  expect(elapsed).toBeLessThan(60_000);

  // The receiver still serves: alive, ready, and a good request starts its run.
  const healthz = await fetch(`${receiver.url}/healthz`);
  expect([healthz.status, await healthz.json()]).toEqual([200, { status: 'alive' }]);
  const readyz = await fetch(`${receiver.url}/readyz`);
  expect(readyz.status).toBe(200);
  const goodName = `good-${randomBytes(4).toString('hex')}`;
  const good = await fetch(`${receiver.url}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      version: '4',
      status: 'firing',
      receiver: 'vpsie-runbook',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'VPSieNodeProvisioningFailed', namespace: e.t.ns, vpsienode: goodName },
          annotations: {},
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          fingerprint: randomBytes(8).toString('hex'),
        },
      ],
    }),
  });
  const goodAnswer = (await good.json()) as { alerts: { runs?: { action: string; runId: string }[] }[] };
  expect(good.status).toBe(200);
  expect(goodAnswer.alerts[0].runs?.map((r) => r.action)).toEqual(['started']);
  const goodRunId = goodAnswer.alerts[0].runs![0].runId;
  // Only the good request started a run (the receiver counts every start and join).
  expect((await startedByReceiver()) - started0).toBe(1);

  // No workflow exists for any VPSieNode a bad request named: read by id, which is strongly consistent.
  const targets = [...new Set(cases.flatMap((c) => c.targets))];
  expect(targets.length).toBeGreaterThan(COUNT);
  const existing = (
    await pool(targets, CONCURRENCY, async (ref) => {
      const [namespace, name] = ref.split('/');
      try {
        await e.ctx.client.workflow.getHandle(workflowIdFor({ namespace, name })).describe();
        return ref;
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
    })
  ).filter((x) => x !== null);
  expect(existing).toEqual([]);

  // Visibility: once the good run is listed by its VPSieNodeName (which the worker's first task sets), no run
  // carries the name of a bad one, nor any other VPSieNode of this file's namespace.
  await e.t.waitFor(
    'the good run in visibility by VPSieNodeName',
    async () => {
      for await (const run of e.ctx.client.workflow.list({ query: `VPSieNodeName = "${goodName}"` }))
        if (run.runId === goodRunId) return true;
      return false;
    },
    60_000,
  );
  const listed = async (query: string): Promise<string[]> => {
    const ids: string[] = [];
    for await (const run of e.ctx.client.workflow.list({ query })) ids.push(run.workflowId);
    return ids;
  };
  expect(await listed(`VPSieNodeName STARTS_WITH "${PREFIX}"`)).toEqual([]);
  expect(await listed(`VPSieNodeNamespace = "${e.t.ns}"`)).toEqual([
    workflowIdFor({ namespace: e.t.ns, name: goodName }),
  ]);

  await e.ctx.client.workflow
    .getHandle(workflowIdFor({ namespace: e.t.ns, name: goodName }))
    .terminate('bad-input test done')
    .catch(() => undefined); // it may have ended already (no such VPSieNode)
});
