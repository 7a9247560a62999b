import {
  ApplicationFailure,
  defineQuery,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RunbookActivities } from '../activities';
import { formatDuration, InvalidInputError } from '../runbook';
import {
  approvalTargetOf,
  describeSweep,
  orphanStepId,
  ORPHAN_STEP_KIND,
  resolveOrphanSweepInput,
  sweepOutcome,
  TERMINATE_ALL_STEP,
  type MachineVerdict,
  type OrphanMachine,
  type OrphanSweepInput,
  type OrphanSweepOutcome,
  type OrphanSweepReport,
  type OrphanSweepStage,
  type OrphanSweepStatus,
  type RemovedMachine,
  type ResolvedOrphanSweepInput,
} from '../runbook/orphans';
import { createApprovalGate, type ApprovalResult } from './approval';
import { acquireLease, releaseLease } from './lease-client';
import { createAnnouncer } from './announcements';
import { removeClusterNode, stepFailure, terminateVM } from './reads';
import {
  APPROVAL_MEMO_PATCH,
  writePendingApprovalMemo,
  writeSearchAttributes,
} from './search-attribute-writes';
import * as sa from './search-attributes';

/** The sweep's `status` query: the same name as the runbook's, with the sweep's fields. */
export const orphanSweepStatusQuery = defineQuery<OrphanSweepStatus>('status');

/** The one read: cluster and VPSie lists can take a while, so two minutes per attempt, as the evidence has. */
const { findOrphanedMachines } = proxyActivities<RunbookActivities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
  },
});

/** What a removal's own re-check refuses with: the machine is not (or no longer) safe to remove. */
const REFUSALS = ['MachineClaimed', 'VMPreconditionFailed', 'ClusterNodePreconditionFailed'];

/** A removal not made because its NodeGroup's lease was refused (a storm) or not granted in time. */
class LeaseNotGranted extends Error {}

/** Longest a removal holds its NodeGroup's lease: one delete and its re-check take seconds. */
const REMOVAL_LEASE_TTL_MS = 5 * 60_000;
/** How long a removal waits for the lease while the runbook replaces another node of the group. */
const REMOVAL_LEASE_WAIT_MS = 60 * 60_000;

/**
 * Every removal holds the lease of the NodeGroup its hostname names, like the runbook's destructive acts, so a
 * sweep never removes a machine of a group while a node of it is being replaced, nor during a storm. A cluster
 * machine named after no NodeGroup has no lease to take: its removal re-checks its claims and goes on.
 */
async function underRemovalLease<T>(machine: OrphanMachine, remove: () => Promise<T>): Promise<T> {
  const nodeGroup = machine.nodeGroup;
  if (!nodeGroup) return remove();
  const lease = await acquireLease({
    nodeGroup,
    holder: { stepId: orphanStepId(machine) },
    ttlMs: REMOVAL_LEASE_TTL_MS,
    timeoutMs: REMOVAL_LEASE_WAIT_MS,
  });
  if (!lease.granted)
    throw new LeaseNotGranted(
      lease.why === 'storm'
        ? `NodeGroup ${nodeGroup.namespace}/${nodeGroup.name} is in a storm (${lease.storm.count} failures within ${lease.storm.window}): nothing of it is removed`
        : `NodeGroup ${nodeGroup.namespace}/${nodeGroup.name}'s lease was not granted within ${REMOVAL_LEASE_WAIT_MS / 60_000} min`,
    );
  try {
    return await remove();
  } finally {
    await releaseLease({ nodeGroup, leaseId: lease.leaseId });
  }
}

/**
 * The orphaned-VM sweep: finds the machines of this cluster in VPSie that no VPSieNode or Node claims and that
 * are older than the grace period, asks a person to approve their removal (one at a time, or all at once), and
 * removes each approved one the way the autoscaler does (`DELETE …/delete/slave` for a cluster's machine,
 * `DELETE /vm/{id}` for a VM), each removal re-checking right before its delete that nothing claims the machine.
 * Ends with a report of what was removed, kept, refused and failed, and why. Runs on demand or from the
 * Temporal Schedule `orphaned-vm-cleanup` (src/temporal/orphan-schedule.ts).
 */
export async function orphanedVmCleanup(input: OrphanSweepInput = {}): Promise<OrphanSweepReport> {
  let options: ResolvedOrphanSweepInput;
  try {
    options = resolveOrphanSweepInput(input);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const approvalMemo = patched(APPROVAL_MEMO_PATCH);
  const now = (): string => new Date().toISOString();
  const own: Omit<OrphanSweepStatus, 'pendingApproval' | 'decisions' | 'refusedDecisions'> = {
    stage: 'finding',
    startedAt: now(),
    finishedAt: null,
    graceMs: options.graceMs,
    grace: formatDuration(options.graceMs),
    mode: options.mode,
    dryRun: options.dryRun,
    approvers: [...options.allowList],
    candidates: [],
    removed: [],
    kept: [],
    refused: [],
    failed: [],
    notes: [],
    current: null,
    outcome: null,
    error: null,
  };
  const view = (): OrphanSweepStatus => {
    const { pendingApproval, decisions, refusedDecisions } = gate.state();
    return { ...own, pendingApproval, decisions, refusedDecisions };
  };
  const show = (): void => setCurrentDetails(describeSweep(view(), workflowInfo().workflowId));
  const enter = (stage: OrphanSweepStage): void => {
    if (own.stage === stage) return;
    own.stage = stage;
    writeSearchAttributes([{ key: sa.RunbookStage, value: stage }]);
  };

  const announcer = createAnnouncer(null, options.allowList);
  const gate = createApprovalGate({
    allowList: options.allowList,
    ttlMs: options.approvalTtlMs,
    autoApprove: [],
    onPendingChange: (pending) => {
      enter(pending ? 'awaiting-approval' : 'removing');
      writeSearchAttributes([{ key: sa.ApprovalPending, value: pending !== null }]);
      if (approvalMemo) writePendingApprovalMemo(pending);
      show();
      // Tell the approval channels, as the runbook does (a sweep is about no VPSieNode: ref null).
      if (pending) announcer.announce(pending);
    },
  });
  setHandler(orphanSweepStatusQuery, view);
  writeSearchAttributes([
    { key: sa.RunbookStage, value: own.stage },
    { key: sa.ApprovalPending, value: false },
  ]);
  show();

  let expired = false;
  let rejected = 0;
  const finish = async (outcome: OrphanSweepOutcome): Promise<OrphanSweepReport> => {
    Object.assign(own, { stage: 'completed', finishedAt: now(), outcome, current: null });
    writeSearchAttributes([
      { key: sa.RunbookStage, value: 'completed' },
      { key: sa.RunbookOutcome, value: outcome },
    ]);
    show();
    log.info('orphaned-VM sweep ended', {
      outcome,
      removed: own.removed.length,
      kept: own.kept.length,
      refused: own.refused.length,
      failed: own.failed.length,
    });
    await announcer.settle();
    const v = view();
    return {
      startedAt: v.startedAt,
      finishedAt: v.finishedAt,
      graceMs: v.graceMs,
      grace: v.grace,
      mode: v.mode,
      dryRun: v.dryRun,
      approvers: v.approvers,
      candidates: v.candidates,
      removed: v.removed,
      kept: v.kept,
      refused: v.refused,
      failed: v.failed,
      notes: v.notes,
      decisions: v.decisions,
      refusedDecisions: v.refusedDecisions,
      outcome: v.outcome,
      error: v.error,
    };
  };

  try {
    const scan = await findOrphanedMachines.executeWithOptions(
      { summary: `Find this cluster's machines in VPSie that nothing claims, older than ${own.grace}` },
      [{ graceMs: options.graceMs }],
    );
    Object.assign(own, { candidates: scan.candidates, kept: [...scan.kept], notes: scan.notes });
  } catch (err) {
    const error = stepFailure(err);
    own.error = { step: error.step, type: error.type, message: error.message };
    return finish('ReadFailed');
  }
  const candidates = own.candidates.map((c) => c.machine);
  const outcome = (): OrphanSweepOutcome =>
    sweepOutcome({ dryRun: options.dryRun, candidates, removed: own.removed, expired, rejected });
  if (options.dryRun || candidates.length === 0) return finish(outcome());

  /** Who decided a step, for the report: "rejected by alice: too early". */
  const decisionOn = (stepId: string): string => {
    const d = gate
      .state()
      .decisions.filter((x) => x.accepted && x.stepId === stepId)
      .at(-1);
    return d
      ? `${d.decision === 'approve' ? 'approved' : 'rejected'} by ${d.approver}${d.reason ? `: ${d.reason}` : ''}`
      : '';
  };
  const keep = (machine: OrphanMachine, why: string): void => {
    own.kept.push({ machine, why });
  };
  const notApproved = (machine: OrphanMachine, stepId: string, result: ApprovalResult): void => {
    if (result === 'rejected') {
      rejected += 1;
      keep(machine, `removal ${decisionOn(stepId)}`);
    } else {
      expired = true;
      keep(machine, `nobody approved ${stepId} within ${formatDuration(options.approvalTtlMs)}`);
    }
  };

  /** Removes one approved machine; a refusal or failure is reported and the sweep goes on. */
  const remove = async (machine: OrphanMachine): Promise<void> => {
    own.current = machine;
    enter('removing');
    show();
    const name = machine.hostname || machine.identifier;
    try {
      const result = await underRemovalLease(machine, () =>
        machine.kind === 'cluster-node'
          ? removeClusterNode.executeWithOptions(
              {
                summary: `Manual VM Cleanup: remove ${name} from VPSie cluster ${machine.resourceIdentifier}`,
              },
              [
                {
                  resourceIdentifier: machine.resourceIdentifier as string,
                  identifier: machine.identifier,
                  hostname: machine.hostname,
                  nodeGroup: machine.nodeGroup?.name ?? null,
                },
              ],
            )
          : terminateVM.executeWithOptions(
              { summary: `Manual VM Cleanup: terminate VM ${machine.id} (${name})` },
              [
                {
                  id: machine.id,
                  identifier: machine.identifier,
                  nodeGroup: machine.nodeGroup?.name ?? null,
                },
              ],
            ),
      );
      const removed: RemovedMachine = { machine, result, at: now() };
      own.removed.push(removed);
    } catch (err) {
      if (err instanceof LeaseNotGranted) {
        own.refused.push({ machine, why: err.message });
        own.current = null;
        show();
        return;
      }
      const error = stepFailure(err);
      const verdict: MachineVerdict = { machine, why: `${error.type}: ${error.message}` };
      if (REFUSALS.includes(error.type)) own.refused.push(verdict);
      else own.failed.push(verdict);
      log.warn('orphan not removed', {
        identifier: machine.identifier,
        type: error.type,
        message: error.message,
      });
    }
    own.current = null;
    show();
  };

  if (options.mode === 'all') {
    const result = await gate.request(
      {
        stepId: TERMINATE_ALL_STEP,
        kind: ORPHAN_STEP_KIND,
        target: candidates.map(approvalTargetOf),
        action: `Remove these ${candidates.length} machines from VPSie; each is re-checked right before its delete`,
      },
      {
        summary: `${TERMINATE_ALL_STEP}: wait for a person to approve removing ${candidates.length} orphaned machines`,
      },
    );
    if (result === 'approved') for (const m of candidates) await remove(m);
    else for (const m of candidates) notApproved(m, TERMINATE_ALL_STEP, result);
    return finish(outcome());
  }

  for (const [i, machine] of candidates.entries()) {
    const stepId = orphanStepId(machine);
    const result = await gate.request(
      {
        stepId,
        kind: ORPHAN_STEP_KIND,
        target: approvalTargetOf(machine),
        action: `Remove ${machine.hostname || machine.identifier} from VPSie (${own.candidates[i].why})`,
      },
      {
        summary: `${stepId}: wait for a person to approve removing ${machine.hostname || machine.identifier}`,
      },
    );
    if (result === 'approved') {
      await remove(machine);
      continue;
    }
    notApproved(machine, stepId, result);
    if (result !== 'rejected') {
      // Nobody is answering: ask no more in this run; the next sweep offers the rest again.
      for (const rest of candidates.slice(i + 1))
        keep(rest, `not asked: nobody approved ${stepId} in time, so this run stopped asking`);
      break;
    }
  }
  return finish(outcome());
}
