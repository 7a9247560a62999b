import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalSignal, Decision, DecisionResult, ResolvedAlert, RunbookStatus } from '../runbook';

/** Defined once, imported by workflows and clients alike, so the names never drift. */
export const statusQuery = defineQuery<RunbookStatus>('status');

/**
 * A person's decision on the pending step. Signals are fire-and-forget: one that does not count changes nothing
 * and is recorded in `status.refusedDecisions`. The `decide` update answers: its validator refuses (with the
 * reason) before anything is written to history, and its result is the decision as recorded.
 */
export const approveSignal = defineSignal<[ApprovalSignal]>('approve');
export const rejectSignal = defineSignal<[ApprovalSignal]>('reject');
export const decideUpdate = defineUpdate<DecisionResult, [Decision]>('decide');

/**
 * The alert about the run's VPSieNode resolved (sent by the alert receiver): the run notes it in
 * `status.alertResolvedAt` / `status.alertResolved` and goes on; it never stops a remediation in progress.
 */
export const alertResolvedSignal = defineSignal<[ResolvedAlert]>('alertResolved');
