/**
 * Starts the real servers once per test run: a Temporal dev server (in its own temporary SQLite file), etcd and
 * kube-apiserver with the project's CRDs and RBAC, and the workflow bundle every test worker shares. Connection
 * details reach the test files through environment variables, which Jest passes on to its workers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowBundlerOptions } from '../../src/bundle-workflows';
import { findTemporalCli } from '../../src/temporal/cli-binary';
import { startDevServer } from '../../src/temporal/dev-server';
import { SEARCH_ATTRIBUTES } from '../../src/workflows/search-attributes';
import { registerCleanup, runCleanups } from './cleanup';
import { controlPlaneEnv, findControlPlaneBinaries, startControlPlane } from './control-plane';
import { findPrometheusTools } from './prometheus-tools';

function say(line: string): void {
  process.stderr.write(`[test harness] ${line}\n`);
}

/** Runs `scripts/<script>` when `find` cannot find what it looks for (the script skips what is there). */
function installIfMissing(what: string, find: () => unknown, script: string): void {
  try {
    find();
  } catch {
    say(`${what} missing: running scripts/${script}`);
    const run = spawnSync('bash', [join(__dirname, '..', '..', 'scripts', script)], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (run.status !== 0) throw new Error(`scripts/${script} exited with ${run.status}`);
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'vpsie-runbook-test-'));
  process.env.VPSIE_TEST_WORKDIR = workDir;

  const temporal = (async () => {
    const binary = await findTemporalCli({ install: true, log: say });
    if (!binary) throw new Error('no Temporal CLI found and Go is not there to build one');
    const server = await startDevServer({
      binary,
      dbFile: join(workDir, 'temporal.sqlite'),
      searchAttributes: SEARCH_ATTRIBUTES,
    });
    registerCleanup('Temporal dev server', server.stop);
    process.env.TEMPORAL_TEST_ADDRESS = server.address;
  })();

  const kubernetes = (async () => {
    // A fresh machine: install etcd and build kube-apiserver once (the script skips what is there).
    installIfMissing('control plane binaries', findControlPlaneBinaries, 'install-control-plane.sh');
    // The audit log shows which identity every request of the product used (test/e2e/security.test.ts).
    const cp = await startControlPlane({ workDir: join(workDir, 'control-plane'), auditLog: true });
    registerCleanup('control plane', cp.stop);
    Object.assign(process.env, controlPlaneEnv(cp));
  })();

  // promtool, alertmanager and amtool (test/integration/prometheus-rules.test.ts and the Alertmanager tests).
  const prometheusTools = (async () => {
    installIfMissing('Prometheus tools', findPrometheusTools, 'install-prometheus.sh');
  })();

  const bundle = (async () => {
    const { code } = await bundleWorkflowCode({
      // as `npm run build` bundles them (the runbook's pure modules preloaded, shared by every run)
      ...workflowBundlerOptions(),
      logger: {
        log: () => undefined,
        trace: () => undefined,
        debug: () => undefined,
        info: () => undefined,
        warn: say,
        error: say,
      },
    });
    const codePath = join(workDir, 'workflow-bundle.js');
    writeFileSync(codePath, code);
    process.env.VPSIE_TEST_WORKFLOW_BUNDLE = codePath;
  })();

  const results = await Promise.allSettled([temporal, kubernetes, bundle, prometheusTools]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await runCleanups();
    throw failed.reason;
  }
  say(`servers up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
