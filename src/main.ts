import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createActivities } from './activities';
import { configuredChannels } from './channels';
import { describeRoutes } from './runbook/routing';
import { KubernetesClient, loadKubeConfig } from './clients/kubernetes';
import type { VPSieClient } from './clients/vpsie';
import { vpsieClientFromConfig } from './clients/vpsie-config';
import { CONFIG_VARIABLES, type Config } from './config';
import { findTemporalCli } from './temporal/cli-binary';
import { ensureOrphanSchedule, ORPHAN_SCHEDULE_ID } from './temporal/orphan-schedule';
import { startDevServer, type DevServer } from './temporal/dev-server';
import { ensureSearchAttributes } from './temporal/search-attributes';
import { describeTemporalSecurity } from './temporal/connection-options';
import { formatDuration } from './runbook/duration';
import { sdkTelemetryOptions, type MetricsServer } from './metrics/server';
import {
  describeKubeConfig,
  handleArgs,
  loadProcessConfig,
  onStopSignals,
  startConfiguredMetrics,
  startConfiguredReceiver,
  variablesHelp,
} from './process';
import { freePort } from './temporal/free-port';
import { createRunbookWorker } from './worker';
import { prebuiltWorkflowBundle } from './bundle-workflows';
import { tuneWorkerHeap } from './worker-heap';
import { WEBHOOK_PATH, type ReceiverServer } from './receiver';
import { SEARCH_ATTRIBUTES } from './workflows/search-attributes';

const HELP = `vpsie-runbook: the VPSie "Provisioning Failed" runbook as durable Temporal workflows.

Usage: npm start [-- --help]

Runs the worker for the runbook workflows. With TEMPORAL_ADDRESS unset it first starts an embedded Temporal
dev server (with its Web UI) and keeps its state in TEMPORAL_DEV_DB. Stops cleanly on Ctrl-C / SIGTERM.

Configuration (environment variables):
${variablesHelp(CONFIG_VARIABLES)}
`;

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString()} vpsie-runbook: ${line}\n`);
}

async function temporalAddress(config: Config): Promise<{ address: string; devServer: DevServer | null }> {
  if (config.temporal.address) return { address: config.temporal.address, devServer: null };
  const binary = await findTemporalCli({ install: true, log: say });
  say(`starting the embedded Temporal dev server (${binary ?? 'downloaded by the SDK'})`);
  const devServer = await startDevServer({
    ...(binary ? { binary } : {}),
    port: config.devServer.port,
    uiPort: config.devServer.uiPort,
    dbFile: resolve(config.devServer.dbFile),
    namespace: config.temporal.namespace,
    searchAttributes: SEARCH_ATTRIBUTES,
    log: say,
  });
  return { address: devServer.address, devServer };
}

function vpsieClient(config: Config): VPSieClient | null {
  const made = vpsieClientFromConfig(config.vpsie);
  if (made) {
    say(`VPSie API: ${config.vpsie.baseUrl} (${made.auth})`);
    return made.client;
  }
  say(
    'warning: no VPSie credentials (VPSIE_TOKEN(_FILE) or VPSIE_CLIENT_ID/SECRET(_FILE)); VPSie checks will fail',
  );
  return null;
}

export async function main(argv: string[]): Promise<number> {
  const early = handleArgs(argv, HELP);
  if (early !== null) return early;
  const loaded = await loadProcessConfig();
  if (typeof loaded === 'number') return loaded;
  const { config, security } = loaded;
  // The SDK's own metrics: Core's exporter on a loopback port, read into /metrics (src/metrics/server.ts says why).
  const sdkMetricsAddress = config.metrics ? `127.0.0.1:${await freePort()}` : null;
  // Signals are ours to handle, so that one arriving during start-up stops it too: the first stops cleanly
  // (the worker finishes its tasks, then the dev server stops), a second exits at once.
  Runtime.install({
    logger: new DefaultLogger(config.logLevel.toUpperCase() as 'INFO'),
    shutdownSignals: [],
    ...(sdkMetricsAddress ? { telemetryOptions: sdkTelemetryOptions(sdkMetricsAddress) } : {}),
  });
  let metrics: MetricsServer | undefined;
  let metricsConnection: Connection | undefined;
  let stopping = false;
  let worker: Worker | undefined;
  let receiver: ReceiverServer | undefined;
  let receiverConnection: Connection | undefined;
  onStopSignals(say, (signal) => {
    stopping = true;
    say(`${signal}: stopping (again to exit at once)`);
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    void receiver?.close(); // takes no more alerts; the ones in flight are answered
  });

  const { address, devServer } = await temporalAddress(config);
  try {
    if (stopping) return 0;
    const client = await Connection.connect({ address, ...security });
    try {
      const added = await ensureSearchAttributes(client, config.temporal.namespace);
      if (added.length) say(`registered search attributes: ${added.join(', ')}`);
    } catch (err) {
      say(`warning: could not check search attributes (${(err as Error).message}); runs still work`);
    }
    try {
      if (config.orphanSweepIntervalMs !== null) {
        const done = await ensureOrphanSchedule(
          new Client({ connection: client, namespace: config.temporal.namespace }),
          { taskQueue: config.temporal.taskQueue, intervalMs: config.orphanSweepIntervalMs },
        );
        say(
          `orphaned-VM sweep: Schedule ${ORPHAN_SCHEDULE_ID} ${done} (every ${formatDuration(config.orphanSweepIntervalMs)}, overlap SKIP)`,
        );
      }
    } finally {
      await client.close();
    }

    if (config.metrics) {
      metricsConnection = await Connection.connect({ address, ...security });
      metrics = await startConfiguredMetrics(
        config.metrics,
        {
          sdkMetricsAddress,
          approvals: {
            client: new Client({ connection: metricsConnection, namespace: config.temporal.namespace }),
            taskQueue: config.temporal.taskQueue,
          },
        },
        say,
      );
      say(`metrics: ${metrics.url} (set METRICS_PORT=off for none)`);
    }

    const kubeConfig = loadKubeConfig(config.kubernetes);
    say(describeKubeConfig(kubeConfig, 'runbook activities'));
    const connection = await NativeConnection.connect({ address, ...security });
    const heapFlags = tuneWorkerHeap();
    if (heapFlags.length) say(`V8 heap: ${heapFlags.join(' ')} (src/worker-heap.ts says why)`);
    const workflowBundle = prebuiltWorkflowBundle();
    say(
      workflowBundle
        ? `workflow code: ${workflowBundle.codePath} (built by npm run build)`
        : 'workflow code: bundling src/workflows now (npm run build writes a bundle the worker loads instead)',
    );
    worker = await createRunbookWorker({
      ...(workflowBundle ? { workflowBundle } : {}),
      maxCachedWorkflows: config.maxCachedWorkflows,
      connection,
      namespace: config.temporal.namespace,
      taskQueue: config.temporal.taskQueue,
      activities: createActivities({
        kubernetes: new KubernetesClient(kubeConfig),
        vpsie: vpsieClient(config),
        controller: config.controller,
        channels: config.channels,
      }),
    });
    const channels = configuredChannels(config.channels);
    say(
      channels.length
        ? `escalation channels: ${channels.join(', ')}; routes: ${describeRoutes(config.channels.routes)}; approvals: ${config.channels.approvalChannels.join(', ') || 'none'}`
        : 'escalation channels: none configured (escalations are Kubernetes Events only)',
    );
    if (config.receiver && !stopping) {
      const rc = config.receiver;
      receiverConnection = Connection.lazy({ address, ...security });
      receiver = await startConfiguredReceiver(
        rc,
        {
          connection: receiverConnection,
          namespace: config.temporal.namespace,
          taskQueue: config.temporal.taskQueue,
          kubeConfig,
        },
        say,
      );
      say(
        `alert receiver: POST ${WEBHOOK_PATH} on ${rc.host}:${receiver.port}${rc.token ? ` (bearer token from ${rc.token.variable})` : ''} (RECEIVER_PORT=off for none)`,
      );
    }
    say(
      `worker polling task queue "${config.temporal.taskQueue}" on ${address} (${describeTemporalSecurity(config.temporalSecurity)}; Ctrl-C to stop)`,
    );
    const running = worker.run();
    if (stopping) worker.shutdown();
    await running;
    await connection.close();
    say('worker stopped');
  } finally {
    await receiver?.close();
    await receiverConnection?.close();
    await metrics?.close();
    await metricsConnection?.close();
    if (devServer) {
      await devServer.stop();
      say('embedded Temporal dev server stopped');
    }
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`vpsie-runbook: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
