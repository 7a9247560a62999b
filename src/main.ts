import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createActivities } from './activities';
import { configuredChannels } from './channels';
import { describeRoutes } from './runbook/routing';
import { KubernetesClient, loadKubeConfig } from './clients/kubernetes';
import { VPSieClient } from './clients/vpsie';
import { CONFIG_VARIABLES, ConfigError, loadConfig, type Config } from './config';
import { findTemporalCli } from './temporal/cli-binary';
import { ensureOrphanSchedule, ORPHAN_SCHEDULE_ID } from './temporal/orphan-schedule';
import { startDevServer, type DevServer } from './temporal/dev-server';
import { ensureSearchAttributes } from './temporal/search-attributes';
import { formatDuration } from './runbook/duration';
import { createRunbookWorker } from './worker';
import { SEARCH_ATTRIBUTES } from './workflows/search-attributes';

/** The longest variable name sets the column, so descriptions line up. */
const NAME_WIDTH = Math.max(...CONFIG_VARIABLES.map((v) => v.name.length));

const HELP = `vpsie-runbook: the VPSie "Provisioning Failed" runbook as durable Temporal workflows.

Usage: npm start [-- --help]

Runs the worker for the runbook workflows. With TEMPORAL_ADDRESS unset it first starts an embedded Temporal
dev server (with its Web UI) and keeps its state in TEMPORAL_DEV_DB. Stops cleanly on Ctrl-C / SIGTERM.

Configuration (environment variables):
${CONFIG_VARIABLES.map((v) => `  ${v.name.padEnd(NAME_WIDTH)} ${v.description} [default: ${v.default}]`).join('\n')}
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
  const { baseUrl, tokenFile, token, clientId, clientIdFile, clientSecret, clientSecretFile } = config.vpsie;
  // A file is read at every use, so a rotated secret needs no restart.
  const value = (file?: string, text?: string) =>
    file ? async () => (await readFile(file, 'utf8')).trim() : async () => text ?? '';
  if (tokenFile || token) {
    say(`VPSie API: ${baseUrl} (token)`);
    return new VPSieClient({ baseUrl, token: tokenFile ? value(tokenFile) : (token as string) });
  }
  if ((clientIdFile || clientId) && (clientSecretFile || clientSecret)) {
    say(`VPSie API: ${baseUrl} (client credentials)`);
    const id = value(clientIdFile, clientId);
    const secret = value(clientSecretFile, clientSecret);
    return new VPSieClient({
      baseUrl,
      credentials: async () => ({ clientId: await id(), clientSecret: await secret() }),
    });
  }
  say(
    'warning: no VPSie credentials (VPSIE_TOKEN(_FILE) or VPSIE_CLIENT_ID/SECRET(_FILE)); VPSie checks will fail',
  );
  return null;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--');
  if (unknown.length) {
    process.stderr.write(`unknown argument(s): ${unknown.join(' ')}\n\n${HELP}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  // Signals are ours to handle, so that one arriving during start-up stops it too: the first stops cleanly
  // (the worker finishes its tasks, then the dev server stops), a second exits at once.
  Runtime.install({
    logger: new DefaultLogger(config.logLevel.toUpperCase() as 'INFO'),
    shutdownSignals: [],
  });
  let stopping = false;
  let worker: Worker | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      say(`${signal} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    say(`${signal}: stopping (again to exit at once)`);
    if (worker?.getState() === 'RUNNING') worker.shutdown();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const { address, devServer } = await temporalAddress(config);
  try {
    if (stopping) return 0;
    const client = await Connection.connect({ address });
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

    const kubeConfig = loadKubeConfig(config.kubernetes);
    const cluster = kubeConfig.getCurrentCluster();
    // With no kubeconfig anywhere the client falls back to an unauthenticated localhost:8080.
    const unconfigured =
      !cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080');
    say(
      unconfigured
        ? 'warning: no kubeconfig found (set KUBECONFIG or run in-cluster); runbook activities will fail until then'
        : `Kubernetes API: ${cluster.server}`,
    );
    const connection = await NativeConnection.connect({ address });
    worker = await createRunbookWorker({
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
    say(`worker polling task queue "${config.temporal.taskQueue}" on ${address} (Ctrl-C to stop)`);
    const running = worker.run();
    if (stopping) worker.shutdown();
    await running;
    await connection.close();
    say('worker stopped');
  } finally {
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
