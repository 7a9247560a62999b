/**
 * Issue 9 item 6: `npm run demo` as a person runs it. The command package.json's `demo` script runs after its
 * build step (the build is `npm run build`, which the CLI tests cover), as a child process with its own servers
 * on free ports and its own temporary directory, apart from the servers of Jest's global setup. The test reads
 * only what the demo prints (the Temporal address, the UI, the kubeconfig, the commands) and what a person would
 * then see: a run for every cause of the runbook on the sandbox's Temporal within a minute, with the alert's
 * summary and the cause named; a printed approve command accepted and acted on; and a Ctrl-C that stops
 * everything, etcd, kube-apiserver and the Temporal dev server included.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import type { DiagnosisReport } from '../../src/runbook';
import { freePort } from '../../src/temporal/free-port';
import { statusQuery } from '../../src/workflows/messages';
import { RunbookCause } from '../../src/workflows/search-attributes';
import { DEMO_CAUSES, SCENARIOS, type DemoCause } from '../../demo/causes';
import { builtCli } from '../support/cli';

jest.setTimeout(240_000);

const ROOT = join(__dirname, '..', '..');

/** What `npm run demo` runs after building: `node <flags> demo/main.ts`, from package.json itself. */
function demoCommand(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const [build, run] = pkg.scripts.demo.split(' && ');
  expect(build).toBe('npm run build --silent');
  const [node, ...args] = run.split(' ');
  expect(node).toBe('node');
  return args;
}

/** The environment a person's shell gives it: where the servers are installed, nothing of Jest's. */
function demoEnv(): NodeJS.ProcessEnv {
  const keep = [
    'PATH',
    'HOME',
    'TEMPORAL_CLI',
    'ETCD_BIN',
    'KUBE_APISERVER_BIN',
    'VPSIE_RUNBOOK_CACHE',
    'GOPATH',
  ];
  return Object.fromEntries(keep.filter((k) => process.env[k]).map((k) => [k, process.env[k]]));
}

interface Demo {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

const started: ChildProcess[] = [];
/** The sandbox directories the demos printed (a demo killed by afterAll cannot remove its own). */
const dirs: string[] = [];

/** Starts the demo in its own process group (as a terminal's job), so its processes can be told apart. */
function startDemo(args: string[]): Demo {
  const child = spawn(process.execPath, [...demoCommand(), ...args], {
    cwd: ROOT,
    env: demoEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  started.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    exited,
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${pattern}; output:\n${output}`)),
          timeoutMs,
        );
        const check = (): boolean => {
          const m = pattern.exec(output);
          if (!m) return false;
          clearTimeout(timer);
          child.stdout?.off('data', check);
          resolve(m);
          return true;
        };
        child.stdout?.on('data', check);
        void exited.then((code) => {
          if (!check()) {
            clearTimeout(timer);
            reject(new Error(`the demo exited with ${code} before ${pattern}; output:\n${output}`));
          }
        });
        check();
      }),
  };
}

/** The processes of a process group (the demo and everything it started), as `pid command`. */
async function processGroup(pgid: number): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-e', '-o', 'pid=,pgid=,args=']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 3 && Number(f[1]) === pgid)
    .map((f) => `${f[0]} ${f.slice(2).join(' ')}`);
}

afterAll(async () => {
  // a failed test must not leave a sandbox running
  for (const c of started) {
    try {
      if (c.pid && c.exitCode === null && c.signalCode === null) {
        const gone = new Promise((r) => c.once('exit', r));
        process.kill(-c.pid, 'SIGKILL');
        await gone;
      }
    } catch {
      // gone already
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const expectedSummary = (cause: DemoCause, namespace: string, name: string): string => {
  const s = SCENARIOS[cause];
  return cause === 'Unknown'
    ? `VPSieNode ${namespace}/${name}, NodeGroup unknown, alert ${s.alertName}`
    : `VPSieNode ${namespace}/${name}, NodeGroup ${s.slug}-1, alert ${s.alertName}`;
};

test('npm run demo: runs for every cause within a minute, a printed approve command accepted, Ctrl-C stops every process', async () => {
  const [temporalPort, uiPort, receiverPort] = [await freePort(), await freePort(), await freePort()];
  const cli = `${process.execPath} ${await builtCli()}`;
  const demo = startDemo([
    '--temporal-port',
    String(temporalPort),
    '--ui-port',
    String(uiPort),
    '--receiver-port',
    String(receiverPort),
    '--cli',
    cli,
    '--approver',
    'tester',
  ]);
  const pgid = demo.child.pid!;
  const [, dir] = await demo.waitFor(/starting a sandbox in (\S+) /, 30_000);
  dirs.push(dir);
  const [, ui] = await demo.waitFor(/^Temporal Web UI: (\S+)$/m, 120_000);
  const shownAt = Date.now();
  const out = demo.output();
  const address = /^Temporal: +(\S+) /m.exec(out)?.[1];
  expect(address).toBe(`127.0.0.1:${temporalPort}`);
  expect(ui).toBe(
    `http://127.0.0.1:${uiPort}/namespaces/default/workflows?query=${encodeURIComponent('WorkflowType = "provisioningFailedRunbook"')}`,
  );
  expect(out).toContain(`Alert receiver:  POST http://127.0.0.1:${receiverPort}/webhooks/alertmanager`);
  // every piece said it was up, and how long it took
  for (const piece of [
    'VPSie API (simulated)',
    'Temporal dev server + Web UI',
    'etcd + kube-apiserver',
    'autoscaler (simulated)',
    'worker',
    'alert receiver',
  ])
    expect(out).toMatch(new RegExp(`✓ ${piece.replace(/[()+]/g, '\\$&')} +.*\\(\\d+\\.\\d s\\)$`, 'm'));
  // the Web UI answers where it was printed
  const page = await fetch(new URL(ui).origin);
  expect(page.status).toBe(200);

  // the kubeconfig it wrote reaches the sandbox's apiserver
  const kubeconfig = /^Kubeconfig: +(\S+) /m.exec(out)?.[1];
  expect(kubeconfig).toBe(join(dir, 'kubeconfig'));
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig!);
  const vns = (await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({
    group: 'autoscaler.vpsie.com',
    version: 'v1alpha1',
    plural: 'vpsienodes',
  })) as { items: { metadata: { namespace: string; name: string } }[] };

  const connection = await Connection.connect({ address: address! });
  try {
    const client = new Client({ connection });
    // One run per cause, started by its alert (the static summary says which), each naming the staged cause.
    const runs = new Map<DemoCause, { workflowId: string; vpsieNode: string }>();
    const diagnosed = new Map<DemoCause, string>();
    for (;;) {
      for await (const w of client.workflow.list({ query: 'WorkflowType = "provisioningFailedRunbook"' })) {
        const [, namespace, name] = w.workflowId.split('/');
        const cause = DEMO_CAUSES.find((c) => name.startsWith(`${SCENARIOS[c].slug}-1`));
        expect(cause).toBeDefined();
        if (!runs.has(cause!)) {
          const d = await client.workflow.getHandle(w.workflowId).describe();
          expect(await d.staticSummary()).toBe(expectedSummary(cause!, namespace, name));
          runs.set(cause!, { workflowId: w.workflowId, vpsieNode: `${namespace}/${name}` });
        }
        const named = w.typedSearchAttributes.get(RunbookCause);
        if (named) diagnosed.set(cause!, named);
      }
      if (diagnosed.size === DEMO_CAUSES.length) break;
      if (Date.now() - shownAt > 60_000)
        throw new Error(
          `after a minute: runs ${JSON.stringify([...runs])}, causes ${JSON.stringify([...diagnosed])}\n${demo.output()}`,
        );
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(Object.fromEntries(diagnosed)).toEqual(Object.fromEntries(DEMO_CAUSES.map((c) => [c, c])));
    expect([...runs.keys()].sort()).toEqual([...DEMO_CAUSES].sort());
    // the VPSieNodes the runs are about are in the cluster the kubeconfig names
    const names = vns.items.map((x) => `${x.metadata.namespace}/${x.metadata.name}`);
    for (const { vpsieNode } of runs.values()) expect(names).toContain(vpsieNode);

    // The approve command the demo printed for the ProvisioningTimeout run, run as printed.
    const timeout = runs.get('ProvisioningTimeout')!;
    const [, command] = await demo.waitFor(
      new RegExp(
        `^ {4}approve: {2}(.* approve ${timeout.vpsieNode} --step delete-vpsienode --as tester .*)$`,
        'm',
      ),
      60_000,
    );
    expect(command).toBe(
      `${cli} approve ${timeout.vpsieNode} --step delete-vpsienode --as tester --address ${address}`,
    );
    const approved = await promisify(execFile)('sh', ['-c', command], { cwd: ROOT, env: demoEnv() });
    expect(approved.stdout).toMatch(
      new RegExp(
        `^approved delete-vpsienode of ${timeout.workflowId.replace(/\//g, '\\/')} as tester at \\S+\\n$`,
      ),
    );
    const handle = client.workflow.getHandle(timeout.workflowId);
    expect((await handle.query(statusQuery)).decisions).toEqual([
      expect.objectContaining({
        stepId: 'delete-vpsienode',
        decision: 'approve',
        approver: 'tester',
        accepted: true,
      }),
    ]);
    // the worker acted on it: the VPSieNode was deleted and recreated, and the demo says so
    const report = (await handle.result()) as DiagnosisReport;
    expect(report.outcome).toBe('Remediated');
    await demo.waitFor(new RegExp(`^\\S+ ${timeout.vpsieNode}: ended Remediated$`, 'm'), 30_000);
  } finally {
    await connection.close();
  }

  // Ctrl-C: the demo stops its servers itself (the signal goes to it alone) and exits 0, leaving nothing.
  const before = await processGroup(pgid);
  const programs = before.map((p) => p.split(' ')[1].split('/').pop());
  // kube-apiserver is installed with its version in its name (kube-apiserver-v1.34.4)
  for (const name of [/^temporal$/, /^etcd$/, /^kube-apiserver(-v\S+)?$/])
    expect(programs.some((p) => name.test(p ?? ''))).toBe(true);
  demo.child.kill('SIGINT');
  expect(await demo.exited).toBe(0);
  expect(demo.output()).toMatch(
    /SIGINT: stopping the sandbox[\s\S]*stopped etcd \+ kube-apiserver[\s\S]*sandbox stopped\n$/,
  );
  expect(await processGroup(pgid)).toEqual([]);
  await expect(fetch(new URL(ui).origin)).rejects.toThrow();
  expect(existsSync(dir)).toBe(false);
});

test('--help lists the causes and flags; a bad flag or a taken port is named, nothing started', async () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [...demoCommand(), ...args],
        { cwd: ROOT, env: demoEnv() },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
      ),
    );
  const help = await run(['--help']);
  expect(help.code).toBe(0);
  expect(help.stdout).toMatch(/^Usage: npm run demo -- \[options\]/);
  for (const c of DEMO_CAUSES) expect(help.stdout).toContain(`  ${c} `);
  for (const flag of ['--cause', '--count', '--temporal-port', '--ui-port', '--receiver-port', '--cli'])
    expect(help.stdout).toContain(flag);

  const count = await run(['--count', '11']);
  expect(count.code).toBe(2);
  expect(count.stderr).toContain('--count must be a whole number from 1 to 10, got "11"');
  const cause = await run(['--cause', 'Gremlins']);
  expect(cause.code).toBe(2);
  expect(cause.stderr).toContain('--cause must be one of VMCreationFailed, ');

  // a port given with a flag that something holds: refused before any server starts
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const taken = await run(['--receiver-port', String(port), '--temporal-port', '0', '--ui-port', '0']);
    expect(taken.code).toBe(1);
    expect(taken.stdout).toContain(`--receiver-port ${port}: something already listens on that port`);
    expect(taken.stdout).not.toContain('✓ Temporal dev server');
    expect(taken.stdout).toContain('sandbox stopped after an error');
  } finally {
    holder.close();
  }
});
