/**
 * Announcing a pending approval on the approval channels (activity `announceApproval`) without waiting for it,
 * and, at a run's end, waiting for the announcements still on their way. A decision that ends a run would
 * otherwise complete it in the same workflow task in which an announcement's result arrives; the server refuses
 * that completion (UnhandledCommand), and the update that carried the decision fails for the person who sent it.
 */
import { condition, isCancellation, log, workflowInfo } from '@temporalio/workflow';
import type { PendingApproval, VPSieNodeRef } from '../runbook';
import { announceApproval, stepFailure } from './reads';

/** At most one attempt of `announceApproval` (its start-to-close timeout): a run's end never waits longer. */
export const ANNOUNCEMENT_SETTLE_MS = 60_000;

export interface Announcer {
  /** Posts the pending approval; a failure is only logged (the approval still waits; `status` shows it). */
  announce(pending: PendingApproval): void;
  /** Resolves once no announcement is on its way (at most {@link ANNOUNCEMENT_SETTLE_MS}); adds nothing otherwise. */
  settle(): Promise<void>;
}

/** `ref`: the VPSieNode the approvals are about; null for the orphaned-VM sweep. */
export function createAnnouncer(ref: VPSieNodeRef | null, approvers: readonly string[]): Announcer {
  let inFlight = 0;
  return {
    announce(pending) {
      inFlight += 1;
      void announceApproval
        .executeWithOptions({ summary: `announce: ${pending.stepId} waits for approval` }, [
          {
            workflowId: workflowInfo().workflowId,
            ref,
            stepId: pending.stepId,
            kind: pending.kind,
            target: pending.target,
            action: pending.action ?? null,
            expiresAt: pending.expiresAt,
            approvers: [...approvers],
          },
        ])
        .catch((err: unknown) => {
          // a cancelled run is ending anyway
          if (isCancellation(err)) return;
          log.warn('could not announce the approval', { stepId: pending.stepId, ...stepFailure(err) });
        })
        .finally(() => {
          inFlight -= 1;
        });
    },
    async settle() {
      if (inFlight > 0) await condition(() => inFlight === 0, ANNOUNCEMENT_SETTLE_MS);
    },
  };
}
