/**
 * The worker's `/metrics` (Prometheus text format): the project's registry and the Temporal SDK's own metrics on
 * one page.
 *
 * The SDK's metrics come from its runtime telemetry: Core serves them on its own HTTP endpoint
 * (`telemetryOptions.metrics.prometheus.bindAddress`). That endpoint is bound to a loopback port chosen at start
 * and read here at every scrape, then served after the project's metrics, rather than exposed on a second port:
 * one scrape target per worker (one port in the Service, the pod annotations or the PodMonitor, one `up` series),
 * and nothing of Core's exporter reachable from outside the pod. The two never share a name (`temporal_*` for
 * the SDK, `vpsie_runbook_*` and prom-client's `process_*` / `nodejs_*` for ours), so the two texts concatenate
 * into one valid page. If Core's endpoint does not answer (the runtime stopping at shutdown), the page still has
 * the project's metrics, and `vpsie_runbook_metrics_source_up{source="temporal_sdk"}` is 0.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { TelemetryOptions } from '@temporalio/worker';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { metricsSourceUp, registry as projectRegistry } from '../metrics';
import { approvalsPendingSource } from './approvals';

/** How long a scrape waits for Core's endpoint (Prometheus' own scrape timeout defaults to 10 s). */
const SDK_SCRAPE_TIMEOUT_MS = 3_000;

/**
 * The runtime's telemetry for `Runtime.install`: Core's Prometheus exporter on `bindAddress` (`127.0.0.1:<port>`,
 * read by {@link startMetricsServer}). The SDK's metric names stay as Temporal documents them (`temporal_`
 * prefix, counters without `_total`), so Temporal's SDK dashboards work on them.
 */
export function sdkTelemetryOptions(bindAddress: string): TelemetryOptions {
  return { metrics: { prometheus: { bindAddress } } };
}

export interface MetricsServerOptions {
  /** Where to listen: METRICS_HOST / METRICS_PORT; port 0 takes any free port (tests). */
  host: string;
  port: number;
  /** Core's exporter (`host:port`, as given to {@link sdkTelemetryOptions}); null: the SDK's metrics are not merged. */
  sdkMetricsAddress: string | null;
  /** Counts `vpsie_runbook_approvals_pending` through visibility; null: no such count (no Temporal client). */
  approvals: { client: Client; taskQueue: string; cacheMs?: number } | null;
  /** Default: the project's registry (src/metrics.ts). */
  registry?: Registry;
  log?: (line: string) => void;
}

export interface MetricsServer {
  /** `http://host:port/metrics`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const defaultMetricsOn = new WeakSet<Registry>();

/** Reads Core's exporter: its text, or null when it could not be read. */
async function sdkMetrics(address: string): Promise<string | null> {
  try {
    const res = await fetch(`http://${address}/metrics`, {
      headers: { accept: 'text/plain' },
      signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS),
    });
    if (!res.ok) return null;
    return await res.text();
  } catch {
    return null;
  }
}

/**
 * Serves `GET /metrics` until close(). Design for tests: Temporal's Runtime (and so Core's exporter) is installed
 * once per process, by whoever starts first; this server only takes the exporter's address, so any number of
 * servers (one per test) can read the one runtime.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const registry = opts.registry ?? projectRegistry;
  if (!defaultMetricsOn.has(registry)) {
    // the process's CPU, memory and event-loop lag: a worker whose loop is blocked runs its tasks late
    collectDefaultMetrics({ register: registry });
    defaultMetricsOn.add(registry);
  }
  const approvals = opts.approvals ? approvalsPendingSource(opts.approvals) : null;

  const page = async (): Promise<string> => {
    const [sdk, counted] = await Promise.all([
      opts.sdkMetricsAddress ? sdkMetrics(opts.sdkMetricsAddress) : Promise.resolve(null),
      approvals ? approvals.refresh() : Promise.resolve(null),
    ]);
    if (opts.sdkMetricsAddress) metricsSourceUp.set({ source: 'temporal_sdk' }, sdk === null ? 0 : 1);
    if (counted !== null) metricsSourceUp.set({ source: 'temporal_visibility' }, counted ? 1 : 0);
    const ours = await registry.metrics();
    if (!sdk) return ours;
    return `${ours.endsWith('\n') ? ours : `${ours}\n`}${sdk.endsWith('\n') ? sdk : `${sdk}\n`}`;
  };

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end();
      return;
    }
    page().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        opts.log?.(`metrics: could not build the page: ${err instanceof Error ? err.message : String(err)}`);
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n');
      },
    );
  });
  // a scraper keeps its connection open between scrapes: close() must not wait for it
  server.keepAliveTimeout = 65_000;
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const shownHost = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${port}/metrics`,
    port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
