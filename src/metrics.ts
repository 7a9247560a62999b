/**
 * The project's own Prometheus metrics (prom-client), in one registry that each process serves on `/metrics`.
 * Counted where the thing happens: runs started in the process that starts them (the receiver, the CLI), the
 * rest where the worker sees them.
 */
import { Counter, Registry } from 'prom-client';

export const registry = new Registry();

/** `source`: who started it; `result`: `started` a new run, or `joined` the one open for the VPSieNode. */
export const runsStarted = new Counter({
  name: 'vpsie_runbook_runs_started_total',
  help: 'Runbook runs asked for, by who asked (alertmanager, cli, api) and whether a run was started or an open one joined.',
  labelNames: ['source', 'result'] as const,
  registers: [registry],
});
