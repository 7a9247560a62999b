import {
  ApplicationFailure,
  log,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  assessProgress,
  describeStatus,
  InvalidInputError,
  outcomeOf,
  resolveInput,
  unclassified,
  type DiagnosisReport,
  type Progress,
  type RunbookInput,
  type RunbookStage,
  type RunbookStatus,
  type VPSieNodeSnapshot,
} from '../runbook';
import { statusQuery } from './messages';
import { checkVPSieNode } from './reads';
import * as sa from './search-attributes';

/**
 * The runbook as it ran before runs were bounded (patch `bounded-runbook`), kept so that runs started then replay
 * on the code they ran with: no bounds on the input, `RunbookStage` written at every look, a failed read fails the
 * run, no continue-as-new. Its commands must not change. Remove it, with `deprecatePatch`, once no such run is
 * open and test/fixtures/histories/waits-then-recovered.json is retired.
 */
export async function legacyProvisioningFailedRunbook(input: RunbookInput): Promise<DiagnosisReport> {
  let resolved: ReturnType<typeof resolveInput>;
  try {
    resolved = resolveInput(input, { bounded: false });
  } catch (err) {
    if (err instanceof InvalidInputError) throw ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
    throw err;
  }
  const { ref, options } = resolved;
  const startedAt = new Date().toISOString();

  const status: RunbookStatus = {
    ref,
    stage: 'starting',
    stageSince: startedAt,
    startedAt,
    run: 1,
    checks: 0,
    progress: null,
    nextCheckAt: null,
    outcome: null,
    error: null,
    ...unclassified(),
  };
  setHandler(statusQuery, () => status);

  const enter = (stage: RunbookStage): void => {
    status.stage = stage;
    status.stageSince = new Date().toISOString();
    upsertSearchAttributes([{ key: sa.RunbookStage, value: stage }]);
    setCurrentDetails(describeStatus(status, Date.now()));
  };
  upsertSearchAttributes([
    { key: sa.VPSieNodeNamespace, value: ref.namespace },
    { key: sa.VPSieNodeName, value: ref.name },
  ]);

  let node: VPSieNodeSnapshot | null;
  let progress: Progress;
  for (;;) {
    enter('diagnosing');
    node = await checkVPSieNode(ref);
    status.checks += 1;
    progress = assessProgress(node, Date.now(), {
      provisioningLimitMs: options.provisioningLimitMs,
      joiningLimitMs: options.joiningLimitMs,
    });
    status.progress = progress;
    if (progress.kind !== 'in-progress') break;

    const untilDeadline = Math.max(0, Date.parse(progress.deadline) - Date.now());
    const wait = Math.max(1, Math.min(options.recheckIntervalMs, untilDeadline));
    status.nextCheckAt = new Date(Date.now() + wait).toISOString();
    enter('waiting-for-controller');
    log.info('VPSieNode still within the controller limit; waiting', {
      reason: progress.reason,
      waitMs: wait,
    });
    await sleep(wait);
    status.nextCheckAt = null;
  }

  const outcome = outcomeOf(progress) ?? 'needs-remediation';
  status.outcome = outcome;
  enter('completed');
  upsertSearchAttributes([{ key: sa.RunbookOutcome, value: outcome }]);
  return {
    ref,
    outcome,
    progress,
    vpsieNode: node,
    checks: status.checks,
    runs: 1,
    error: null,
    startedAt,
    finishedAt: new Date().toISOString(),
  };
}
