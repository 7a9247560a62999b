/**
 * The receiver as people run it: the compiled entry points. `npm run receiver` (dist/receiver/main.js) on its own
 * against the test Temporal server: `--help`, a bad value named, an alert taken, its metric served, and SIGTERM
 * answering the request in flight before a clean exit. And `npm start` (dist/main.js) with a Temporal address:
 * the worker and the receiver in one process, an alert posted to it run to its end by that worker.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { workflowIdFor, type DiagnosisReport } from '../../src/runbook';
import { freePort } from '../../src/temporal/free-port';
import { controlPlaneFromEnv, kubeconfigYaml } from '../support/control-plane';
import { secret } from '../support/secrets';
import { temporalAddress, uniqueTaskQueue } from '../support/temporal';

jest.setTimeout(120_000);

const root = join(__dirname, '..', '..');
/** Its own output directory: test/e2e/start.test.ts builds into another, and they may run at once. */
const outDir = join(root, '.cache', 'test-dist-receiver');
let dir: string;
let connection: Connection;
let client: Client;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-receiver-'));
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir],
    { cwd: root },
  );
  connection = await Connection.connect({ address: temporalAddress() });
  client = new Client({ connection });
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await connection?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Proc {
  child: ChildProcess;
  output: () => string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

function run(entry: string, env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [join(outDir, entry)], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = pattern.exec(output);
          if (m) {
            clearTimeout(timer);
            child.stdout?.off('data', check);
            resolve(m);
          }
          return !!m;
        };
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)),
          timeoutMs,
        );
        child.stdout?.on('data', check);
        void exited.then((code) => {
          if (!check()) reject(new Error(`exited with ${code} before ${pattern}; output:\n${output}`));
        });
        check();
      }),
  };
}

function kubeconfigFile(): string {
  const cp = controlPlaneFromEnv();
  if (!cp) throw new Error('no control plane: run through jest');
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }));
  return file;
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
        startsAt: '2025-05-01T10:00:00Z',
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: randomBytes(8).toString('hex'),
      },
    ],
  });
}

it('npm run receiver: --help, and a bad value named before anything starts', () => {
  const help = execFileSync(process.execPath, [join(outDir, 'receiver', 'main.js'), '--help'], {
    encoding: 'utf8',
  });
  expect(help).toMatch(/Usage: npm run receiver/);
  for (const v of ['RECEIVER_PORT', 'RECEIVER_TOKEN_FILE', 'RECEIVER_MAX_BODY_BYTES', 'TEMPORAL_ADDRESS'])
    expect(help).toContain(v);
  let failed: { status: number; stderr: string } | undefined;
  try {
    execFileSync(process.execPath, [join(outDir, 'receiver', 'main.js')], {
      encoding: 'utf8',
      stdio: 'pipe',
      env: { PATH: process.env.PATH, RECEIVER_TOKEN: 'a', RECEIVER_TOKEN_FILE: '/x', RECEIVER_PORT: 'http' },
    });
  } catch (err) {
    failed = err as { status: number; stderr: string };
  }
  expect(failed?.status).toBe(2);
  expect(failed?.stderr).toContain('set only one of RECEIVER_TOKEN_FILE and RECEIVER_TOKEN');
  expect(failed?.stderr).toContain(
    'RECEIVER_PORT must be a TCP port (1-65535), or 0 or off for no receiver, got "http"',
  );
});

it('npm run receiver: takes alerts on its own, counts them, and on SIGTERM answers the request in flight, then exits 0', async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const token = secret('receiver-token');
  writeFileSync(join(dir, 'token'), token);
  const taskQueue = uniqueTaskQueue('receiver-alone'); // no worker: the runs wait on the server
  const p = run(join('receiver', 'main.js'), {
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_TASK_QUEUE: taskQueue,
    KUBECONFIG: kubeconfigFile(),
    RECEIVER_HOST: '127.0.0.1',
    RECEIVER_PORT: String(port),
    RECEIVER_TOKEN_FILE: join(dir, 'token'),
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
  });
  await p.waitFor(
    /listening on 127\.0\.0\.1:\d+: POST \/webhooks\/alertmanager .*\(bearer token from RECEIVER_TOKEN_FILE\)/,
  );
  expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

  const post = (vpsienode: string) =>
    fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: notification('team-a', vpsienode),
    });
  const res = await post('ng-a-0a1b2c3d');
  expect(res.status).toBe(200);
  expect((await res.json()) as unknown).toMatchObject({
    status: 'ok',
    alerts: [
      {
        result: 'handled',
        runs: [{ action: 'started', workflowId: 'provisioning-failed/team-a/ng-a-0a1b2c3d' }],
      },
    ],
  });
  const h = client.workflow.getHandle(workflowIdFor({ namespace: 'team-a', name: 'ng-a-0a1b2c3d' }));
  const d = await h.describe();
  expect([d.status.name, d.taskQueue]).toEqual(['RUNNING', taskQueue]);
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  expect(metrics).toContain('vpsie_runbook_runs_started_total{source="alertmanager",result="started"} 1');

  // a request in flight (headers in, body not yet) when SIGTERM comes
  const body = notification('team-a', 'ng-a-4e5f6a7b');
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(
    `POST /webhooks/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`,
  );
  await new Promise<void>((resolve) => {
    const check = () => received.includes('100 Continue') && resolve();
    socket.on('data', check);
    check();
  });
  p.child.kill('SIGTERM');
  await p.waitFor(/SIGTERM: finishing the requests in flight/);
  socket.write(body);
  await closed;
  expect(received).toMatch(/HTTP\/1\.1 200 OK/);
  expect(received).toContain('"action":"started"');
  expect(await p.exited).toBe(0);
  expect(p.output()).toContain('receiver stopped');
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();

  for (const name of ['ng-a-0a1b2c3d', 'ng-a-4e5f6a7b'])
    await client.workflow.getHandle(workflowIdFor({ namespace: 'team-a', name })).terminate('test done');
});

it('npm start: the receiver beside the worker, which runs what the receiver starts', async () => {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const taskQueue = uniqueTaskQueue('receiver-start');
  const p = run('main.js', {
    TEMPORAL_ADDRESS: temporalAddress(),
    TEMPORAL_TASK_QUEUE: taskQueue,
    KUBECONFIG: kubeconfigFile(),
    RECEIVER_HOST: '127.0.0.1',
    RECEIVER_PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    METRICS_PORT: String(metricsPort),
  });
  await p.waitFor(/alert receiver: POST \/webhooks\/alertmanager on 127\.0\.0\.1:\d+/, 90_000);
  await p.waitFor(/worker polling task queue/, 90_000);

  const namespace = `gone-${randomBytes(3).toString('hex')}`;
  const res = await fetch(`http://127.0.0.1:${port}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: notification(namespace, 'ng-b-00000000'),
  });
  expect(res.status).toBe(200);
  // the VPSieNode does not exist: the worker of the same process runs the run to VPSieNodeGone
  const report: DiagnosisReport = await client.workflow
    .getHandle(workflowIdFor({ namespace, name: 'ng-b-00000000' }))
    .result();
  expect(report.outcome).toBe('VPSieNodeGone');

  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
  expect(p.output()).toContain('worker stopped');
  await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
});
