/**
 * The blast-radius lease of one NodeGroup (workflow id `nodegroup-lease/<namespace>/<name>`), in the shape of
 * Temporal's mutex sample: requests arrive by signal-with-start, grants and refusals go back by signal to the
 * requesting run, releases arrive by signal. It also counts the group's failing VPSieNodes and refuses every grant
 * in a storm. Decisions are in src/runbook/lease.ts; this only feeds it signals and time, sends its notices, and
 * keeps history small (continue-as-new) and idle groups closed (it completes when nothing is left to track).
 *
 * Message definitions live here, imported by the workflow-side client (lease-client.ts), the activity that sends
 * requests (src/activities/lease.ts) and tests alike, so that names never drift.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { NodeGroupRef } from '../runbook/evidence';
import { InvalidInputError } from '../runbook/input';
import {
  describeLease,
  firstGone,
  holderGone,
  idledOut,
  leaseStatus,
  nextWakeAt,
  receiveFailure,
  receiveRelease,
  receiveRequest,
  settle,
  startLeaseState,
  type FailureReport,
  type LeaseCounters,
  type LeaseNotice,
  type LeaseRelease,
  type LeaseRequest,
  type LeaseState,
  type LeaseStatus,
  type NodeGroupLeaseInput,
} from '../runbook/lease';

/** Asks for the lease (sent with signal-with-start by the activity `requestNodeGroupLease`). */
export const leaseRequestSignal = defineSignal<[LeaseRequest]>('request');
/** Gives a lease back, or withdraws a waiting request. */
export const leaseReleaseSignal = defineSignal<[LeaseRelease]>('release');
/** A failing VPSieNode of the group, for the storm count (activity `reportNodeGroupFailure`). */
export const leaseFailureSignal = defineSignal<[FailureReport]>('failure');
export const leaseStatusQuery = defineQuery<LeaseStatus>('status');
/**
 * What the lease sends to a run: to a requester granted, refused (storm) or expired (TTL passed); to a reporter
 * counted (with the storm, if any) and storm (one began).
 */
export const leaseNoticeSignal = defineSignal<[LeaseNotice]>('lease-notice');

/** What the workflow returns when it idles out. */
export interface LeaseSummary {
  nodeGroup: NodeGroupRef;
  /** Runs in the chain (continue-as-new). */
  runs: number;
  startedAt: string;
  endedAt: string;
  counters: LeaseCounters;
}

export async function nodeGroupLease(input: NodeGroupLeaseInput): Promise<LeaseSummary> {
  let state: LeaseState;
  try {
    state = startLeaseState(input, Date.now());
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  let changed = false;
  /** Signal handlers only change state (synchronously); the main loop sends what they leave in the outbox. */
  const on =
    (receive: (s: LeaseState, raw: unknown, nowMs: number) => LeaseState) =>
    (raw: unknown): void => {
      state = receive(state, raw, Date.now());
      changed = true;
    };
  // Registered before the first await: a signal-with-start's signal is delivered to these handlers.
  setHandler(leaseRequestSignal, on(receiveRequest));
  setHandler(leaseReleaseSignal, on(receiveRelease));
  setHandler(leaseFailureSignal, on(receiveFailure));
  setHandler(leaseStatusQuery, () => leaseStatus(state));

  /** Sends every notice in the outbox; a grant that cannot be delivered goes to the next request. */
  const deliver = async (): Promise<void> => {
    while (state.outbox.length > 0) {
      const batch = state.outbox;
      state = { ...state, outbox: [] };
      const sent = await Promise.allSettled(
        batch.map(({ to, notice }) =>
          getExternalWorkflowHandle(to.workflowId, to.runId).signal(leaseNoticeSignal, notice),
        ),
      );
      sent.forEach((r, i) => {
        const { to, notice } = batch[i];
        if (r.status !== 'rejected') return;
        // The run that asked has ended (or continued as new): nobody holds this lease.
        if (notice.kind === 'granted') state = holderGone(state, notice.requestId, Date.now());
        // The run that was to escalate for the storm has ended: another is chosen, so the group still pages once.
        else if ('storm' in notice && notice.storm?.first)
          state = firstGone(state, to.workflowId, Date.now());
      });
    }
  };

  let shown = '';
  const show = (): void => {
    const line = describeLease(state);
    if (line !== shown) setCurrentDetails(line);
    shown = line;
  };

  for (;;) {
    state = settle(state, Date.now());
    await deliver();
    show();
    if (idledOut(state, Date.now())) {
      await condition(allHandlersFinished);
      // A signal handled while waiting above is work again; otherwise done. A signal-with-start that arrives
      // after this run completes starts a fresh one.
      if (idledOut(state, Date.now())) {
        return {
          nodeGroup: state.nodeGroup,
          runs: state.run,
          startedAt: state.startedAt,
          endedAt: new Date().toISOString(),
          counters: state.counters,
        };
      }
      continue;
    }
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historyLength >= state.policy.eventsPerRun) {
      await condition(allHandlersFinished);
      // Signals that reached this run are in `state`; those that arrive while the new run is being started make
      // the server refuse the continue-as-new, and this run sees them first.
      if (state.outbox.length === 0) {
        await continueAsNew<typeof nodeGroupLease>({
          nodeGroup: state.nodeGroup,
          carried: state,
        });
      }
      continue;
    }
    changed = false;
    const wake = nextWakeAt(state);
    const wait = wake === null ? null : wake - Date.now();
    if (wait === null) await condition(() => changed);
    else if (wait > 0) await condition(() => changed, wait);
  }
}
