/**
 * What the long-running processes (`npm start`, `npm run receiver`) share around their own work: arguments and
 * `--help`, the configuration checked before anything connects, Ctrl-C handling, the kubeconfig check, and the
 * receiver started from its configuration.
 */
import { readFile } from 'node:fs/promises';
import type { Connection } from '@temporalio/client';
import type { KubeConfig } from '@kubernetes/client-node';
import { KubernetesClient } from './clients/kubernetes';
import { ConfigError, loadConfig, type Config, type ReceiverConfig } from './config';
import { startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics/server';
import { startReceiver, type ReceiverServer } from './receiver';
import { temporalConnectionSecurity, type TemporalConnectionSecurity } from './temporal/connection-options';

/** The variables' lines of a `--help`, descriptions in one column. */
export function variablesHelp(
  variables: ReadonlyArray<{ name: string; default: string; description: string }>,
): string {
  const width = Math.max(...variables.map((v) => v.name.length));
  return variables
    .map((v) => `  ${v.name.padEnd(width)} ${v.description} [default: ${v.default}]`)
    .join('\n');
}

/** `--help` prints `help` (exit 0); anything else but `--` is refused (exit 2); null: go on. */
export function handleArgs(argv: string[], help: string): number | null {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help);
    return 0;
  }
  const unknown = argv.filter((a) => a !== '--');
  if (!unknown.length) return null;
  process.stderr.write(`unknown argument(s): ${unknown.join(' ')}\n\n${help}`);
  return 2;
}

/**
 * The secret files (`*_FILE`) a process reads while it runs: the worker's VPSie credentials and channels (and the
 * receiver's token when it runs one), the receiver's token. They are read again at every use (a rotation needs no
 * restart), but one that cannot be read at start-up is a wrong mount: refused now, naming the variable and the
 * file, never the content, rather than found at the first alert or escalation.
 */
export function secretFilesOf(config: Config, role: 'worker' | 'receiver'): [string, string][] {
  const files: [string, string | undefined][] = [['RECEIVER_TOKEN_FILE', config.receiver?.token?.file]];
  if (role === 'worker') {
    const { tokenFile, clientIdFile, clientSecretFile } = config.vpsie;
    const { webhook, slack, pagerduty } = config.channels;
    files.push(
      ['VPSIE_TOKEN_FILE', tokenFile],
      ['VPSIE_CLIENT_ID_FILE', clientIdFile],
      ['VPSIE_CLIENT_SECRET_FILE', clientSecretFile],
      ...[webhook, slack, pagerduty?.routingKey].map((s): [string, string | undefined] => [
        s?.variable ?? '',
        s?.file,
      ]),
    );
  }
  return files.filter((f): f is [string, string] => f[1] !== undefined);
}

async function secretFileProblems(files: [string, string][]): Promise<string[]> {
  const problems: string[] = [];
  for (const [variable, file] of files) {
    try {
      if ((await readFile(file, 'utf8')).trim() === '') problems.push(`${variable}: ${file} is empty`);
    } catch (err) {
      problems.push(
        `${variable}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      );
    }
  }
  return problems;
}

/**
 * The configuration and the TLS files, API key and secret files it names, read now: a bad value is printed
 * naming its variable and answered with exit code 2. `check` refuses what this process in particular cannot run
 * with; `role` says which secret files it reads (secretFilesOf). Every problem of the files is told at once.
 */
export async function loadProcessConfig(
  check: (config: Config) => void = () => undefined,
  role: 'worker' | 'receiver' = 'worker',
): Promise<{ config: Config; security: TemporalConnectionSecurity } | number> {
  try {
    const config = loadConfig();
    check(config);
    const problems: string[] = [];
    const security = await temporalConnectionSecurity(config.temporalSecurity).catch((err: unknown) => {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return null;
    });
    problems.push(...(await secretFileProblems(secretFilesOf(config, role))));
    if (problems.length || !security) throw new ConfigError(problems);
    return { config, security };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 2;
  }
}

/**
 * One Ctrl-C can arrive twice within milliseconds (npm forwards SIGINT to its child, and the terminal signals the
 * whole process group too): a signal this soon after the first is the same one.
 */
export const SAME_SIGNAL_WITHIN_MS = 500;

/**
 * SIGINT and SIGTERM: the first calls `stop` (a clean stop), a later one exits at once with 130.
 */
export function onStopSignals(say: (line: string) => void, stop: (signal: NodeJS.Signals) => void): void {
  let first: number | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (first !== null) {
      if (Date.now() - first < SAME_SIGNAL_WITHIN_MS) return;
      say(`${signal} again: exiting now`);
      process.exit(130);
    }
    first = Date.now();
    stop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** The cluster the kubeconfig points at, or a warning that there is none (`what` fails until then). */
export function describeKubeConfig(kubeConfig: KubeConfig, what: string): string {
  const cluster = kubeConfig.getCurrentCluster();
  // With no kubeconfig anywhere the client falls back to an unauthenticated localhost:8080.
  const unconfigured = !cluster || (cluster.name === 'cluster' && cluster.server === 'http://localhost:8080');
  return unconfigured
    ? `warning: no kubeconfig found (set KUBECONFIG or run in-cluster); ${what} will fail until then`
    : `Kubernetes API: ${cluster.server}`;
}

/** The receiver as RECEIVER_* configure it; a port it cannot take is named by its variables. */
export function startConfiguredReceiver(
  rc: ReceiverConfig,
  deps: { connection: Connection; namespace: string; taskQueue: string; kubeConfig: KubeConfig },
  say: (line: string) => void,
): Promise<ReceiverServer> {
  return startReceiver({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue: deps.taskQueue,
    kubernetes: new KubernetesClient(deps.kubeConfig),
    host: rc.host,
    port: rc.port,
    token: rc.token,
    maxBodyBytes: rc.maxBodyBytes,
    alertNames: rc.alertNames,
    log: say,
  }).catch((err: unknown) => {
    throw new Error(`RECEIVER_HOST/RECEIVER_PORT ${rc.host}:${rc.port}: ${(err as Error).message}`);
  });
}

/** `/metrics` as METRICS_* configure it; a port it cannot take is named by its variables. */
export function startConfiguredMetrics(
  mc: { host: string; port: number },
  deps: Pick<MetricsServerOptions, 'sdkMetricsAddress' | 'approvals'>,
  say: (line: string) => void,
): Promise<MetricsServer> {
  return startMetricsServer({ host: mc.host, port: mc.port, ...deps, log: say }).catch((err: unknown) => {
    throw new Error(`METRICS_HOST/METRICS_PORT ${mc.host}:${mc.port}: ${(err as Error).message}`);
  });
}
