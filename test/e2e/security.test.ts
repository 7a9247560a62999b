/**
 * Issue 10, security checks: no secret in any workflow history or in the product's logs, and the restricted
 * Kubernetes identity the only one the product's code uses.
 *
 * - Histories: every test file that used Temporal has the histories of the executions started meanwhile scanned
 *   for every secret of the suite (test/support/history-scan-hook.ts, over test/support/secrets.ts). Here: the
 *   scan finds a secret written into a history on purpose, and a test file that leaves one fails.
 * - Logs: the worker (`npm start`'s entry) and the receiver as processes, with every secret configured, at debug:
 *   an escalation delivered to every channel, an approval announced, requests with a wrong token; their output and
 *   their runs' histories hold no secret.
 * - Identity: the apiserver's audit log (Metadata level, started by the global setup) says who made each request;
 *   the product's client sends its own User-Agent. Every request of the product's code was made as vpsie-runbook
 *   (or the powerless no-role-bound, refused), never the admin.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { KUBERNETES_USER_AGENT, KubernetesClient } from '../../src/clients/kubernetes';
import { workflowIdFor, type DiagnosisReport } from '../../src/runbook';
import { freePort } from '../../src/temporal/free-port';
import { startRunbook } from '../../src/temporal/start-runbook';
import { decideUpdate } from '../../src/workflows/messages';
import {
  AUDIT_CANARY_PREFIX,
  auditLogOffset,
  identityViolations,
  productAuditEvents,
  type AuditEvent,
} from '../support/audit-log';
import { LABEL_SIMULATOR, type VPSieNodeObj } from '../support/cluster';
import { SimTest, uniq } from '../support/cluster/test-helpers';
import { controlPlaneFromEnv, kubeconfigYaml, NO_ROLE_USER, RUNBOOK_USER } from '../support/control-plane';
import { EscalationSink } from '../support/escalation-sink';
import { historyText } from '../support/histories';
import { CANARY_PREFIX, describeLeaks, scanHistories } from '../support/history-scan';
import { kubeConfigFor } from '../support/kube';
import { FAST_OPTIONS, SIM_LIMIT_MS } from '../support/runbook-e2e';
import { findSecrets, registeredSecrets, secret } from '../support/secrets';
import { temporalAddress, uniqueTaskQueue } from '../support/temporal';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
let connection: Connection;
let client: Client;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-security-'));
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
});

afterAll(async () => {
  await connection?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Polls `fn` until it answers something; fails naming `what`. */
async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Histories

describe('the history scan', () => {
  it('finds a registered secret written into a history, naming the workflow and the kind, never the secret', async () => {
    const since = new Date(Date.now() - 1_000);
    const token = secret('receiver-token');
    const slack = secret('slack-webhook-url');
    const workflowId = `${CANARY_PREFIX}${randomUUID()}`;
    // no worker polls this queue: the start alone writes the input and the memo into the history
    const handle = await client.workflow.start('securityCanary', {
      taskQueue: uniqueTaskQueue('security-canary'),
      workflowId,
      args: [{ note: 'carries a secret on purpose', token }],
      memo: { slack: `https://hooks.slack.com/services/T0/B0/${slack}` },
    });
    try {
      const found = await until('the canary in a scan', async () => {
        const r = await scanHistories({ since, includeCanaries: true, namespaces: ['default'] });
        const mine = r.leaks.filter((l) => l.workflowId === workflowId);
        return mine.length === 2 ? { r, mine } : undefined;
      });
      expect(found.mine.map((l) => [l.kind, l.runId, l.workflowType]).sort()).toEqual([
        ['receiver-token', handle.firstExecutionRunId, 'securityCanary'],
        ['slack-webhook-url', handle.firstExecutionRunId, 'securityCanary'],
      ]);
      const text = describeLeaks(found.mine);
      expect(text).toContain(`default/${workflowId}`);
      expect(text).toContain('receiver-token (48 characters)');
      expect(text).toContain('<slack-webhook-url>');
      expect(text).not.toContain(token);
      expect(text).not.toContain(slack);
      // the suite's own scan leaves the marked canaries out, and reads the rest
      const suite = await scanHistories({ since, namespaces: ['default'] });
      expect(suite.workflowIds).not.toContain(`default/${workflowId}`);
      expect(suite.leaks.filter((l) => l.workflowId === workflowId)).toEqual([]);
    } finally {
      await handle.terminate('canary checked');
    }
  });

  it('fails a test file during which a secret entered a history, naming the workflow and the kind', async () => {
    const key = secret('pagerduty-routing-key');
    const id = randomUUID();
    const fixtureDir = join(dir, 'leaky');
    rmSync(fixtureDir, { recursive: true, force: true });
    mkdirSync(fixtureDir);
    // A test file that passes but leaves a routing key in a history (its id marked, so that the suite's other
    // files leave it alone; the child run scans canaries too).
    writeFileSync(
      join(fixtureDir, 'leaky.test.js'),
      `const { Client, Connection } = require(${JSON.stringify(require.resolve('@temporalio/client'))});
test('starts a workflow whose input holds a routing key', async () => {
  const connection = await Connection.connect({ address: process.env.TEMPORAL_TEST_ADDRESS });
  const client = new Client({ connection });
  const workflowId = ${JSON.stringify(`${CANARY_PREFIX}leaky-${id}`)};
  const h = await client.workflow.start('securityCanary', {
    taskQueue: 'security-canary-nobody', workflowId, args: [{ routingKey: process.env.CANARY_KEY }],
  });
  for (;;) {
    let seen = false;
    for await (const w of client.workflow.list({ query: 'WorkflowId = "' + workflowId + '"' })) seen = true;
    if (seen) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await h.terminate('done');
  await connection.close();
});
`,
    );
    writeFileSync(
      join(fixtureDir, 'jest.config.json'),
      JSON.stringify({
        rootDir: fixtureDir,
        testMatch: ['**/*.test.js'],
        testEnvironment: 'node',
        transform: { '^.+\\.(t|j)sx?$': [require.resolve('@swc/jest')] },
        setupFilesAfterEnv: [join(ROOT, 'test', 'support', 'history-scan-hook.ts')],
      }),
    );
    const child = spawn(
      process.execPath,
      [
        require.resolve('jest/bin/jest'),
        '--config',
        join(fixtureDir, 'jest.config.json'),
        '--ci',
        '--verbose',
      ],
      {
        cwd: ROOT,
        env: { ...process.env, HISTORY_SCAN_INCLUDE_CANARIES: '1', CANARY_KEY: key, FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // its one test passed; the file failed after it, on the scan
    expect(output).toMatch(/Tests:\s+1 passed, 1 total/);
    expect(output).toMatch(/Test Suites:\s+1 failed, 1 total/);
    expect(output).toContain('secret(s) in workflow history');
    expect(output).toContain(`default/${CANARY_PREFIX}leaky-${id}`);
    expect(output).toContain('pagerduty-routing-key (32 characters)');
    expect(output).not.toContain(key);
    expect(code).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Logs: the product as processes, with every secret configured

interface Proc {
  child: ChildProcess;
  output: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** A product entry point from its TypeScript sources, as `npm start` and `npm run receiver` run it (built). */
function product(entry: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['-r', './demo/register.js', entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    waitFor: async (pattern, timeoutMs = 120_000) => {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => (done = true));
      while (!pattern.test(output)) {
        if (done) throw new Error(`${entry} exited before ${pattern}; output:\n${output}`);
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/** A notification with one per-VPSieNode alert, as Alertmanager posts it. */
function notification(namespace: string, vpsienode: string): string {
  const labels = { alertname: 'VPSieNodeProvisioningFailed', namespace, vpsienode, severity: 'critical' };
  return JSON.stringify({
    version: '4',
    groupKey: '{}:{alertname="VPSieNodeProvisioningFailed"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'vpsie-runbook',
    groupLabels: { alertname: 'VPSieNodeProvisioningFailed' },
    commonLabels: labels,
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels,
        annotations: { summary: `VPSieNode ${namespace}/${vpsienode} failed` },
        startsAt: '2026-11-26T10:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: randomBytes(8).toString('hex'),
      },
    ],
  });
}

describe('the product as processes, every secret configured, at debug', () => {
  const t = new SimTest();
  const sink = new EscalationSink();
  const procs: Proc[] = [];
  const started = new Date(Date.now() - 1_000);
  const taskQueue = uniqueTaskQueue('security-logs');
  const receiverToken = secret('receiver-token');
  const standaloneToken = secret('receiver-token');
  let auditFrom = 0;
  let worker: Proc;
  let receiver: Proc;
  let workerPort = 0;
  let receiverPort = 0;
  let capacity: Promise<VPSieNodeObj>;
  let stuck: Promise<VPSieNodeObj>;

  beforeAll(async () => {
    auditFrom = auditLogOffset();
    await Promise.all([
      sink.start(),
      t.start('security', {
        timings: { provisioningTimeoutMs: SIM_LIMIT_MS, joiningTimeoutMs: SIM_LIMIT_MS },
      }),
    ]);
    // Failed at once (VPSie's worker-count limit): the run escalates VMCreationFailed without waiting
    capacity = (async () => {
      const name = uniq('cap');
      await t.sim.stage(name, 'capacity-limit');
      await t.createVN(name);
      return t.phase(name, 'Failed');
    })();
    // a VM that never boots: ProvisioningTimeout after the limit, then an approval of delete-vpsienode
    stuck = (async () => {
      const ng = uniq('appr');
      await t.sim.stage({ nodeGroup: ng }, 'stuck-provisioning', { count: 1, answer: 'sync' });
      await t.sim.createNodeGroup(ng);
      const [vn] = await t.waitFor(`the VPSieNode of ${ng}`, async () => {
        const vns = await t.listVNs(ng);
        return vns.length === 1 ? vns : undefined;
      });
      return vn;
    })();
    for (const p of [capacity, stuck]) p.catch(() => undefined);

    const cp = controlPlaneFromEnv();
    if (!cp) throw new Error('no control plane: run through jest');
    writeFileSync(join(dir, 'kubeconfig'), kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }));
    writeFileSync(join(dir, 'vpsie-token'), `${VPSieSimulator.DEFAULT_TOKEN}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'receiver-token'), `${standaloneToken}\n`, { mode: 0o600 });
    [workerPort, receiverPort] = [await freePort(), await freePort()];
    const common = {
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: taskQueue,
      KUBECONFIG: join(dir, 'kubeconfig'),
      LOG_LEVEL: 'debug',
      METRICS_PORT: 'off',
      RECEIVER_HOST: '127.0.0.1',
    };
    worker = product('src/main.ts', {
      ...common,
      VPSIE_API_URL: t.vpsie.baseUrl,
      VPSIE_TOKEN_FILE: join(dir, 'vpsie-token'),
      CONTROLLER_LABEL_SELECTOR: `app=vpsie-autoscaler,${LABEL_SIMULATOR}=${t.sim.id}`,
      SLACK_WEBHOOK_URL: sink.url('slack'),
      PAGERDUTY_ROUTING_KEY: sink.routingKey,
      PAGERDUTY_EVENTS_URL: sink.url('pagerduty'),
      ESCALATION_WEBHOOK_URL: sink.url('webhook'),
      RECEIVER_PORT: String(workerPort),
      RECEIVER_TOKEN: receiverToken,
    });
    receiver = product('src/receiver/main.ts', {
      ...common,
      RECEIVER_PORT: String(receiverPort),
      RECEIVER_TOKEN_FILE: join(dir, 'receiver-token'),
    });
    procs.push(worker, receiver);
    await Promise.all([
      worker.waitFor(/worker polling task queue/),
      receiver.waitFor(/listening on 127\.0\.0\.1:\d+/),
    ]);
  }, 180_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await Promise.allSettled([capacity, stuck]);
    await t.stop();
    await sink.stop();
  });

  const post = (port: number, token: string, body: string) =>
    fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body,
    });

  it('escalates to every channel and announces an approval; no secret in any output or in those runs’ histories', async () => {
    // an escalation: the alert through the standalone receiver, the run on the worker process
    const cap = await capacity;
    const alert = notification(t.ns, cap.metadata.name);
    const ok = await post(receiverPort, standaloneToken, alert);
    expect(ok.status).toBe(200);
    // the same alert to the receiver beside the worker joins that run
    expect((await post(workerPort, receiverToken, alert)).status).toBe(200);
    // wrong tokens: refused by both, nothing started
    const wrong = [
      await post(receiverPort, receiverToken, notification(t.ns, 'never-started-1')),
      await post(workerPort, `${receiverToken.slice(0, -1)}x`, notification(t.ns, 'never-started-2')),
    ];
    expect(wrong.map((r) => r.status)).toEqual([401, 401]);

    const capId = workflowIdFor({ namespace: t.ns, name: cap.metadata.name });
    const report = (await client.workflow.getHandle(capId).result()) as DiagnosisReport;
    expect([report.outcome, report.cause]).toEqual(['Escalated', 'VMCreationFailed']);
    const delivered = (service: 'pagerduty' | 'slack' | 'webhook') =>
      sink.of(service).filter((r) => JSON.stringify(r.body ?? null).includes(capId));
    const services = ['pagerduty', 'slack', 'webhook'] as const;
    expect(services.filter((s) => delivered(s).length === 0)).toEqual([]);

    // an approval, announced, then rejected
    const vn = await stuck;
    const { handle } = await startRunbook(
      client,
      { namespace: t.ns, name: vn.metadata.name, options: { ...FAST_OPTIONS, approvers: ['alice'] } },
      { taskQueue },
    );
    await until(
      'the approval announced',
      async () =>
        sink.of('slack').some((r) => JSON.stringify(r.body ?? null).includes(handle.workflowId)) &&
        sink.of('webhook').some((r) => JSON.stringify(r.body ?? null).includes(handle.workflowId))
          ? true
          : undefined,
      90_000,
    );
    await handle.executeUpdate(decideUpdate, {
      args: [{ stepId: 'delete-vpsienode', decision: 'reject', approver: 'alice', reason: 'security test' }],
    });
    expect((await handle.result()).outcome).toBe('Rejected');

    for (const p of procs) p.child.kill('SIGTERM');
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0]);

    // debug was on, and the outputs say what they did (without saying the secrets)
    const out = worker.output() + receiver.output();
    expect(worker.output()).toContain('escalation channels: pagerduty, slack, webhook');
    expect(worker.output()).toMatch(/\[DEBUG\]/);
    if (process.env.SECURITY_DUMP_OUTPUT) writeFileSync(process.env.SECURITY_DUMP_OUTPUT, out);
    expect(receiver.output()).toContain('(bearer token from RECEIVER_TOKEN_FILE)');
    expect(worker.output()).toContain('(bearer token from RECEIVER_TOKEN)');
    const secrets = registeredSecrets();
    for (const s of [receiverToken, standaloneToken, sink.routingKey, VPSieSimulator.DEFAULT_TOKEN])
      expect(secrets.map((x) => x.value)).toContain(s);
    expect(findSecrets(out, secrets).map((h) => `${h.secret}: …${h.context}…`)).toEqual([]);

    // the runs' histories (and whatever they started: the NodeGroup lease)
    const scan = await scanHistories({ since: started, namespaces: ['default'] });
    expect(scan.workflowIds).toEqual(
      expect.arrayContaining([`default/${capId}`, `default/${handle.workflowId}`]),
    );
    expect(describeLeaks(scan.leaks)).toBe('');
    // and a positive control: the history is read decoded (the VPSieNode's name is in the input payload)
    expect(await historyText(client.workflow.getHandle(capId))).toContain(cap.metadata.name);

    // every Kubernetes request these processes made was made as vpsie-runbook
    const { events } = productAuditEvents(auditFrom);
    expect(events.filter((e) => e.user.username === RUNBOOK_USER).length).toBeGreaterThan(0);
    expect(identityViolations(events)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// The restricted identity, seen by the apiserver

describe('the Kubernetes identity of the product’s code (the apiserver’s audit log)', () => {
  const sawRequest = (from: number, name: string) =>
    until(`the audit entry of ${name}`, async () => {
      const found = productAuditEvents(from).events.filter((e) => e.requestURI.includes(name));
      return found.length > 0 ? found : undefined;
    });

  it('logs the product’s requests with its User-Agent and user, and the check names any other identity', async () => {
    const from = auditLogOffset();
    const probe = `security-probe-${randomBytes(4).toString('hex')}`;
    expect(
      await new KubernetesClient(kubeConfigFor('runbook')).getVPSieNode({
        namespace: 'default',
        name: probe,
      }),
    ).toBeNull();
    const [mine] = await sawRequest(from, probe);
    expect(mine).toMatchObject({
      verb: 'get',
      userAgent: KUBERNETES_USER_AGENT,
      user: { username: RUNBOOK_USER },
    });
    expect(identityViolations([mine])).toEqual([]);

    // a deliberate breach, marked: the product's client handed the admin token
    const canary = `${AUDIT_CANARY_PREFIX}${randomBytes(4).toString('hex')}`;
    await new KubernetesClient(kubeConfigFor('admin')).getVPSieNode({ namespace: 'default', name: canary });
    const breach = await sawRequest(from, canary);
    expect(identityViolations(breach, true)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^get /apis/autoscaler\\.vpsie\\.com/v1alpha1/namespaces/default/vpsienodes/${canary} as admin \\(HTTP 404`,
        ),
      ),
    ]);
    expect(identityViolations(breach)).toEqual([]);
    // the powerless identity of the refusal tests passes only while it is refused
    const refused: AuditEvent = { ...mine, user: { username: NO_ROLE_USER }, responseStatus: { code: 403 } };
    expect(identityViolations([refused])).toEqual([]);
    expect(identityViolations([{ ...refused, responseStatus: { code: 200 } }])).toHaveLength(1);
    expect(identityViolations([{ ...mine, impersonatedUser: { username: RUNBOOK_USER } }])).toHaveLength(1);
  });

  it('shows every request of the product’s code so far in this run made as vpsie-runbook, never the admin', () => {
    const { events, bytes } = productAuditEvents(0);
    expect(bytes).toBeGreaterThan(0);
    const byUser = new Map<string, number>();
    for (const e of events) byUser.set(e.user.username ?? '', (byUser.get(e.user.username ?? '') ?? 0) + 1);
    expect(byUser.get(RUNBOOK_USER)).toBeGreaterThan(0);
    expect(identityViolations(events)).toEqual([]);
    expect(
      events.some((e) => e.user.username === 'admin' && !e.objectRef?.name?.startsWith(AUDIT_CANARY_PREFIX)),
    ).toBe(false);
  });
});
