/**
 * Runs a plan (src/runbook/plan.ts) step by step: asks for approval before every destructive step, acts through
 * activities that check their preconditions again, and verifies with durable waits. Workflow code: decisions
 * about what a look means are in src/runbook/verify.ts.
 */
import {
  ActivityCancellationType,
  CancellationScope,
  isCancellation,
  log,
  sleep,
} from '@temporalio/workflow';
import {
  clusterNodeGone,
  describeTarget,
  describeVanished,
  findReplacement,
  NODEGROUP_LABEL,
  registrationState,
  registrationTargetOf,
  replacementState,
  targetState,
  vmGone,
  type EscalationKind,
  type PlanStepStatus,
  type RunbookError,
  type RunbookOutcome,
  type RunbookStatus,
  type VPSieNodeRef,
} from '../runbook';
import type { NodeGroupRef } from '../runbook/evidence';
import type { LeasePolicyInput, StormAnswer } from '../runbook/lease';
import type { ApprovalGate } from './approval';
import { acquireLease, releaseLease, stormNotice } from './lease-client';
import {
  checkNodeRegistration,
  checkVM,
  checkVPSieNode,
  deleteVPSieNode,
  forceNodeGroupReconciliation,
  listClusterNodes,
  listVPSieNodes,
  removeClusterNode,
  setNodeGroupKubernetesVersion,
  stepFailure,
  terminateVM,
} from './reads';

/**
 * Looks per wait, at most: the interval grows (1 s, 2 s, 4 s, … up to the recheck interval) and is never shorter
 * than a wait's length / MAX_LOOKS_PER_WAIT, so a long wait stays a few hundred history events.
 */
export const MAX_LOOKS_PER_WAIT = 120;

/** How a plan ends: an outcome, or an escalation that the caller hands to people. */
export type Ending =
  | { outcome: Exclude<RunbookOutcome, 'Escalated'>; why: string }
  | {
      escalate: EscalationKind;
      why: string;
      step: string | null;
      error?: RunbookError;
      /** With `storm`: the group's count; only the run told `first` hands the group to people. */
      storm?: StormAnswer;
    };

/** The NodeGroup's lease (src/workflows/nodegroup-lease.ts): every destructive act holds it. */
export interface PlanLease {
  nodeGroup: NodeGroupRef;
  /** Longest a lease is held: the act and the waits that verify it. A crashed holder loses it after this. */
  ttlMs: number;
  /** How long to wait for it while another node of the group is being replaced. */
  timeoutMs: number;
  /** The group's policy (budget, storm threshold and window), when the run's input gives one. */
  policy: LeasePolicyInput | null;
}

export interface PlanRun {
  ref: VPSieNodeRef;
  status: RunbookStatus;
  gate: ApprovalGate;
  recheckIntervalMs: number;
  /** While a step waits for a person: how often to look whether its target is still there. */
  approvalRecheckIntervalMs: number;
  /** How long each kind of wait may last from when it starts (the plan's own deadlines assume it starts now). */
  waits: { goneWaitMs: number; replacementWaitMs: number; readyWaitMs: number };
  /** Called whenever status changes in a way the UI should show. */
  changed(): void;
  /** null: a VPSieNode whose NodeGroup does not exist (nothing to lease: the plan only escalates). */
  lease: PlanLease | null;
}

type StepResult = { done: string } | { expired: string } | { end: Ending };

const nowIso = (): string => new Date().toISOString();

export async function executePlan(run: PlanRun): Promise<Ending> {
  const { status, ref } = run;
  const stepById = (id: string) => status.plan.find((s) => s.id === id);
  /** The group's members when the delete was sent: the replacement is a UID not among them. */
  let knownBefore: string[] = [];
  let deletedAt: number | null = null;
  /** The NodeGroup lease this run holds, from a destructive act until the next approval or the plan's end. */
  let held: string | null = null;

  const release = async (): Promise<void> => {
    if (!held || !run.lease) return;
    const leaseId = held;
    held = null;
    await releaseLease({ nodeGroup: run.lease.nodeGroup, leaseId });
  };

  const group = run.lease ? `${run.lease.nodeGroup.namespace}/${run.lease.nodeGroup.name}` : '';
  const stormWhy = (st: StormAnswer): string =>
    `${st.count} VPSieNodes of NodeGroup ${group} failed within ${st.window} (more than ${st.threshold}) since ${st.since}: remediation is stopped for the whole group; a person must find the common cause (${st.vpsieNodes.join(', ')}).`;
  /** The group is in a storm: this step is not done, and the run hands the group to people. */
  const stormEnding = (step: PlanStepStatus, st: StormAnswer, result: 'failed' | 'skipped'): StepResult => {
    set(step, { state: result, endedAt: nowIso(), result: 'not done: NodeGroup storm' });
    return { end: { escalate: 'storm', step: step.id, why: stormWhy(st), storm: st } };
  };
  /** A storm this run has been told of; only with a lease (the storm is the leased group's). */
  const storm = (): StormAnswer | null => (run.lease ? stormNotice() : null);

  /** Takes the NodeGroup's lease before a destructive act: one act per NodeGroup at a time (issue 8). */
  const takeLease = async (step: PlanStepStatus): Promise<StepResult | null> => {
    const lease = run.lease;
    // approve() has just given back any lease held before it, so this always asks anew
    if (!lease) return null;
    const answer = await acquireLease({
      nodeGroup: lease.nodeGroup,
      holder: { stepId: step.id },
      ttlMs: lease.ttlMs,
      timeoutMs: lease.timeoutMs,
      ...(lease.policy ? { policy: lease.policy } : {}),
    });
    if (answer.granted) {
      held = answer.leaseId;
      return null;
    }
    // approved, then refused: the step was under way and did not happen
    if (answer.why === 'storm') return stormEnding(step, stormNotice() ?? answer.storm, 'failed');
    set(step, { state: 'failed', endedAt: nowIso(), result: 'not done: lease not granted in time' });
    return {
      end: {
        escalate: 'lease-timeout',
        step: step.id,
        why: `NodeGroup ${group}'s lease was not granted within ${Math.round(lease.timeoutMs / 60_000)} min (other nodes of the group are being replaced); ${step.id} was not done.`,
      },
    };
  };

  const set = (step: PlanStepStatus, patch: Partial<PlanStepStatus>): void => {
    Object.assign(step, patch);
    run.changed();
  };

  /** Looks until `look` answers or the step's deadline passes. */
  const waitFor = async (
    step: PlanStepStatus,
    untilMs: number,
    look: () => Promise<StepResult | null>,
  ): Promise<StepResult | 'expired'> => {
    set(step, { wait: { ...step.wait!, until: new Date(untilMs).toISOString() } });
    const floor = Math.max(0, untilMs - Date.now()) / MAX_LOOKS_PER_WAIT;
    for (let n = 0; ; n++) {
      const r = await look();
      if (r) return r;
      const left = untilMs - Date.now();
      if (left <= 0) return 'expired';
      const delay = Math.min(left, Math.max(floor, Math.min(1000 * 2 ** n, run.recheckIntervalMs)));
      await sleep(delay, { summary: `${step.id}: look again` });
    }
  };

  /** The VPSieNode as diagnosed, vanished: the run ends cleanly, having done nothing more. */
  const vanishedEnding = async (summary: string): Promise<Ending | null> => {
    const uid = status.plan.find((s) => s.target.kind === 'VPSieNode')?.target;
    if (!uid || uid.kind !== 'VPSieNode') return null;
    // Cancelled when a decision arrives: the run goes on only once the read has answered, so that its result
    // cannot reach the server in the workflow task that completes the run (refused, failing the decision's update).
    const now = targetState(
      await checkVPSieNode.executeWithOptions(
        { summary, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED },
        [ref],
      ),
      uid.uid,
    );
    const why = describeVanished(now, `${ref.namespace}/${ref.name}`);
    return why ? { outcome: 'VPSieNodeGone', why } : null;
  };

  /**
   * Asks for approval of a destructive step. While it waits, the VPSieNode is watched: if it vanishes (the
   * controller removes Failed VPSieNodes after 30 minutes) the request is dropped and the run ends.
   */
  const approve = async (step: PlanStepStatus): Promise<StepResult | null> => {
    // Never hold the group's lease while a person thinks: other nodes of the group may need it.
    await release();
    set(step, { state: 'awaiting-approval' });
    let vanished: Ending | null = null;
    // Only while the VPSieNode diagnosed is still there to vanish: not after our own delete, nor when it was gone.
    const watchTarget = deletedAt === null && status.cause !== 'VPSieNodeGone';
    const watcher = new CancellationScope();
    const watching = watchTarget
      ? watcher
          .run(async () => {
            for (;;) {
              await sleep(run.approvalRecheckIntervalMs, {
                summary: `${step.id}: is the target still there?`,
              });
              // A read that fails through its retries is no news: keep waiting for the person.
              vanished = await vanishedEnding(
                `${step.id}: re-read the target while waiting for approval`,
              ).catch((err: unknown) => {
                if (isCancellation(err)) throw err;
                return null;
              });
              if (vanished) return;
            }
          })
          .catch((err: unknown) => {
            if (!isCancellation(err)) throw err;
          })
      : Promise.resolve();
    const answer = await run.gate.request(
      { stepId: step.id, kind: step.kind, target: step.target, action: step.why },
      {
        // a storm that begins while a person thinks: nobody should approve a delete in this group now
        abandon: () => vanished !== null || storm() !== null,
        summary: `${step.id}: wait for a person to approve ${describeTarget(step.target)}`,
      },
    );
    watcher.cancel();
    await watching;
    switch (answer) {
      case 'approved':
        set(step, { state: 'running' });
        return takeLease(step);
      case 'rejected': {
        const d = run.gate
          .state()
          .decisions.filter((x) => x.accepted && x.stepId === step.id)
          .at(-1);
        set(step, {
          state: 'rejected',
          endedAt: nowIso(),
          result: `rejected by ${d?.approver ?? 'someone'}`,
        });
        return {
          end: {
            outcome: 'Rejected',
            why: `${d?.approver ?? 'someone'} rejected ${step.id}${d?.reason ? `: ${d.reason}` : ''}`,
          },
        };
      }
      case 'expired':
        set(step, { state: 'expired', endedAt: nowIso(), result: 'nobody decided in time' });
        return {
          end: {
            escalate: 'approval-expired',
            step: step.id,
            why: `Nobody approved or rejected ${step.id} (${describeTarget(step.target)}) in time; nothing was done.`,
          },
        };
      case 'abandoned': {
        const st = storm();
        if (st && !vanished) return stormEnding(step, st, 'skipped');
        // Says whether the target is gone or was replaced: the report carries no other line about it.
        set(step, {
          state: 'skipped',
          endedAt: nowIso(),
          result: (vanished as Ending | null)?.why ?? 'the target vanished',
        });
        return { end: vanished! };
      }
    }
  };

  /** An act that failed for good: a changed target is reported as such, anything else as a failed step. */
  const failed = (step: PlanStepStatus, err: unknown): StepResult => {
    const error = stepFailure(err);
    set(step, { state: 'failed', endedAt: nowIso(), result: `${error.type}: ${error.message}` });
    const changedTarget = /PreconditionFailed|MachineClaimed/.test(error.type);
    return {
      end: {
        escalate: changedTarget ? 'precondition-failed' : 'step-failed',
        step: step.id,
        why: changedTarget
          ? `${step.id} was refused because the target changed after the diagnosis: ${error.message}`
          : `${step.id} failed: ${error.type}: ${error.message}`,
        error,
      },
    };
  };

  const runStep = async (step: PlanStepStatus): Promise<StepResult> => {
    const t = step.target;
    switch (step.kind) {
      case 'escalate':
        return { end: { escalate: 'cause', step: step.id, why: step.why } };

      case 'wait-node-registration': {
        if (t.kind !== 'VPSieNode') break;
        const r = await waitFor(step, Date.parse(step.wait!.until), async () => {
          const raw = await checkVPSieNode.executeWithOptions({ summary: `${step.id}: check VPSieNode` }, [
            ref,
          ]);
          const now = targetState(raw, t.uid);
          if (now.kind !== 'present') {
            const why = describeVanished(now, `${ref.namespace}/${ref.name}`) ?? 'it is being deleted';
            return { end: { outcome: 'VPSieNodeGone', why } };
          }
          const reg = await checkNodeRegistration.executeWithOptions(
            { summary: `${step.id}: check Node registration` },
            [registrationTargetOf(now.node)],
          );
          const state = registrationState(now.node, reg);
          if (state.kind === 'recovered') return { end: { outcome: 'Recovered', why: state.why } };
          return state.kind === 'given-up' ? { expired: state.why } : null;
        });
        return r === 'expired' ? { expired: 'the Node did not register in time' } : r;
      }

      case 'patch-nodegroup-version': {
        if (t.kind !== 'NodeGroup' || !t.change) break;
        const gate = await approve(step);
        if (gate) return gate;
        try {
          const r = await setNodeGroupKubernetesVersion.executeWithOptions(
            { summary: `${step.id}: ${t.change.from} → ${t.change.to}` },
            [
              { namespace: t.namespace, name: t.name },
              { from: t.change.from, to: t.change.to, ...(t.uid ? { uid: t.uid } : {}) },
            ],
          );
          return { done: r.outcome === 'updated' ? `set to ${t.change.to}` : `already ${t.change.to}` };
        } catch (err) {
          return failed(step, err);
        }
      }

      case 'delete-vpsienode': {
        if (t.kind !== 'VPSieNode') break;
        const gate = await approve(step);
        if (gate) return gate;
        try {
          const replacement = status.plan.find((s) => s.target.kind === 'Replacement')?.target;
          if (replacement?.kind === 'Replacement') {
            const members = await listVPSieNodes.executeWithOptions(
              { summary: `${step.id}: list NodeGroup ${replacement.nodeGroup.name}'s VPSieNodes` },
              [t.namespace, `${NODEGROUP_LABEL}=${replacement.nodeGroup.name}`],
            );
            knownBefore = members.map((m) => m.uid);
          }
          const r = await deleteVPSieNode.executeWithOptions(
            { summary: `${step.id}: delete ${t.namespace}/${t.name} uid ${t.uid}` },
            [{ namespace: t.namespace, name: t.name }, { uid: t.uid }],
          );
          deletedAt = Date.now();
          if (r.outcome === 'already-gone')
            return {
              end: {
                outcome: 'VPSieNodeGone',
                why: `VPSieNode ${t.namespace}/${t.name} was already gone when the approved delete ran`,
              },
            };
          return {
            done:
              r.outcome === 'deleted'
                ? `deleted; waiting on finalizers ${r.pendingFinalizers.join(', ') || '(none)'}`
                : 'already being deleted',
          };
        } catch (err) {
          return failed(step, err);
        }
      }

      case 'wait-machine-gone': {
        const until = (deletedAt ?? Date.now()) + run.waits.goneWaitMs;
        const r = await waitFor(step, until, async () => {
          if (t.kind === 'VM') {
            const vm = await checkVM.executeWithOptions({ summary: `${step.id}: check VM ${t.id}` }, [t.id]);
            return vmGone(vm, t.identifier) ? { done: `VM ${t.id} is gone` } : null;
          }
          if (t.kind === 'ClusterNode') {
            const nodes = await listClusterNodes.executeWithOptions(
              { summary: `${step.id}: list cluster ${t.resourceIdentifier}'s nodes` },
              [t.resourceIdentifier],
            );
            return clusterNodeGone(nodes, t.identifier)
              ? { done: `cluster node ${t.identifier} is gone` }
              : null;
          }
          return { done: 'no machine to wait for' };
        });
        return r === 'expired' ? { expired: `${describeTarget(t)} still exists` } : r;
      }

      case 'wait-vpsienode-gone': {
        if (t.kind !== 'VPSieNode') break;
        const until = (deletedAt ?? Date.now()) + run.waits.goneWaitMs;
        const r = await waitFor(step, until, async () => {
          const now = targetState(
            await checkVPSieNode.executeWithOptions({ summary: `${step.id}: check VPSieNode` }, [ref]),
            t.uid,
          );
          if (now.kind === 'gone' || now.kind === 'replaced') return { done: `uid ${t.uid} is gone` };
          return null;
        });
        return r === 'expired'
          ? { expired: `VPSieNode ${t.namespace}/${t.name} is still there (finalizers)` }
          : r;
      }

      case 'reconcile-trigger': {
        if (t.kind !== 'NodeGroup') break;
        try {
          const at = Math.floor(Date.now() / 1000);
          await forceNodeGroupReconciliation.executeWithOptions(
            { summary: `${step.id}: annotate NodeGroup ${t.name} reconcile-trigger=${at}` },
            [{ namespace: t.namespace, name: t.name }, at],
          );
          return { done: `reconcile-trigger=${at}` };
        } catch (err) {
          return failed(step, err);
        }
      }

      case 'wait-replacement': {
        if (t.kind !== 'Replacement') break;
        const r = await waitFor(step, Date.now() + run.waits.replacementWaitMs, async () => {
          const members = await listVPSieNodes.executeWithOptions(
            { summary: `${step.id}: list NodeGroup ${t.nodeGroup.name}'s VPSieNodes` },
            [t.nodeGroup.namespace, `${NODEGROUP_LABEL}=${t.nodeGroup.name}`],
          );
          const found = findReplacement(members, t.replaces.uid, knownBefore);
          if (!found) return null;
          status.replacement = { namespace: found.namespace, name: found.name, uid: found.uid };
          return { done: `replacement ${found.namespace}/${found.name} (uid ${found.uid})` };
        });
        return r === 'expired'
          ? { expired: `NodeGroup ${t.nodeGroup.name} created no replacement in time` }
          : r;
      }

      case 'wait-replacement-ready': {
        const replacement = status.replacement;
        if (!replacement) break;
        const r = await waitFor(step, Date.now() + run.waits.readyWaitMs, async () => {
          const now = replacementState(
            await checkVPSieNode.executeWithOptions(
              { summary: `${step.id}: check VPSieNode ${replacement.name}` },
              [{ namespace: replacement.namespace, name: replacement.name }],
            ),
            replacement.uid,
          );
          switch (now.kind) {
            case 'ready':
              return {
                done: `${replacement.namespace}/${replacement.name} (uid ${replacement.uid}) is Ready`,
              };
            case 'waiting':
              return null;
            case 'failed':
              return {
                end: {
                  escalate: 'step-failed',
                  step: step.id,
                  why: `The replacement ${replacement.name} failed too (${now.why}): recreating did not help.`,
                },
              };
            case 'gone':
              return {
                end: {
                  escalate: 'step-failed',
                  step: step.id,
                  why: `The replacement ${replacement.name} (uid ${replacement.uid}) was deleted before it became Ready.`,
                },
              };
          }
        });
        return r === 'expired'
          ? { expired: `the replacement ${replacement.name} did not become Ready in time` }
          : r;
      }

      case 'terminate-machine': {
        if (t.kind !== 'VM' && t.kind !== 'ClusterNode') break;
        const gate = await approve(step);
        if (gate) return gate;
        try {
          const r =
            t.kind === 'VM'
              ? await terminateVM.executeWithOptions({ summary: `${step.id}: terminate VM ${t.id}` }, [
                  {
                    id: t.id,
                    identifier: t.identifier,
                    nodeGroup: t.nodeGroup,
                    released: t.ownedBy?.uid ?? null,
                  },
                ])
              : await removeClusterNode.executeWithOptions(
                  { summary: `${step.id}: remove cluster node ${t.identifier}` },
                  [
                    {
                      resourceIdentifier: t.resourceIdentifier,
                      identifier: t.identifier,
                      hostname: t.hostname,
                      nodeGroup: t.nodeGroup,
                      released: t.ownedBy?.uid ?? null,
                    },
                  ],
                );
          return { done: r === 'already-gone' ? 'already gone' : r };
        } catch (err) {
          return failed(step, err);
        }
      }
    }
    throw new Error(`plan step ${step.id} (${step.kind}) has a target of kind ${t.kind} it cannot act on`);
  };

  try {
    const ending = await runPlan();
    // The run the lease chose to hand the storm to people does so however its own plan ended (it may have been
    // chosen while verifying its own act): otherwise the group would never page.
    const st = storm();
    if (!st?.first || ('escalate' in ending && ending.escalate === 'storm')) return ending;
    const own = 'outcome' in ending ? ending.outcome : `escalation ${ending.escalate}`;
    return {
      escalate: 'storm',
      step: null,
      why: `${stormWhy(st)} This run hands the group over; its own VPSieNode: ${own}: ${ending.why}`,
      storm: st,
    };
  } finally {
    await release();
  }

  async function runPlan(): Promise<Ending> {
    for (const step of status.plan) {
      if (step.onlyIfExpired && stepById(step.onlyIfExpired)?.state !== 'expired') {
        set(step, { state: 'skipped', result: `${step.onlyIfExpired} was met` });
        continue;
      }
      status.currentStep = step.id;
      set(step, { state: step.destructive ? 'pending' : 'running', startedAt: nowIso() });
      // In a storm nothing more is asked or done, but a run verifying its own act (its replacement) goes on;
      // the group escalates.
      const acted = status.plan.some((s) => s.destructive && s.state === 'done');
      const st = !acted && storm();
      if (st) {
        status.currentStep = null;
        return (stormEnding(step, st, 'skipped') as { end: Ending }).end;
      }
      log.info('runbook step', { step: step.id, target: describeTarget(step.target) });
      const r = await runStep(step);
      if ('end' in r) {
        if (step.state === 'running' || step.state === 'pending')
          set(step, {
            state: 'escalate' in r.end && step.kind !== 'escalate' ? 'failed' : 'done',
            endedAt: nowIso(),
            result: r.end.why,
          });
        status.currentStep = null;
        return r.end;
      }
      if ('expired' in r) {
        set(step, { state: 'expired', endedAt: nowIso(), result: r.expired });
        if (step.wait?.onExpiry === 'escalate') {
          status.currentStep = null;
          return {
            escalate: 'wait-expired',
            step: step.id,
            why: `${step.id} expired: ${r.expired}. ${step.why}`,
          };
        }
        continue;
      }
      set(step, { state: 'done', endedAt: nowIso(), result: r.done });
    }
    status.currentStep = null;
    return { outcome: 'Remediated', why: status.plan.at(-1)?.result ?? 'every step done' };
  }
}
