import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { workflowIdFor, type DiagnosisReport, type RunbookInput } from '../../src/runbook';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { freePort } from '../../src/temporal/free-port';
import { startRunbook } from '../../src/temporal/start-runbook';
import { controlPlaneFromEnv, kubeconfigYaml } from '../support/control-plane';
import {
  ClusterCleanup,
  createTestNamespace,
  joinsAndBecomesReady,
  VPSieNodeFixtures,
} from '../support/kube';

/**
 * What `npm start` runs, as a user runs it: the compiled entry point with no Temporal configuration. It must
 * bring up an embedded dev server whose UI answers, run the runbook against the cluster in KUBECONFIG, and stop
 * cleanly on SIGTERM.
 */
const root = join(__dirname, '..', '..');
const outDir = join(root, '.cache', 'test-dist');
let dir: string;
let child: ChildProcess | undefined;
let output = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-start-'));
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir],
    {
      cwd: root,
    },
  );
});
const cleanup = new ClusterCleanup();
afterAll(async () => {
  child?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  await cleanup.deleteAll();
});

function waitFor(pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)),
      timeoutMs,
    );
    const check = () => {
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child?.stdout?.on('data', check);
    child?.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}; output:\n${output}`));
    });
    check();
  });
}

it('starts an embedded Temporal with its UI, runs the runbook, and stops cleanly on SIGTERM', async () => {
  const cp = controlPlaneFromEnv();
  if (!cp) throw new Error('no control plane: run through jest');
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }));
  const [port, uiPort] = [await freePort(), await freePort()];
  const temporalCli = await findTemporalCli();

  child = spawn(process.execPath, [join(outDir, 'main.js')], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBECONFIG: kubeconfig,
      TEMPORAL_DEV_PORT: String(port),
      TEMPORAL_DEV_UI_PORT: String(uiPort),
      // never the default ports: another test run on this machine may hold them
      METRICS_PORT: String(await freePort()),
      RECEIVER_PORT: String(await freePort()),
      TEMPORAL_DEV_DB: join(dir, 'state', 'temporal.sqlite'),
      ...(temporalCli ? { TEMPORAL_CLI: temporalCli } : {}),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(/worker polling task queue "vpsie-runbook"/, 90_000);
  expect(output).toContain(`Web UI at http://127.0.0.1:${uiPort}`);
  expect(output).toContain(`Kubernetes API: ${cp.server}`);

  const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
  expect(ui.status).toBe(200);
  expect(await ui.text()).toMatch(/<html/i);

  const namespace = await createTestNamespace('start');
  const fixtures = new VPSieNodeFixtures();
  await fixtures.create(
    { namespace, name: 'ng-b-ready' },
    { nodeGroupName: 'ng-b' },
    { phase: 'Provisioned' },
  );
  // The kubelet registered a Ready Node and the controller marked the VPSieNode Ready: the alert was stale.
  await joinsAndBecomesReady(fixtures, cleanup, { namespace, name: 'ng-b-ready' });
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  try {
    const input: RunbookInput = { namespace, name: 'ng-b-ready' };
    // As an alert receiver starts it: the product's helper, on the worker's default task queue.
    const { workflowId, handle } = await startRunbook(new Client({ connection }), input);
    expect(workflowId).toBe(workflowIdFor(input));
    const report: DiagnosisReport = await handle.result();
    expect(report.outcome).toBe('Recovered');
  } finally {
    await connection.close();
  }

  const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  expect(await exited).toBe(0);
  expect(output).toContain('worker stopped');
  expect(output).toContain('embedded Temporal dev server stopped');
  // Nothing listens any more: the dev server went with the worker.
  await expect(fetch(`http://127.0.0.1:${uiPort}/`)).rejects.toThrow();
  child = undefined;
}, 150_000);

it('prints help and refuses unknown arguments', () => {
  const help = execFileSync(process.execPath, [join(outDir, 'main.js'), '--help'], { encoding: 'utf8' });
  expect(help).toMatch(/Usage: npm start/);
  expect(help).toMatch(/TEMPORAL_ADDRESS/);
  let stderr = '';
  try {
    execFileSync(process.execPath, [join(outDir, 'main.js'), '--frobnicate'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (err) {
    stderr = String((err as { stderr: string }).stderr);
    expect((err as { status: number }).status).toBe(2);
  }
  expect(stderr).toMatch(/unknown argument\(s\): --frobnicate/);
});

it('names a bad configuration value and exits 2 before connecting anywhere', () => {
  let result: { status: number; stderr: string } | undefined;
  try {
    execFileSync(process.execPath, [join(outDir, 'main.js')], {
      env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: 'no-port-here' },
      stdio: 'pipe',
      encoding: 'utf8',
    });
  } catch (err) {
    result = err as { status: number; stderr: string };
  }
  expect(result?.status).toBe(2);
  expect(result?.stderr).toMatch(/TEMPORAL_ADDRESS must be host:port.*"no-port-here"/);
});
