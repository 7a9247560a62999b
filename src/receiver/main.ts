/**
 * `npm run receiver` (`node dist/receiver/main.js`): the Alertmanager webhook receiver on its own, for a
 * deployment where it runs apart from the worker (its own container). `npm start` runs the same receiver beside
 * the worker.
 */
import { Connection } from '@temporalio/client';
import { loadKubeConfig } from '../clients/kubernetes';
import { CONFIG_VARIABLES, ConfigError, type ReceiverConfig } from '../config';
import type { MetricsServer } from '../metrics/server';
import {
  describeKubeConfig,
  handleArgs,
  loadProcessConfig,
  onStopSignals,
  startConfiguredMetrics,
  startConfiguredReceiver,
  variablesHelp,
} from '../process';
import { describeTemporalSecurity } from '../temporal/connection-options';
import { WEBHOOK_PATH, type ReceiverServer } from './index';

const RECEIVER_VARIABLES = new Set([
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_DEV_PORT',
  'KUBECONFIG',
  'KUBE_CONTEXT',
  'METRICS_PORT',
  'METRICS_HOST',
]);
const variables = CONFIG_VARIABLES.filter(
  (v) =>
    RECEIVER_VARIABLES.has(v.name) ||
    v.name.startsWith('RECEIVER_') ||
    v.name.startsWith('TEMPORAL_TLS') ||
    v.name.startsWith('TEMPORAL_API_KEY'),
);

const HELP = `vpsie-runbook receiver: Alertmanager's webhook in, "Provisioning Failed" runbook runs out.

Usage: npm run receiver [-- --help]      (node dist/receiver/main.js)

Serves POST ${WEBHOOK_PATH} (Alertmanager webhook payload version 4), GET /healthz and GET /readyz
(ready when Temporal answers). Starts or joins one run per VPSieNode (workflow provisioning-failed/<ns>/<name>)
on TEMPORAL_TASK_QUEUE, where the worker (npm start) runs it. With TEMPORAL_ADDRESS unset it uses the embedded
dev server of \`npm start\` on 127.0.0.1:TEMPORAL_DEV_PORT. Stops on Ctrl-C / SIGTERM after finishing the requests
in flight.

Configuration (environment variables):
${variablesHelp(variables)}
`;

function say(line: string): void {
  process.stdout.write(`${new Date().toISOString()} vpsie-runbook receiver: ${line}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const early = handleArgs(argv, HELP);
  if (early !== null) return early;
  const loaded = await loadProcessConfig((c) => {
    if (!c.receiver) throw new ConfigError(['RECEIVER_PORT is 0 or off: the receiver needs a port']);
  }, 'receiver');
  if (typeof loaded === 'number') return loaded;
  const { config, security } = loaded;
  const rc = config.receiver as ReceiverConfig;
  const address = config.temporal.address ?? `127.0.0.1:${config.devServer.port}`;

  let receiver: ReceiverServer | undefined;
  let metrics: MetricsServer | undefined;
  let stopping = false;
  let stopped!: () => void;
  const stop = new Promise<void>((resolve) => (stopped = resolve));
  onStopSignals(say, (signal) => {
    stopping = true;
    say(`${signal}: finishing the requests in flight, then stopping (again to exit at once)`);
    stopped();
  });

  // Lazy: the receiver starts, and says it is not ready, while Temporal is not there yet.
  const connection = Connection.lazy({ address, ...security });
  try {
    const kubeConfig = loadKubeConfig(config.kubernetes);
    say(describeKubeConfig(kubeConfig, 'NodeGroup alerts'));
    receiver = await startConfiguredReceiver(
      rc,
      {
        connection,
        namespace: config.temporal.namespace,
        taskQueue: config.temporal.taskQueue,
        kubeConfig,
      },
      say,
    );
    if (config.metrics) {
      metrics = await startConfiguredMetrics(
        config.metrics,
        { sdkMetricsAddress: null, approvals: null },
        say,
      );
      say(`metrics: ${metrics.url}`);
    }
    say(
      `listening on ${rc.host}:${receiver.port}: POST ${WEBHOOK_PATH} starts runs on task queue "${config.temporal.taskQueue}" at ${address} (${describeTemporalSecurity(config.temporalSecurity)})${rc.token ? ` (bearer token from ${rc.token.variable})` : ' (no token asked for)'}`,
    );
    if (!stopping) await stop;
  } finally {
    await receiver?.close();
    await metrics?.close();
    await connection.close();
    say('receiver stopped');
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`vpsie-runbook receiver: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
