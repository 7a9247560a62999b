import {
  ApplicationFailure,
  log,
  makeContinueAsNewFunc,
  patched,
  proxySinks,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import {
  assessProgress,
  classify,
  describeStatus,
  evidenceLines,
  InvalidInputError,
  outcomeOf,
  plan,
  readResolvedAlert,
  resolveInput,
  sourceValue,
  unclassified,
  type DiagnosisReport,
  type Escalation,
  type EscalationKind,
  type Evidence,
  type LegacyRunbookOutcome,
  type ResolvedInput,
  type RunbookError,
  type RunbookInput,
  type RunbookOutcome,
  type RunbookStage,
  type RunbookStatus,
  type VPSieNodeSnapshot,
} from '../runbook';
import type { StormAnswer } from '../runbook/lease';
import type { RunbookMetricsSinks } from '../metrics/sink';
import { createAnnouncer } from './announcements';
import { createApprovalGate, type ApprovalGate } from './approval';
import { legacyProvisioningFailedRunbook } from './legacy';
import { alertResolvedSignal, statusQuery } from './messages';
import {
  checkVPSieNode,
  escalate,
  gatherEvidence,
  localEvidence,
  localReads,
  resolveEscalation,
  stepFailure,
} from './reads';
import { reportFailure } from './lease-client';
import { executePlan, type Ending, type PlanLease } from './remediation';
import {
  APPROVAL_MEMO_PATCH,
  writePendingApprovalMemo,
  writeSearchAttributes,
} from './search-attribute-writes';
import * as sa from './search-attributes';

/** Runs started before this patch run {@link legacyProvisioningFailedRunbook}. */
export const BOUNDED_RUNBOOK_PATCH = 'bounded-runbook';
/**
 * Runs started before this patch stop after the wait with the first slice's outcomes (`needs-remediation`, ...);
 * runs with it go on to evidence, cause, plan, approval, remediation and verification.
 */
export const WHOLE_RUNBOOK_PATCH = 'whole-runbook';
/**
 * Runs started before this patch read the VPSieNode and gather the evidence as (remote) activities; runs with it
 * use local activities, so the diagnosis of a node that has already failed completes in the first workflow task.
 */
export const LOCAL_READS_PATCH = 'local-reads';

/** The worker's metrics (src/metrics/sink.ts): a sink call is no command, so history and replay are unchanged. */
const { runbookMetrics } = proxySinks<RunbookMetricsSinks>();

/**
 * The "Provisioning Failed" runbook for one VPSieNode, top to bottom.
 *
 * 1. Check VPSieNode status. While the controller is still inside its own limits (10 min to provision, 15 to
 *    join), wait with a durable timer and look again: acting then would race the controller. After
 *    `checksPerRun` looks (or when the server suggests it) the run continues as new, carrying what `status` and
 *    the report need, so that history stays small however long the controller takes.
 * 2. Gather the evidence (steps 1–5 and the checks of causes 1, 4 and 5) in one parallel round.
 * 3. Classify it into one of the runbook's causes, and plan the resolution steps for that cause.
 * 4. Run the plan: every destructive step waits for a person's approval; every act re-checks its target; every
 *    wait is durable and bounded. What cannot be fixed, or a wait that runs out, is escalated with the evidence.
 * A read of the VPSieNode that fails for good (refused, or failing through every retry) escalates at once.
 */
export async function provisioningFailedRunbook(input: RunbookInput): Promise<DiagnosisReport> {
  if (!patched(BOUNDED_RUNBOOK_PATCH)) return legacyProvisioningFailedRunbook(input);
  const whole = patched(WHOLE_RUNBOOK_PATCH);
  const local = whole && patched(LOCAL_READS_PATCH);
  const approvalMemo = whole && patched(APPROVAL_MEMO_PATCH);
  const readVPSieNode = local ? localReads.checkVPSieNode : checkVPSieNode;
  const readEvidence = local ? localEvidence.gatherEvidence : gatherEvidence;

  let resolved: ResolvedInput;
  try {
    resolved = resolveInput(input);
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const { ref, options, continuation } = resolved;
  const now = (): string => new Date().toISOString();

  // A continued run starts where the previous one stopped: waiting for the controller until `nextCheckAt`.
  const status: RunbookStatus = continuation
    ? {
        ref,
        stage: 'waiting-for-controller',
        stageSince: continuation.stageSince,
        startedAt: continuation.startedAt,
        run: continuation.run,
        checks: continuation.checks,
        progress: continuation.progress,
        nextCheckAt: continuation.nextCheckAt,
        outcome: null,
        error: null,
        ...unclassified(),
      }
    : {
        ref,
        stage: 'diagnosing',
        stageSince: now(),
        startedAt: now(),
        run: 1,
        checks: 0,
        progress: null,
        nextCheckAt: null,
        outcome: null,
        error: null,
        ...unclassified(),
      };
  status.dryRun = options.dryRun;
  status.approvers = [...options.approval.allowList];
  let node: VPSieNodeSnapshot | null = continuation?.vpsieNode ?? null;
  /** The VPSieNode as last read while it existed: once it is gone, what names its machine and NodeGroup. */
  let lastSeen = node;
  let evidence: Evidence | null = null;
  let checksThisRun = 0;

  /** What `status` answers: the run's own fields and the approval gate's. */
  const view = (): RunbookStatus => (gate ? { ...status, ...gate.state() } : status);
  const show = (): void => setCurrentDetails(describeStatus(view(), Date.now()));
  const enter = (stage: RunbookStage, at = now()): void => {
    if (status.stage === stage) return;
    Object.assign(status, { stage, stageSince: at });
    writeSearchAttributes([{ key: sa.RunbookStage, value: stage }]);
  };

  const announcer = createAnnouncer(ref, options.approval.allowList);
  const gate: ApprovalGate | null = whole
    ? createApprovalGate({
        ...options.approval,
        onPendingChange: (pending) => {
          enter(pending ? 'awaiting-approval' : 'remediating');
          writeSearchAttributes([{ key: sa.ApprovalPending, value: pending !== null }]);
          if (approvalMemo) writePendingApprovalMemo(pending);
          show();
          // Tell the approval channels; the run does not wait for it, and a failure is only logged.
          if (pending) announcer.announce(pending);
        },
      })
    : null;
  setHandler(statusQuery, view);
  // Noted for people only: a resolved alert does not stop the run, which may be mid-remediation.
  setHandler(alertResolvedSignal, (raw) => {
    const resolved = readResolvedAlert(raw);
    if (resolved) Object.assign(status, { alertResolvedAt: resolved.endsAt, alertResolved: resolved });
  });

  // Search attributes are written only when they change: a continued run inherits its predecessor's.
  writeSearchAttributes([
    { key: sa.VPSieNodeNamespace, value: ref.namespace },
    { key: sa.VPSieNodeName, value: ref.name },
    { key: sa.RunbookStage, value: status.stage },
    ...(whole ? [{ key: sa.ApprovalPending, value: false }] : []),
  ]);
  show();

  const finish = async (
    outcome: RunbookOutcome | LegacyRunbookOutcome,
    error: RunbookError | null,
    conclusion: string | null = null,
  ): Promise<DiagnosisReport> => {
    await announcer.settle();
    Object.assign(status, { stage: 'completed', stageSince: now(), nextCheckAt: null, outcome, error });
    if (whole) status.conclusion = conclusion;
    writeSearchAttributes([
      { key: sa.RunbookStage, value: 'completed' },
      { key: sa.RunbookOutcome, value: outcome },
    ]);
    show();
    const report: DiagnosisReport = {
      ref,
      outcome,
      progress: status.progress,
      vpsieNode: node,
      checks: status.checks,
      runs: status.run,
      error,
      startedAt: status.startedAt,
      finishedAt: now(),
    };
    // Counted once per run: the SDK drops sink calls made while replaying; not making them also keeps a replay
    // worker, which has no such sink, from logging about it.
    if (!workflowInfo().unsafe.isReplaying)
      runbookMetrics.runEnded({
        outcome,
        cause: status.cause,
        startedAt: status.startedAt,
        finishedAt: report.finishedAt,
      });
    if (!whole) return report;
    const v = view();
    return {
      ...report,
      evidence,
      cause: v.cause,
      reasons: v.reasons,
      plan: v.plan,
      decisions: v.decisions,
      escalation: v.escalation,
      replacement: v.replacement,
      conclusion: v.conclusion,
    };
  };

  /** Hands the run to people (the escalate activity records it), then ends. */
  const escalateAndFinish = async (
    kind: EscalationKind,
    reason: string,
    step: string | null,
    error: RunbookError | null,
    storm?: StormAnswer,
  ): Promise<DiagnosisReport> => {
    enter('escalating');
    const lines = status.plan.find((s) => s.target.kind === 'Escalation')?.target;
    const escalation: Escalation = {
      workflowId: workflowInfo().workflowId,
      runId: workflowInfo().runId,
      ref,
      uid: (evidence?.vpsieNode ?? lastSeen)?.uid ?? null,
      cause: status.cause,
      kind,
      reason,
      step,
      evidence:
        lines?.kind === 'Escalation'
          ? lines.evidence
          : evidence && status.cause
            ? evidenceLines({ cause: status.cause, reasons: status.reasons, also: status.also }, evidence)
            : error
              ? [`${error.step}: ${error.type}: ${error.message}`]
              : [],
    };
    status.escalation = { ...escalation, record: null };
    show();
    let failure = error;
    try {
      status.escalation.record = await escalate.executeWithOptions(
        { summary: `Escalate (${kind}): ${reason}`.slice(0, 200) },
        [
          escalation,
          {
            reasons: status.reasons,
            also: status.also,
            plan: status.plan,
            decisions: gate ? gate.state().decisions : [],
            error,
            lastSeen: evidence?.vpsieNode ?? lastSeen,
            ...(options.severity ? { severity: options.severity } : {}),
            // a NodeGroup storm pages once, from the run the lease told first
            ...(storm && !storm.first ? { notify: false } : {}),
          },
        ],
      );
    } catch (err) {
      // The run's result and status still carry the escalation; the failure to record it is reported too.
      failure = failure ?? stepFailure(err);
      log.error('could not record the escalation', { ...stepFailure(err) });
    }
    return finish(kind === 'approval-expired' ? 'ApprovalExpired' : 'Escalated', failure, reason);
  };

  /** The node is fixed: an incident an earlier run of this VPSieNode opened is resolved (same dedup key). */
  const resolveIncident = async (outcome: RunbookOutcome): Promise<void> => {
    try {
      await resolveEscalation.executeWithOptions({ summary: `resolve any incident open for ${ref.name}` }, [
        { workflowId: workflowInfo().workflowId, ref, outcome },
      ]);
    } catch (err) {
      log.warn('could not resolve the earlier escalation', { ...stepFailure(err) });
    }
  };

  /** Steps 2–4 once the controller's limits have passed (or the node settled): evidence, cause, plan, act. */
  const remediate = async (): Promise<DiagnosisReport> => {
    enter('gathering-evidence');
    show();
    try {
      evidence = await readEvidence.executeWithOptions(
        { summary: 'Steps 1-5: gather evidence (VPSieNode, Events, logs, VPSie, Node, NodeGroup)' },
        [{ ref, lastSeen, observedAt: now() }],
      );
    } catch (err) {
      const error = stepFailure(err, 'gatherEvidence');
      return escalateAndFinish(
        'read-failed',
        `The evidence could not be read: ${error.message}`,
        null,
        error,
      );
    }
    const c = classify(evidence, Date.now(), {
      provisioningTimeoutMs: options.provisioningLimitMs,
      joiningTimeoutMs: options.joiningLimitMs,
    });
    Object.assign(status, { cause: c.cause, reasons: c.reasons, also: c.also });
    const nodeGroup = (evidence.vpsieNode ?? lastSeen)?.nodeGroupName;
    writeSearchAttributes([
      { key: sa.RunbookCause, value: c.cause },
      ...(nodeGroup ? [{ key: sa.NodeGroup, value: nodeGroup }] : []),
    ]);
    status.plan = plan(c, evidence, { now: now(), ...options.waits }).map((s) => ({
      ...s,
      state: 'pending' as const,
      startedAt: null,
      endedAt: null,
      result: null,
    }));
    log.info('diagnosed', { cause: c.cause, steps: status.plan.map((s) => s.id) });
    if (options.dryRun)
      return finish(
        'DryRun',
        null,
        `planned ${status.plan.map((s) => s.id).join(', ') || 'nothing'}; acted on nothing`,
      );
    if (status.plan.length === 0) {
      if (c.cause === 'Recovered') await resolveIncident('Recovered');
      return finish(
        c.cause === 'Recovered' ? 'Recovered' : 'VPSieNodeGone',
        null,
        c.reasons.map((r) => r.says).join('; ') || null,
      );
    }

    // Every destructive act holds the NodeGroup's lease; every failing node counts towards its storm.
    let lease: PlanLease | null = null;
    // Only a NodeGroup that exists: one that does not replaces nothing, and the plan escalates without acting.
    const leased = sourceValue(evidence.nodeGroup);
    if (leased) {
      const w = options.waits;
      lease = {
        nodeGroup: { namespace: leased.namespace, name: leased.name },
        // the act and the waits that verify it, with room for the looks themselves
        ttlMs: w.goneWaitMs + 2 * w.replacementWaitMs + w.readyWaitMs + 10 * 60_000,
        timeoutMs: w.leaseWaitMs,
        policy: options.nodeGroupLease,
      };
    }
    const failed = evidence.vpsieNode ?? lastSeen;

    enter('remediating');
    show();
    let ending: Ending;
    try {
      if (lease && failed && c.cause !== 'Recovered' && c.cause !== 'VPSieNodeGone')
        await reportFailure({
          nodeGroup: lease.nodeGroup,
          vpsieNode: { namespace: failed.namespace, name: failed.name, uid: failed.uid },
          ...(lease.policy ? { policy: lease.policy } : {}),
        });
      ending = await executePlan({
        ref,
        status,
        gate: gate!,
        recheckIntervalMs: options.recheckIntervalMs,
        approvalRecheckIntervalMs: options.approvalRecheckIntervalMs,
        waits: options.waits,
        changed: show,
        lease,
      });
    } catch (err) {
      const error = stepFailure(err);
      ending = {
        escalate: 'step-failed',
        step: error.step,
        why: `${error.step} failed: ${error.message}`,
        error,
      };
    }
    if ('outcome' in ending) {
      log.info('runbook ended', { outcome: ending.outcome, why: ending.why });
      if (ending.outcome === 'Recovered' || ending.outcome === 'Remediated')
        await resolveIncident(ending.outcome);
      return finish(ending.outcome, null, ending.why);
    }
    return escalateAndFinish(ending.escalate, ending.why, ending.step, ending.error ?? null, ending.storm);
  };

  for (;;) {
    if (status.nextCheckAt) {
      const wait = Date.parse(status.nextCheckAt) - Date.now();
      if (wait > 0) {
        if (whole) await sleep(wait, { summary: 'Step 1: the controller still has time; look again' });
        else await sleep(wait);
      }
      status.nextCheckAt = null;
      show();
    }

    // Workflow time after a local activity is not the same on replay as it was live (Core moves it on by the
    // activity's runtime, not always at the same point), so what status shows is timed from before the look.
    const lookedAt = Date.now();
    try {
      node = whole
        ? await readVPSieNode.executeWithOptions({ summary: 'Step 1: check VPSieNode status' }, [ref])
        : await checkVPSieNode(ref);
    } catch (err) {
      const error = stepFailure(err, 'checkVPSieNode');
      log.warn('could not read the VPSieNode; ending the run', { ...error });
      if (!whole) return finish('read-failed', error);
      return escalateAndFinish(
        'read-failed',
        `VPSieNode ${ref.namespace}/${ref.name} could not be read: ${error.type}: ${error.message}`,
        null,
        error,
      );
    }
    if (node) lastSeen = node;
    status.checks += 1;
    checksThisRun += 1;
    const progress = assessProgress(node, lookedAt, {
      provisioningLimitMs: options.provisioningLimitMs,
      joiningLimitMs: options.joiningLimitMs,
    });
    status.progress = progress;
    if (progress.kind !== 'in-progress' || node === null) {
      if (!whole) return finish(outcomeOf(progress) ?? 'needs-remediation', null);
      return remediate();
    }

    // The controller still has time: look again at the next interval, or right at its deadline.
    const untilDeadline = Math.max(0, Date.parse(progress.deadline) - lookedAt);
    const wait = Math.max(1, Math.min(options.recheckIntervalMs, untilDeadline));
    status.nextCheckAt = new Date(lookedAt + wait).toISOString();
    enter('waiting-for-controller', new Date(lookedAt).toISOString());
    show();
    log.info('VPSieNode still within the controller limit; waiting', {
      reason: progress.reason,
      waitMs: wait,
    });

    if (checksThisRun >= options.checksPerRun || workflowInfo().continueAsNewSuggested) {
      // The wait happens in the next run, which starts with a clean history.
      // The next run inherits the search attributes as they are, so it writes none until something changes.
      // The memo (who started the chain, src/temporal/start-runbook.ts) goes along: not every server carries it.
      const continueRun = makeContinueAsNewFunc<typeof provisioningFailedRunbook>({
        typedSearchAttributes: workflowInfo().typedSearchAttributes,
        ...(workflowInfo().memo ? { memo: workflowInfo().memo } : {}),
      });
      await continueRun({
        namespace: ref.namespace,
        name: ref.name,
        ...(input.options ? { options: input.options } : {}),
        continuation: {
          startedAt: status.startedAt,
          run: status.run + 1,
          checks: status.checks,
          stageSince: status.stageSince,
          progress,
          vpsieNode: node,
          nextCheckAt: status.nextCheckAt,
        },
      });
    }
  }
}
