/**
 * `/metrics` of the worker process as `npm start` runs it: the entry point compiled (by swc, as Jest compiles the
 * other tests: seconds instead of tsc's half minute on a loaded machine) and run as a child process against the
 * test Temporal server, configured only through its environment (METRICS_PORT, METRICS_HOST). It serves the
 * SDK's metrics and the project's on the configured port, refuses a port already taken with a message naming the
 * variables, and closes the server when it stops on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { transformFileSync } from '@swc/core';
import { freePort } from '../../src/temporal/free-port';
import { controlPlaneFromEnv, kubeconfigYaml } from '../support/control-plane';
import { temporalAddress, uniqueTaskQueue } from '../support/temporal';

jest.setTimeout(120_000);

const src = join(__dirname, '..', '..', 'src');
let dir = '';
let dist = '';
let kubeconfig = '';
const children: ChildProcess[] = [];

/** Every file of src/, compiled to CommonJS in dist/ with the same layout (main.js, workflows/, ...). */
function compile(from: string): void {
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const path = join(from, entry.name);
    if (entry.isDirectory()) compile(path);
    else if (entry.name.endsWith('.ts')) {
      const out = join(dist, relative(src, path)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(out), { recursive: true });
      const { code } = transformFileSync(path, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
      });
      writeFileSync(out, code);
    }
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-metrics-start-'));
  // beside node_modules, so that the compiled code finds the project's packages
  const cache = join(__dirname, '..', '..', '.cache');
  mkdirSync(cache, { recursive: true });
  dist = mkdtempSync(join(cache, 'metrics-start-'));
  compile(src);
  const cp = controlPlaneFromEnv();
  if (!cp) throw new Error('no control plane: run through jest');
  kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }));
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  if (dist) rmSync(dist, { recursive: true, force: true });
});

/** The worker process, as `npm start` runs it, with `env` on top of the test server's address. */
function start(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, [join(dist, 'main.js')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: kubeconfig,
      TEMPORAL_ADDRESS: temporalAddress(),
      TEMPORAL_TASK_QUEUE: uniqueTaskQueue('metrics-start'),
      RECEIVER_PORT: 'off',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  return { child, output: () => output };
}

function waitFor(
  run: ReturnType<typeof start>,
  pattern: RegExp,
  timeoutMs = 90_000,
): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output:\n${run.output()}`)),
      timeoutMs,
    );
    const check = () => {
      const m = pattern.exec(run.output());
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    run.child.stdout?.on('data', check);
    run.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}; output:\n${run.output()}`));
    });
    check();
  });
}

test("serves the SDK's and the project's metrics on METRICS_HOST:METRICS_PORT, and closes it on SIGTERM", async () => {
  const port = await freePort();
  const taskQueue = uniqueTaskQueue('metrics-start');
  const run = start({
    METRICS_PORT: String(port),
    METRICS_HOST: '127.0.0.1',
    TEMPORAL_TASK_QUEUE: taskQueue,
  });
  const url = `http://127.0.0.1:${port}/metrics`;
  await waitFor(run, new RegExp(`metrics: ${url.replace(/[.]/g, '\\.')} `));
  await waitFor(run, /worker polling task queue/);

  // Core starts counting once the worker runs; the page is scraped until it has
  let text = '';
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 30_000;
    const poll = async () => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      text = await res.text();
      if (
        text.includes(
          `temporal_worker_start{namespace="default",service_name="temporal-core-sdk",task_queue="${taskQueue}"} 1`,
        )
      )
        return resolve();
      if (Date.now() > deadline)
        return reject(new Error(`no temporal_worker_start for ${taskQueue}:\n${text}`));
      setTimeout(() => void poll().catch(reject), 200);
    };
    void poll().catch(reject);
  });
  expect(text).toContain('vpsie_runbook_approvals_pending{workflow_type="provisioningFailedRunbook"} 0');
  expect(text).toContain('vpsie_runbook_metrics_source_up{source="temporal_sdk"} 1');
  expect(text).toContain('vpsie_runbook_metrics_source_up{source="temporal_visibility"} 1');

  const exited = once(run.child, 'exit');
  run.child.kill('SIGTERM');
  expect((await exited)[0]).toBe(0);
  expect(run.output()).toContain('worker stopped');
  // nothing listens any more
  await expect(fetch(url)).rejects.toThrow();
});

test('a METRICS_PORT already taken stops the start with a message naming it', async () => {
  const taken = net.createServer();
  taken.listen(0, '127.0.0.1');
  await once(taken, 'listening');
  const port = (taken.address() as net.AddressInfo).port;
  try {
    const run = start({ METRICS_PORT: String(port), METRICS_HOST: '127.0.0.1' });
    const [code] = (await once(run.child, 'exit')) as [number | null];
    expect(code).toBe(1);
    expect(run.output()).toContain(`METRICS_HOST/METRICS_PORT 127.0.0.1:${port}: listen EADDRINUSE`);
  } finally {
    taken.close();
  }
});
