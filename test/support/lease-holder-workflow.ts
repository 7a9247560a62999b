/**
 * A test-only workflow that uses the NodeGroup lease the way a runbook step would: optionally reports its
 * VPSieNode failing, asks for the lease, holds it until told to finish, and releases it (or, playing a crashed
 * holder, never does). It records when it asked, when it was answered and when it let go, in its own workflow
 * time, which is the server's clock as for the lease. Bundled by the test with the lease workflow itself.
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';
import type { NodeGroupRef } from '../../src/runbook/evidence';
import type { FailingVPSieNode, LeasePolicyInput, StormAnswer } from '../../src/runbook/lease';
import {
  acquireLease,
  leaseProgress,
  releaseLease,
  reportFailure,
  stormNotice,
  type AcquireLeaseResult,
  type LeaseProgress,
} from '../../src/workflows/lease-client';

export { nodeGroupLease } from '../../src/workflows/nodegroup-lease';

export interface LeaseHolderInput {
  nodeGroup: NodeGroupRef;
  stepId: string;
  ttlMs: number;
  timeoutMs: number;
  budget?: number;
  policy?: LeasePolicyInput;
  /** Report this VPSieNode failing before asking, as a runbook that found it failed does. */
  failure?: FailingVPSieNode;
  /** true: a holder that crashed: it never releases (it still finishes when told). */
  neverRelease?: boolean;
}

export interface LeaseHolderRecord {
  askedAt: string | null;
  answeredAt: string | null;
  answer: AcquireLeaseResult | null;
  /** When it stopped using the lease and sent the release; null while it holds (or if it never releases). */
  releasedAt: string | null;
  /** Where its lease stands as far as it has been told ('expired' once the lease took it back). */
  lease: LeaseProgress | null;
  /** The answer to its failure report (the storm the group was in once it was counted); null without one. */
  reported: StormAnswer | null;
  /** The storm it has been told of by any notice, so far. */
  storm: StormAnswer | null;
}

export const holderQuery = defineQuery<LeaseHolderRecord>('holder');
export const finishSignal = defineSignal('finish');

export async function leaseHolderWorkflow(input: LeaseHolderInput): Promise<LeaseHolderRecord> {
  const record: LeaseHolderRecord = {
    askedAt: null,
    answeredAt: null,
    answer: null,
    releasedAt: null,
    lease: null,
    reported: null,
    storm: null,
  };
  let finish = false;
  const view = (): LeaseHolderRecord => ({
    ...record,
    lease: record.answer?.granted ? leaseProgress(record.answer.leaseId) : null,
    storm: stormNotice(),
  });
  setHandler(holderQuery, view);
  setHandler(finishSignal, () => {
    finish = true;
  });
  if (input.failure)
    record.reported = await reportFailure({
      nodeGroup: input.nodeGroup,
      vpsieNode: input.failure,
      ...(input.policy === undefined ? {} : { policy: input.policy }),
    });
  record.askedAt = new Date().toISOString();
  record.answer = await acquireLease({
    nodeGroup: input.nodeGroup,
    holder: { stepId: input.stepId },
    ttlMs: input.ttlMs,
    timeoutMs: input.timeoutMs,
    ...(input.budget === undefined ? {} : { budget: input.budget }),
    ...(input.policy === undefined ? {} : { policy: input.policy }),
  });
  record.answeredAt = new Date().toISOString();
  if (!record.answer.granted) return view();
  await condition(() => finish);
  if (!input.neverRelease) {
    record.releasedAt = new Date().toISOString();
    await releaseLease({ nodeGroup: input.nodeGroup, leaseId: record.answer.leaseId });
  }
  return view();
}
