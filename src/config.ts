/**
 * The one place that knows environment variable names. Read and validated once at start-up; every bad value is
 * reported by name, all at once, before anything connects anywhere.
 */

import {
  DEFAULT_CONTROLLER_CONTAINER,
  DEFAULT_CONTROLLER_LABEL_SELECTOR,
  DEFAULT_CONTROLLER_NAMESPACE,
  type ControllerSelector,
} from './runbook/evidence';
import { isIP } from 'node:net';
import { isLoopbackHost } from './clients/vpsie';
import { DEFAULT_PAGERDUTY_EVENTS_URL, type ChannelsConfig, type SecretSource } from './channels';
import { channelUrlProblem } from './channels/http';
import { isRoutingKey } from './channels/pagerduty';
import {
  DEFAULT_APPROVAL_CHANNELS_TEXT,
  DEFAULT_ROUTES_TEXT,
  parseChannelList,
  parseRoutes,
  type ChannelName,
} from './runbook/routing';
import { formatDuration, parseDuration } from './runbook/duration';
import { DEFAULT_ALERT_NAMES } from './receiver/alerts';
import {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_RECEIVER_HOST,
  DEFAULT_RECEIVER_PORT,
  MAX_MAX_BODY_BYTES,
  MIN_MAX_BODY_BYTES,
} from './receiver/defaults';

export const DEFAULT_TASK_QUEUE = 'vpsie-runbook';
export const DEFAULT_TEMPORAL_NAMESPACE = 'default';
/** The embedded dev server's ports are Temporal's usual ones, so the UI is where people expect it. */
export const DEFAULT_DEV_SERVER_PORT = 7233;
export const DEFAULT_DEV_UI_PORT = 8233;
/** The embedded dev server keeps its state in a file, so a restart does not lose runs in flight. */
export const DEFAULT_DEV_DB_FILE = '.cache/temporal-dev.sqlite';
/**
 * The worker's /metrics: 9464 is the port of the OpenTelemetry Prometheus exporter and of Temporal's SDK samples,
 * clear of the receiver's 8080 and the dev server's 7233/8233; every interface, so Prometheus reaches it on the
 * pod's IP.
 */
export const DEFAULT_METRICS_PORT = 9464;
export const DEFAULT_METRICS_HOST = '0.0.0.0';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Config {
  temporal: {
    /** host:port of a Temporal frontend; null means "start an embedded dev server". */
    address: string | null;
    namespace: string;
    taskQueue: string;
  };
  devServer: {
    port: number;
    uiPort: number;
    dbFile: string;
  };
  kubernetes: {
    /** Path to a kubeconfig; unset means KUBECONFIG's usual search, then in-cluster. */
    kubeconfig?: string;
    context?: string;
  };
  /** Where the autoscaler's pods are found (runbook step 3): by label, never by Deployment name. */
  controller: ControllerSelector;
  vpsie: {
    baseUrl: string;
    /** A file holding the API token (a mounted secret): read on every call, so a rotation needs no restart. */
    tokenFile?: string;
    /** The token itself; prefer tokenFile. Never logged, never passed to a workflow. */
    token?: string;
    /**
     * Or client credentials, exchanged at `POST /auth/from/api` (the autoscaler's `clientId`/`clientSecret`):
     * each as a file (read at every exchange, so a rotation needs no restart) or as the value.
     */
    clientId?: string;
    clientIdFile?: string;
    clientSecret?: string;
    clientSecretFile?: string;
  };
  logLevel: LogLevel;
  /**
   * Escalation channels (ESCALATION_WEBHOOK_URL, SLACK_WEBHOOK_URL, PAGERDUTY_ROUTING_KEY, each also as *_FILE),
   * the routes per audience and the approval channels. Secrets stay here, in the worker, never in a workflow.
   */
  channels: ChannelsConfig;
  /** ORPHAN_SWEEP_INTERVAL: how often the Schedule starts the orphaned-VM sweep; null: no Schedule is set up. */
  orphanSweepIntervalMs: number | null;
  /** WORKER_MAX_CACHED_WORKFLOWS: runs the worker keeps in memory between their workflow tasks. */
  maxCachedWorkflows: number;
  /** METRICS_HOST / METRICS_PORT: where the worker serves /metrics; null (METRICS_PORT 0 or off): not served. */
  metrics: { host: string; port: number } | null;
  /** The Alertmanager webhook receiver (RECEIVER_*); null when RECEIVER_PORT is 0 or off. */
  receiver: ReceiverConfig | null;
  /** TEMPORAL_TLS*, TEMPORAL_API_KEY(_FILE): TLS, mTLS or an API key to the Temporal frontend. */
  temporalSecurity: TemporalSecurity;
}

/**
 * How every connection to Temporal (worker, receiver, metrics) authenticates; Temporal's own variable names
 * (the `temporal` CLI reads the same ones). Files are read at start-up by src/temporal/connection-options.ts.
 */
export interface TemporalSecurity {
  /** null: plain gRPC (the embedded dev server, a server on a private network). */
  tls: {
    /** TEMPORAL_TLS_SERVER_CA_CERT_PATH: the CA of the server's certificate; unset: the system's roots. */
    serverCaCertFile?: string;
    /** TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: mTLS, both or neither. */
    clientCertFile?: string;
    clientKeyFile?: string;
    /** TEMPORAL_TLS_SERVER_NAME: the name the server's certificate carries, when not the address's host. */
    serverName?: string;
  } | null;
  /** TEMPORAL_API_KEY_FILE or TEMPORAL_API_KEY, sent as `Authorization: Bearer`; never logged. */
  apiKey:
    | { variable: 'TEMPORAL_API_KEY_FILE'; file: string }
    | { variable: 'TEMPORAL_API_KEY'; value: string }
    | null;
}

export interface ReceiverConfig {
  host: string;
  port: number;
  /** RECEIVER_TOKEN_FILE (read at every request) or RECEIVER_TOKEN; null: no token asked for. */
  token: { variable: string; file?: string; value?: string } | null;
  maxBodyBytes: number;
  /** RECEIVER_ALERTNAMES: the alerts acted on; others are acknowledged and ignored. */
  alertNames: string[];
}

/**
 * Runs cached by the worker between their workflow tasks: about 1 MB each (the SDK's measure, and ours: README
 * "Benchmark"). Enough for the runs active at once; a run not cached is replayed from its short history when it
 * wakes or is queried. The SDK's default, sized from the heap limit, would cache thousands.
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 150;
export const MAX_MAX_CACHED_WORKFLOWS = 10_000;

/** ORPHAN_SWEEP_INTERVAL's bounds: often enough to matter, rarely enough that a person can keep up. */
export const MIN_ORPHAN_SWEEP_INTERVAL_MS = 5 * 60_000;
export const MAX_ORPHAN_SWEEP_INTERVAL_MS = 30 * 86_400_000;

/** The API base URL the autoscaler uses; accounts on the official SDK's shape use https://api.vpsie.com/apps/v2. */
export const DEFAULT_VPSIE_API_URL = 'https://api.vpsie.com/v2';

export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Describes every variable for `--help` and the README. */
export const CONFIG_VARIABLES: ReadonlyArray<{ name: string; default: string; description: string }> = [
  {
    name: 'TEMPORAL_ADDRESS',
    default: '(unset: embedded dev server)',
    description: 'Temporal frontend host:port',
  },
  { name: 'TEMPORAL_NAMESPACE', default: DEFAULT_TEMPORAL_NAMESPACE, description: 'Temporal namespace' },
  { name: 'TEMPORAL_TASK_QUEUE', default: DEFAULT_TASK_QUEUE, description: 'task queue the worker polls' },
  {
    name: 'TEMPORAL_TLS',
    default: '(on when a TEMPORAL_TLS_* or API key is set)',
    description: 'true: TLS to the Temporal frontend (system CAs); false: plain gRPC',
  },
  {
    name: 'TEMPORAL_TLS_SERVER_CA_CERT_PATH',
    default: "(the system's CAs)",
    description: "PEM file with the CA of the Temporal server's certificate",
  },
  {
    name: 'TEMPORAL_TLS_CLIENT_CERT_PATH',
    default: '(unset: no client certificate)',
    description: 'PEM file with the client certificate for mTLS (with TEMPORAL_TLS_CLIENT_KEY_PATH)',
  },
  {
    name: 'TEMPORAL_TLS_CLIENT_KEY_PATH',
    default: '(unset)',
    description: "PEM file with that certificate's private key",
  },
  {
    name: 'TEMPORAL_TLS_SERVER_NAME',
    default: "(the address's host)",
    description: "name to expect in the server's certificate (and to send as SNI)",
  },
  {
    name: 'TEMPORAL_API_KEY_FILE',
    default: '(unset)',
    description: 'file with the Temporal Cloud API key (preferred; read at start-up; turns TLS on)',
  },
  { name: 'TEMPORAL_API_KEY', default: '(unset)', description: 'that API key itself' },
  {
    name: 'TEMPORAL_DEV_PORT',
    default: String(DEFAULT_DEV_SERVER_PORT),
    description: 'embedded dev server gRPC port',
  },
  {
    name: 'TEMPORAL_DEV_UI_PORT',
    default: String(DEFAULT_DEV_UI_PORT),
    description: 'embedded dev server Web UI port',
  },
  { name: 'TEMPORAL_DEV_DB', default: DEFAULT_DEV_DB_FILE, description: 'embedded dev server SQLite file' },
  {
    name: 'TEMPORAL_CLI',
    default: '(searched)',
    description: 'path to the `temporal` CLI for the embedded server',
  },
  {
    name: 'KUBECONFIG',
    default: '~/.kube/config, then in-cluster',
    description: 'kubeconfig to reach the cluster',
  },
  { name: 'KUBE_CONTEXT', default: '(current context)', description: 'kubeconfig context to use' },
  {
    name: 'CONTROLLER_NAMESPACE',
    default: DEFAULT_CONTROLLER_NAMESPACE,
    description: "namespace of the autoscaler's pods (the RBAC Role must be bound there)",
  },
  {
    name: 'CONTROLLER_LABEL_SELECTOR',
    default: DEFAULT_CONTROLLER_LABEL_SELECTOR,
    description: "label selector of the autoscaler's pods",
  },
  {
    name: 'CONTROLLER_CONTAINER',
    default: DEFAULT_CONTROLLER_CONTAINER,
    description: 'container whose log is read (a pod without it: its first container)',
  },
  { name: 'VPSIE_API_URL', default: DEFAULT_VPSIE_API_URL, description: 'VPSie API base URL' },
  { name: 'VPSIE_TOKEN_FILE', default: '(unset)', description: 'file with the VPSie API token (preferred)' },
  { name: 'VPSIE_TOKEN', default: '(unset)', description: 'the VPSie API token itself' },
  {
    name: 'VPSIE_CLIENT_ID_FILE',
    default: '(unset)',
    description: 'file with the VPSie client id (instead of a token)',
  },
  { name: 'VPSIE_CLIENT_ID', default: '(unset)', description: 'the VPSie client id itself' },
  {
    name: 'VPSIE_CLIENT_SECRET_FILE',
    default: '(unset)',
    description: 'file with the VPSie client secret (preferred)',
  },
  { name: 'VPSIE_CLIENT_SECRET', default: '(unset)', description: 'the VPSie client secret itself' },
  { name: 'LOG_LEVEL', default: 'info', description: 'debug, info, warn or error' },
  {
    name: 'ESCALATION_WEBHOOK_URL_FILE',
    default: '(unset)',
    description: 'file with the URL escalations are POSTed to as JSON (preferred)',
  },
  { name: 'ESCALATION_WEBHOOK_URL', default: '(unset)', description: 'that URL itself' },
  {
    name: 'SLACK_WEBHOOK_URL_FILE',
    default: '(unset)',
    description: 'file with the Slack incoming-webhook URL (preferred: the URL is a secret)',
  },
  { name: 'SLACK_WEBHOOK_URL', default: '(unset)', description: 'the Slack incoming-webhook URL itself' },
  {
    name: 'PAGERDUTY_ROUTING_KEY_FILE',
    default: '(unset)',
    description: 'file with the PagerDuty Events v2 integration key (preferred)',
  },
  {
    name: 'PAGERDUTY_ROUTING_KEY',
    default: '(unset)',
    description: 'the 32-character integration key itself',
  },
  {
    name: 'PAGERDUTY_EVENTS_URL',
    default: DEFAULT_PAGERDUTY_EVENTS_URL,
    description: 'PagerDuty Events API v2 endpoint',
  },
  {
    name: 'ESCALATION_ROUTES',
    default: DEFAULT_ROUTES_TEXT,
    description: 'channels per audience (configured channels only); "platform-team=" for the Event only',
  },
  {
    name: 'APPROVAL_CHANNELS',
    default: DEFAULT_APPROVAL_CHANNELS_TEXT,
    description: 'channels that announce a pending approval (configured channels only)',
  },
  {
    name: 'ORPHAN_SWEEP_INTERVAL',
    default: '(unset: no schedule)',
    description: 'run the orphaned-VM sweep on a Temporal Schedule this often, e.g. 1h (5m to 30d)',
  },
  {
    name: 'WORKER_MAX_CACHED_WORKFLOWS',
    default: String(DEFAULT_MAX_CACHED_WORKFLOWS),
    description: `runs the worker keeps in memory between their workflow tasks, about 1 MB each (1 to ${MAX_MAX_CACHED_WORKFLOWS})`,
  },
  {
    name: 'METRICS_PORT',
    default: String(DEFAULT_METRICS_PORT),
    description: "port of the worker's Prometheus /metrics (the project's and the SDK's); 0 or off: none",
  },
  { name: 'METRICS_HOST', default: DEFAULT_METRICS_HOST, description: 'address /metrics listens on' },
  {
    name: 'RECEIVER_PORT',
    default: String(DEFAULT_RECEIVER_PORT),
    description: 'port of the Alertmanager webhook receiver; 0 or off: npm start runs none',
  },
  { name: 'RECEIVER_HOST', default: DEFAULT_RECEIVER_HOST, description: 'address the receiver listens on' },
  {
    name: 'RECEIVER_TOKEN_FILE',
    default: '(unset)',
    description: 'file with the bearer token Alertmanager must send (preferred; read at every request)',
  },
  { name: 'RECEIVER_TOKEN', default: '(unset: no token)', description: 'that token itself' },
  {
    name: 'RECEIVER_MAX_BODY_BYTES',
    default: String(DEFAULT_MAX_BODY_BYTES),
    description: `largest webhook body accepted, bytes (${MIN_MAX_BODY_BYTES} to ${MAX_MAX_BODY_BYTES}); larger: 413`,
  },
  {
    name: 'RECEIVER_ALERTNAMES',
    default: DEFAULT_ALERT_NAMES.join(','),
    description: 'alerts the receiver acts on (comma-separated); others are acknowledged and ignored',
  },
];

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
/** A DNS-1123 label: Kubernetes namespace and container names. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/**
 * One or more comma-separated requirements, equality-based (`app=x`, `app==x`, `app!=x`, `app`, `!app`) or
 * set-based (`tier in (a,b)`, `tier notin (a)`); keys may carry a DNS prefix (`app.kubernetes.io/name=x`).
 */
const LABEL_KEY = String.raw`(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const LABEL_VALUE = String.raw`(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?`;
const SET_VALUE = String.raw`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const REQUIREMENT = String.raw`\s*(?:!?${LABEL_KEY}|${LABEL_KEY}\s*(?:==?|!=)\s*${LABEL_VALUE}|${LABEL_KEY}\s+(?:in|notin)\s*\(\s*${SET_VALUE}(?:\s*,\s*${SET_VALUE})*\s*\))\s*`;
const LABEL_SELECTOR = new RegExp(`^${REQUIREMENT}(?:,${REQUIREMENT})*$`);

function hostOf(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

/**
 * The escalation channels. Secrets are never quoted in a problem: a bad value is named by its variable only.
 * A file is read at every use (so a rotated secret needs no restart); its content is checked then.
 */
function loadChannels(text: (name: string) => string | undefined, problems: string[]): ChannelsConfig {
  const secret = (name: string, check: (v: string) => string | null): SecretSource | undefined => {
    const file = text(`${name}_FILE`);
    const value = text(name);
    if (file && value) problems.push(`set only one of ${name}_FILE and ${name}`);
    if (file) return { variable: `${name}_FILE`, file };
    if (value) {
      const problem = check(value);
      if (problem) problems.push(`${name} ${problem}`);
      return { variable: name, value };
    }
    return undefined;
  };
  const webhook = secret('ESCALATION_WEBHOOK_URL', channelUrlProblem);
  const slack = secret('SLACK_WEBHOOK_URL', channelUrlProblem);
  const routingKey = secret('PAGERDUTY_ROUTING_KEY', (v) =>
    isRoutingKey(v)
      ? null
      : `must be the 32-character integration key (letters and digits), got ${v.length} characters`,
  );
  const eventsUrl = text('PAGERDUTY_EVENTS_URL') ?? DEFAULT_PAGERDUTY_EVENTS_URL;
  const eventsProblem = channelUrlProblem(eventsUrl);
  if (eventsProblem) problems.push(`PAGERDUTY_EVENTS_URL ${eventsProblem}, got "${eventsUrl}"`);
  const configured: ChannelName[] = [
    ...(routingKey ? (['pagerduty'] as const) : []),
    ...(slack ? (['slack'] as const) : []),
    ...(webhook ? (['webhook'] as const) : []),
  ];
  const routes = parseRoutes(text('ESCALATION_ROUTES'), configured);
  const approvalChannels = parseChannelList(text('APPROVAL_CHANNELS'), configured);
  problems.push(...routes.problems, ...approvalChannels.problems);
  return {
    ...(webhook ? { webhook } : {}),
    ...(slack ? { slack } : {}),
    ...(routingKey ? { pagerduty: { routingKey, eventsUrl } } : {}),
    routes: routes.value,
    approvalChannels: approvalChannels.value,
  };
}

/** A host name or an IPv4/IPv6 address to listen on. */
const LISTEN_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)$/;
/** Numbers and dots, or a colon: an address, which must then be a real one (`256.1.1.1`, `1.2.3.4:80` are not). */
const listenHostOk = (host: string): boolean =>
  LISTEN_HOST.test(host) && (/^[\d.]+$|:/.test(host) ? isIP(host) !== 0 : true);

/** METRICS_PORT (a port, or 0 / off for none) and METRICS_HOST. */
function loadMetrics(
  text: (name: string) => string | undefined,
  problems: string[],
): { host: string; port: number } | null {
  const host = text('METRICS_HOST') ?? DEFAULT_METRICS_HOST;
  if (!listenHostOk(host))
    problems.push(`METRICS_HOST must be a host name or an IP address to listen on, got "${host}"`);
  const v = text('METRICS_PORT');
  if (v === undefined) return { host, port: DEFAULT_METRICS_PORT };
  if (v === '0' || v.toLowerCase() === 'off') return null;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
    problems.push(`METRICS_PORT must be a TCP port (1-65535), or 0 or off to serve no metrics, got "${v}"`);
    return null;
  }
  return { host, port: n };
}

/** RECEIVER_*: the Alertmanager webhook receiver; null when RECEIVER_PORT is 0 or off. */
function loadReceiver(text: (name: string) => string | undefined, problems: string[]): ReceiverConfig | null {
  const host = text('RECEIVER_HOST') ?? DEFAULT_RECEIVER_HOST;
  if (!listenHostOk(host))
    problems.push(`RECEIVER_HOST must be a host name or an IP address to listen on, got "${host}"`);
  const file = text('RECEIVER_TOKEN_FILE');
  const value = text('RECEIVER_TOKEN');
  if (file && value) problems.push('set only one of RECEIVER_TOKEN_FILE and RECEIVER_TOKEN');
  if (value !== undefined && /\s/.test(value)) problems.push('RECEIVER_TOKEN must not contain spaces'); // never quoted
  const body = text('RECEIVER_MAX_BODY_BYTES');
  let maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  if (body !== undefined) {
    maxBodyBytes = Number(body);
    if (!/^\d+$/.test(body) || maxBodyBytes < MIN_MAX_BODY_BYTES || maxBodyBytes > MAX_MAX_BODY_BYTES)
      problems.push(
        `RECEIVER_MAX_BODY_BYTES must be a number of bytes from ${MIN_MAX_BODY_BYTES} to ${MAX_MAX_BODY_BYTES}, got "${body}"`,
      );
  }
  const names = text('RECEIVER_ALERTNAMES');
  const alertNames = names === undefined ? [...DEFAULT_ALERT_NAMES] : names.split(',').map((n) => n.trim());
  const badName = alertNames.find((n) => !/^[A-Za-z_:][A-Za-z0-9_:.-]*$/.test(n));
  if (badName !== undefined)
    problems.push(
      `RECEIVER_ALERTNAMES must be alert names separated by commas, got "${names}" ("${badName}")`,
    );
  const v = text('RECEIVER_PORT');
  let port = DEFAULT_RECEIVER_PORT;
  if (v !== undefined) {
    if (v === '0' || v.toLowerCase() === 'off') return null;
    port = Number(v);
    if (!/^\d+$/.test(v) || port < 1 || port > 65535)
      problems.push(`RECEIVER_PORT must be a TCP port (1-65535), or 0 or off for no receiver, got "${v}"`);
  }
  return {
    host,
    port,
    token: file
      ? { variable: 'RECEIVER_TOKEN_FILE', file }
      : value
        ? { variable: 'RECEIVER_TOKEN', value }
        : null,
    maxBodyBytes,
    alertNames,
  };
}

const TLS_PATHS = [
  ['TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'serverCaCertFile'],
  ['TEMPORAL_TLS_CLIENT_CERT_PATH', 'clientCertFile'],
  ['TEMPORAL_TLS_CLIENT_KEY_PATH', 'clientKeyFile'],
] as const;
const SERVER_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** TEMPORAL_TLS*, TEMPORAL_API_KEY(_FILE). A key never travels in clear text, except to a loopback address. */
function loadTemporalSecurity(
  text: (name: string) => string | undefined,
  address: string | null,
  problems: string[],
): TemporalSecurity {
  const flag = text('TEMPORAL_TLS');
  let tlsFlag: boolean | undefined;
  if (flag !== undefined) {
    if (/^(true|1)$/i.test(flag)) tlsFlag = true;
    else if (/^(false|0)$/i.test(flag)) tlsFlag = false;
    else problems.push(`TEMPORAL_TLS must be true or false, got "${flag}"`);
  }
  const tls: NonNullable<TemporalSecurity['tls']> = {};
  for (const [name, key] of TLS_PATHS) {
    const v = text(name);
    if (v !== undefined) tls[key] = v;
  }
  const serverName = text('TEMPORAL_TLS_SERVER_NAME');
  if (serverName !== undefined) {
    tls.serverName = serverName;
    if (!SERVER_NAME.test(serverName))
      problems.push(`TEMPORAL_TLS_SERVER_NAME must be a host name, got "${serverName}"`);
  }
  if (!!tls.clientCertFile !== !!tls.clientKeyFile)
    problems.push(
      `${tls.clientCertFile ? 'TEMPORAL_TLS_CLIENT_KEY_PATH' : 'TEMPORAL_TLS_CLIENT_CERT_PATH'} is missing: mTLS needs the client certificate and its key`,
    );
  const keyFile = text('TEMPORAL_API_KEY_FILE');
  const keyValue = text('TEMPORAL_API_KEY');
  if (keyFile && keyValue) problems.push('set only one of TEMPORAL_API_KEY_FILE and TEMPORAL_API_KEY');
  if (keyValue !== undefined && /\s/.test(keyValue))
    problems.push('TEMPORAL_API_KEY must not contain spaces'); // never quoted
  const apiKey: TemporalSecurity['apiKey'] = keyFile
    ? { variable: 'TEMPORAL_API_KEY_FILE', file: keyFile }
    : keyValue
      ? { variable: 'TEMPORAL_API_KEY', value: keyValue }
      : null;
  const tlsSet = Object.keys(tls).length > 0;
  if (tlsFlag === false && tlsSet)
    problems.push(
      `TEMPORAL_TLS is false, but TLS settings are set (${[...TLS_PATHS.map(([n]) => n), 'TEMPORAL_TLS_SERVER_NAME'].filter((n) => text(n) !== undefined).join(', ')})`,
    );
  const host = address === null ? null : (HOST_PORT.exec(address)?.[1] ?? ''); // [::1] keeps its brackets
  if (tlsFlag === false && apiKey && !(host !== null && isLoopbackHost(host)))
    problems.push(
      `${apiKey.variable} needs TLS (the key would cross the network in clear text): remove TEMPORAL_TLS=false`,
    );
  const wantsTls = tlsFlag ?? (tlsSet || apiKey !== null);
  if (address === null && (wantsTls || apiKey))
    problems.push(
      'TEMPORAL_TLS, TEMPORAL_TLS_* and TEMPORAL_API_KEY(_FILE) need TEMPORAL_ADDRESS: the embedded dev server takes plain connections',
    );
  return { tls: wantsTls ? tls : null, apiKey };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const port = (name: string, fallback: number): number => {
    const v = text(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
      problems.push(`${name} must be a TCP port (1-65535), got "${v}"`);
      return fallback;
    }
    return n;
  };
  const pattern = (name: string, re: RegExp, fallback: string, what: string): string => {
    const v = text(name);
    if (v === undefined) return fallback;
    if (!re.test(v)) problems.push(`${name} must be ${what}, got "${v}"`);
    return v;
  };

  const address = text('TEMPORAL_ADDRESS') ?? null;
  if (address !== null) {
    const m = HOST_PORT.exec(address);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
      problems.push(`TEMPORAL_ADDRESS must be host:port (for example temporal:7233), got "${address}"`);
    }
  }
  const logLevel = (text('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  const vpsieUrl = text('VPSIE_API_URL') ?? DEFAULT_VPSIE_API_URL;
  if (!/^https?:\/\/[^\s/]+/.test(vpsieUrl)) {
    problems.push(`VPSIE_API_URL must be an http(s) URL, got "${vpsieUrl}"`);
  } else if (vpsieUrl.startsWith('http:') && !isLoopbackHost(hostOf(vpsieUrl))) {
    // The token or client secret would cross the network in clear text.
    problems.push(`VPSIE_API_URL must use https (http only to a loopback host), got "${vpsieUrl}"`);
  }
  for (const name of ['VPSIE_TOKEN', 'VPSIE_CLIENT_ID', 'VPSIE_CLIENT_SECRET']) {
    if (text(`${name}_FILE`) && text(name)) problems.push(`set only one of ${name}_FILE and ${name}`);
  }
  const hasToken = !!(text('VPSIE_TOKEN_FILE') ?? text('VPSIE_TOKEN'));
  const hasId = !!(text('VPSIE_CLIENT_ID_FILE') ?? text('VPSIE_CLIENT_ID'));
  const hasSecret = !!(text('VPSIE_CLIENT_SECRET_FILE') ?? text('VPSIE_CLIENT_SECRET'));
  if (hasId !== hasSecret) {
    problems.push(
      `${hasId ? 'VPSIE_CLIENT_SECRET(_FILE)' : 'VPSIE_CLIENT_ID(_FILE)'} is missing: client credentials need both`,
    );
  }
  if (hasToken && (hasId || hasSecret)) {
    problems.push(
      'set either a VPSie token (VPSIE_TOKEN(_FILE)) or client credentials (VPSIE_CLIENT_*), not both',
    );
  }
  let orphanSweepIntervalMs: number | null = null;
  const sweep = text('ORPHAN_SWEEP_INTERVAL');
  if (sweep !== undefined) {
    try {
      orphanSweepIntervalMs = parseDuration(sweep, 'ORPHAN_SWEEP_INTERVAL');
      if (
        orphanSweepIntervalMs < MIN_ORPHAN_SWEEP_INTERVAL_MS ||
        orphanSweepIntervalMs > MAX_ORPHAN_SWEEP_INTERVAL_MS
      )
        problems.push(
          `ORPHAN_SWEEP_INTERVAL must be between ${formatDuration(MIN_ORPHAN_SWEEP_INTERVAL_MS)} and 30 days, got "${sweep}"`,
        );
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const cached = text('WORKER_MAX_CACHED_WORKFLOWS');
  const maxCachedWorkflows = cached === undefined ? DEFAULT_MAX_CACHED_WORKFLOWS : Number(cached);
  if (
    cached !== undefined &&
    (!/^\d+$/.test(cached) || maxCachedWorkflows < 1 || maxCachedWorkflows > MAX_MAX_CACHED_WORKFLOWS)
  )
    problems.push(
      `WORKER_MAX_CACHED_WORKFLOWS must be a whole number from 1 to ${MAX_MAX_CACHED_WORKFLOWS}, got "${cached}"`,
    );
  const channels = loadChannels(text, problems);
  const metrics = loadMetrics(text, problems);
  const receiver = loadReceiver(text, problems);
  const temporalSecurity = loadTemporalSecurity(text, address, problems);
  const config: Config = {
    temporal: {
      address,
      namespace: pattern(
        'TEMPORAL_NAMESPACE',
        NAMESPACE,
        DEFAULT_TEMPORAL_NAMESPACE,
        'a Temporal namespace name',
      ),
      taskQueue: pattern(
        'TEMPORAL_TASK_QUEUE',
        /^\S{1,255}$/,
        DEFAULT_TASK_QUEUE,
        'a task queue name without spaces',
      ),
    },
    devServer: {
      port: port('TEMPORAL_DEV_PORT', DEFAULT_DEV_SERVER_PORT),
      uiPort: port('TEMPORAL_DEV_UI_PORT', DEFAULT_DEV_UI_PORT),
      dbFile: text('TEMPORAL_DEV_DB') ?? DEFAULT_DEV_DB_FILE,
    },
    kubernetes: {
      ...(text('KUBECONFIG') ? { kubeconfig: text('KUBECONFIG') } : {}),
      ...(text('KUBE_CONTEXT') ? { context: text('KUBE_CONTEXT') } : {}),
    },
    controller: {
      namespace: pattern('CONTROLLER_NAMESPACE', DNS_LABEL, DEFAULT_CONTROLLER_NAMESPACE, 'a namespace name'),
      labelSelector: pattern(
        'CONTROLLER_LABEL_SELECTOR',
        LABEL_SELECTOR,
        DEFAULT_CONTROLLER_LABEL_SELECTOR,
        'a label selector such as app=vpsie-autoscaler',
      ),
      container: pattern('CONTROLLER_CONTAINER', DNS_LABEL, DEFAULT_CONTROLLER_CONTAINER, 'a container name'),
    },
    vpsie: {
      baseUrl: vpsieUrl.replace(/\/+$/, ''),
      ...(text('VPSIE_TOKEN_FILE') ? { tokenFile: text('VPSIE_TOKEN_FILE') } : {}),
      ...(text('VPSIE_TOKEN') ? { token: text('VPSIE_TOKEN') } : {}),
      ...(text('VPSIE_CLIENT_ID') ? { clientId: text('VPSIE_CLIENT_ID') } : {}),
      ...(text('VPSIE_CLIENT_ID_FILE') ? { clientIdFile: text('VPSIE_CLIENT_ID_FILE') } : {}),
      ...(text('VPSIE_CLIENT_SECRET') ? { clientSecret: text('VPSIE_CLIENT_SECRET') } : {}),
      ...(text('VPSIE_CLIENT_SECRET_FILE') ? { clientSecretFile: text('VPSIE_CLIENT_SECRET_FILE') } : {}),
    },
    logLevel,
    channels,
    orphanSweepIntervalMs,
    maxCachedWorkflows,
    metrics,
    receiver,
    temporalSecurity,
  };
  if (config.devServer.port === config.devServer.uiPort) {
    problems.push(
      `TEMPORAL_DEV_PORT and TEMPORAL_DEV_UI_PORT must differ, both are ${config.devServer.port}`,
    );
  }
  if (metrics && address === null) {
    for (const [name, port] of [
      ['TEMPORAL_DEV_PORT', config.devServer.port],
      ['TEMPORAL_DEV_UI_PORT', config.devServer.uiPort],
    ] as const)
      if (metrics.port === port)
        problems.push(`METRICS_PORT and ${name} must differ (the embedded dev server), both are ${port}`);
  }
  if (receiver) {
    const taken: [string, number | undefined][] = [
      ['METRICS_PORT', metrics?.port],
      ...(address === null
        ? ([
            ['TEMPORAL_DEV_PORT', config.devServer.port],
            ['TEMPORAL_DEV_UI_PORT', config.devServer.uiPort],
          ] as [string, number][])
        : []),
    ];
    for (const [name, port] of taken)
      if (receiver.port === port) problems.push(`RECEIVER_PORT and ${name} must differ, both are ${port}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}
