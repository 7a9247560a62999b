/**
 * The project's own Prometheus metrics (prom-client), in one registry that each process serves on `/metrics`.
 * Counted where the thing happens: runs started in the process that starts them (the receiver, the CLI), the
 * rest where the worker sees them. The worker's server (src/metrics/server.ts) adds the Temporal SDK's own
 * metrics to the same page.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();

/** `source`: who started it; `result`: `started` a new run, or `joined` the one open for the VPSieNode. */
export const runsStarted = new Counter({
  name: 'vpsie_runbook_runs_started_total',
  help: 'Runbook runs asked for, by who asked (alertmanager, cli, api) and whether a run was started or an open one joined.',
  labelNames: ['source', 'result'] as const,
  registers: [registry],
});

/**
 * One per finished run (the last of a continue-as-new chain), counted by the worker that ran the run's last
 * workflow task, never while a workflow replays (src/metrics/worker-sinks.ts). `cause`: the runbook's cause, or
 * `none` when the run ended before one was named (the VPSieNode could not be read, a dry run of nothing ...).
 */
export const runOutcomes = new Counter({
  name: 'vpsie_runbook_outcomes_total',
  help: 'Runbook runs that ended, by outcome (Recovered, Remediated, Escalated, Rejected, ApprovalExpired, DryRun, VPSieNodeGone) and cause.',
  labelNames: ['outcome', 'cause'] as const,
  registers: [registry],
});

/**
 * From the alert's `startsAt` (memo `origin`, runs the receiver started: `since="alert"`) or else the run's start
 * (`since="run"`) to its outcome. The controller alone takes 10 to 25 minutes before a run acts, and an approval
 * may wait up to its TTL (default 1 h, at most 7 days): the buckets run from seconds to days.
 */
export const ALERT_TO_OUTCOME_BUCKETS = [
  10, 30, 60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 7200, 14400, 28800, 86400, 259200, 604800,
];
export const alertToOutcome = new Histogram({
  name: 'vpsie_runbook_alert_to_outcome_seconds',
  help: "Seconds from the alert's start (since=alert) or else the run's start (since=run) to the run's outcome.",
  labelNames: ['outcome', 'since'] as const,
  buckets: ALERT_TO_OUTCOME_BUCKETS,
  registers: [registry],
});

/**
 * Runs waiting for a person now, by workflow type (the runbook, the orphaned-VM sweep): a count of the server's
 * visibility records (`ApprovalPending = true`) on this worker's task queue, taken when scraped, so it stays
 * right across worker restarts. Every worker of a task queue reports the same number: aggregate with max().
 */
export const approvalsPending = new Gauge({
  name: 'vpsie_runbook_approvals_pending',
  help: 'Runs on this task queue waiting for a person to approve or reject a step, from Temporal visibility (ApprovalPending = true).',
  labelNames: ['workflow_type'] as const,
  registers: [registry],
});

/**
 * Each channel's part of an escalation (`kind="escalation"`), a pending approval's announcement (`approval`) and
 * an incident's resolve (`resolve`), counted once when the channel's entry is final: `delivered`, `refused`
 * (a permanent refusal: 4xx, a bad URL or key), `gave-up` (still failing on the retry policy's last attempt). A
 * retried activity sends, and counts, only what an earlier attempt did not deliver. The channel
 * `kubernetes-event` is the `RunbookEscalated` Event.
 */
export const escalationDeliveries = new Counter({
  name: 'vpsie_runbook_escalation_deliveries_total',
  help: 'Escalations, approval announcements and resolves per channel (kubernetes-event, pagerduty, slack, webhook) by final result (delivered, refused, gave-up).',
  labelNames: ['kind', 'channel', 'result'] as const,
  registers: [registry],
});

/** Whether the last scrape could read each source it merges: the SDK's exporter, Temporal's visibility. */
export const metricsSourceUp = new Gauge({
  name: 'vpsie_runbook_metrics_source_up',
  help: "1 when the last scrape read the source (temporal_sdk: the SDK's own metrics; temporal_visibility: the approvals count), else 0.",
  labelNames: ['source'] as const,
  registers: [registry],
});
