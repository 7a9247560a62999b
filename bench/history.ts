/**
 * Reading runs' histories: when an event happened (the server's clock, the same machine's clock as the bench),
 * when the cause was recorded, how many workflow tasks and activity round trips it took, and the lease-held
 * intervals of a run (from the `lease-notice` grants it received to the `release` it sent).
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;
export type HistoryEvent = NonNullable<History['events']>[number];

type Timestamp =
  { seconds?: number | { toNumber(): number } | null; nanos?: number | null } | null | undefined;

/** An event's time in ms (with the nanoseconds), or NaN. */
export function eventMs(e: HistoryEvent): number {
  const t = e.eventTime as Timestamp;
  if (!t) return NaN;
  const s = typeof t.seconds === 'number' ? t.seconds : (t.seconds?.toNumber() ?? 0);
  return s * 1000 + (t.nanos ?? 0) / 1e6;
}

export async function historyOf(client: Client, workflowId: string, runId?: string): Promise<HistoryEvent[]> {
  const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return h.events ?? [];
}

export interface CausePath {
  /** The event time of the upsert that wrote RunbookCause. */
  causeAt: number;
  /** WorkflowExecutionStarted: the start call reached the server. */
  startedAt: number;
  /** The WorkflowTaskStarted of the task that recorded the cause: a worker took it from the queue. */
  taskStartedAt: number;
  /** Workflow tasks completed up to and including the one that recorded the cause. */
  workflowTasks: number;
  /** Activities scheduled (task-queue round trips) before the cause. */
  activities: number;
  /** Local activity markers before the cause. */
  localActivities: number;
}

/** Where the run recorded its cause (`RunbookCause` upserted), or null when it never did. */
export function causePath(events: HistoryEvent[], attribute = 'RunbookCause'): CausePath | null {
  let workflowTasks = 0;
  let activities = 0;
  let localActivities = 0;
  let startedAt = NaN;
  let taskStartedAt = NaN;
  for (const e of events) {
    if (e.workflowExecutionStartedEventAttributes) startedAt = eventMs(e);
    if (e.workflowTaskStartedEventAttributes) taskStartedAt = eventMs(e);
    if (e.workflowTaskCompletedEventAttributes) workflowTasks += 1;
    if (e.activityTaskScheduledEventAttributes) activities += 1;
    // patch markers (core_patch) are markers too; only local activities count here
    if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') localActivities += 1;
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    if (fields && attribute in fields)
      return { causeAt: eventMs(e), startedAt, taskStartedAt, workflowTasks, activities, localActivities };
  }
  return null;
}

function payloadOf(p: unknown): unknown {
  try {
    return defaultPayloadConverter.fromPayload(p as never);
  } catch {
    return undefined;
  }
}

export interface LeaseInterval {
  requestId: string;
  from: number;
  to: number | null;
}

/**
 * The leases this run held: from each `lease-notice` of kind `granted` it received (the grant, for request id
 * X) until it signalled `release` for X, was told `expired` for X, or its run ended (`to` null: still held when
 * the history was read).
 */
export function leaseIntervals(events: HistoryEvent[]): LeaseInterval[] {
  const open = new Map<string, number>();
  const out: LeaseInterval[] = [];
  const close = (id: string, at: number) => {
    const from = open.get(id);
    if (from === undefined) return;
    open.delete(id);
    out.push({ requestId: id, from, to: at });
  };
  for (const e of events) {
    const at = eventMs(e);
    const signaled = e.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName === 'lease-notice') {
      const notice = payloadOf(signaled.input?.payloads?.[0]) as
        { kind?: string; requestId?: string } | undefined;
      if (notice?.kind === 'granted' && notice.requestId) open.set(notice.requestId, at);
      if (notice?.kind === 'expired' && notice.requestId) close(notice.requestId, at);
    }
    const sent = e.signalExternalWorkflowExecutionInitiatedEventAttributes;
    if (sent?.signalName === 'release') {
      const body = payloadOf(sent.input?.payloads?.[0]) as { requestId?: string } | undefined;
      if (body?.requestId) close(body.requestId, at);
    }
    if (
      e.workflowExecutionCompletedEventAttributes ||
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes ||
      e.workflowExecutionTimedOutEventAttributes ||
      e.workflowExecutionCanceledEventAttributes ||
      e.workflowExecutionContinuedAsNewEventAttributes
    )
      for (const id of [...open.keys()]) close(id, at);
  }
  for (const [id, from] of open) out.push({ requestId: id, from, to: null });
  return out;
}

/** The most intervals ever overlapping (an interval still open counts until `now`). */
export function maxOverlap(intervals: { from: number; to: number | null }[], now: number): number {
  const points: [number, number][] = [];
  for (const i of intervals) {
    points.push([i.from, 1]);
    points.push([i.to ?? now, -1]);
  }
  // ends before starts at the same instant: a release and the next grant are not both in flight
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of points) {
    cur += d;
    max = Math.max(max, cur);
  }
  return max;
}
