/**
 * The sending side of the NodeGroup lease: a workflow cannot signal-with-start another workflow itself, so these
 * activities do it for the runbook. Each call is one signal-with-start of `nodegroup-lease/<namespace>/<name>` on
 * the worker's own task queue: it signals the open lease workflow, or starts one (the first request of an idle
 * group). A retried attempt may deliver its signal twice; the lease drops a request it already has, and counts a
 * VPSieNode's failure once however often it is reported.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { NodeGroupRef } from '../runbook/evidence';
import { InvalidInputError } from '../runbook/input';
import {
  leaseWorkflowId,
  resolveLeasePolicy,
  validateFailureReport,
  validateLeaseRequest,
  validateNodeGroupRef,
  type FailureReport,
  type LeasePolicyInput,
  type LeaseRequest,
} from '../runbook/lease';
import { leaseFailureSignal, leaseRequestSignal, type nodeGroupLease } from '../workflows/nodegroup-lease';

export interface LeaseRequestInput {
  nodeGroup: NodeGroupRef;
  request: LeaseRequest;
  /** Used only when this signal starts the lease workflow; an open one keeps its own. */
  policy?: LeasePolicyInput;
}

export interface FailureReportInput {
  nodeGroup: NodeGroupRef;
  report: FailureReport;
  /** As for a request. */
  policy?: LeasePolicyInput;
}

/** The lease run that received the signal. */
export interface LeaseSignalled {
  workflowId: string;
  runId: string;
}

/** Input that can never succeed fails at once, naming the field. */
function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
}

/** The policy as given (the lease workflow resolves it), once it is known to be valid. */
function checkedPolicy(policy: unknown): LeasePolicyInput | undefined {
  if (policy === undefined) return undefined;
  resolveLeasePolicy(policy);
  return policy as LeasePolicyInput;
}

/**
 * `client`: a Temporal client for the lease's namespace; unset, the worker's own (the activity context's), so the
 * worker needs no other connection.
 */
export function createLeaseActivities(client?: Client) {
  const send = async (
    nodeGroup: NodeGroupRef,
    policy: LeasePolicyInput | undefined,
    signal: typeof leaseRequestSignal | typeof leaseFailureSignal,
    payload: LeaseRequest | FailureReport,
  ): Promise<LeaseSignalled> => {
    const ctx = Context.current();
    const workflowId = leaseWorkflowId(nodeGroup);
    const handle = await (client ?? ctx.client).workflow.signalWithStart<
      typeof nodeGroupLease,
      [LeaseRequest | FailureReport]
    >('nodeGroupLease', {
      workflowId,
      taskQueue: ctx.info.taskQueue,
      args: [{ nodeGroup, ...(policy ? { policy } : {}) }],
      signal: signal.name,
      signalArgs: [payload],
      staticSummary: `Blast-radius lease of NodeGroup ${nodeGroup.namespace}/${nodeGroup.name}`,
    });
    return { workflowId, runId: handle.signaledRunId };
  };

  return {
    /** Asks for the NodeGroup's lease; the answer is signalled to the requesting run (`lease-notice`). */
    async requestNodeGroupLease(input: LeaseRequestInput): Promise<LeaseSignalled> {
      const { nodeGroup, request, policy } = checked(() => ({
        nodeGroup: validateNodeGroupRef(input?.nodeGroup),
        request: validateLeaseRequest(input?.request),
        policy: checkedPolicy(input?.policy),
      }));
      return send(nodeGroup, policy, leaseRequestSignal, request);
    },

    /** Tells the NodeGroup's lease that one of its VPSieNodes failed (the storm count). */
    async reportNodeGroupFailure(input: FailureReportInput): Promise<LeaseSignalled> {
      const { nodeGroup, report, policy } = checked(() => ({
        nodeGroup: validateNodeGroupRef(input?.nodeGroup),
        report: validateFailureReport(input?.report),
        policy: checkedPolicy(input?.policy),
      }));
      return send(nodeGroup, policy, leaseFailureSignal, report);
    },
  };
}
