/**
 * The CLI's pure parts: how arguments and flags are read and refused (each refusal naming the argument), the
 * visibility queries `list` sends, what `status` prints for a person, and the NodeGroup checks' verdicts. The
 * commands themselves run as a user runs them in test/e2e/cli-*.test.ts.
 */
import { parseCliDuration, parseObjectRef, parseRunArg, parseWholeNumber } from '../../src/cli/args';
import { CliError, EXIT } from '../../src/cli/errors';
import {
  inFlagTerms,
  runbookOptionsFromFlags,
  RUNBOOK_FLAGS,
  SWEEP_FLAGS,
  sweepInputFromFlags,
} from '../../src/cli/input-flags';
import { nodeGroupChecks, renderChecks, type NodeGroupSources } from '../../src/cli/nodegroup-checks';
import {
  decisionCommands,
  renderRows,
  renderRunbookStatus,
  shellWord,
  statusFromReport,
  when,
} from '../../src/cli/render';
import type { RunRow } from '../../src/cli/runs';
import { loadEnvConfig, temporalSettings } from '../../src/cli/temporal';
import { listQuery, quote } from '../../src/cli/visibility';
import {
  InvalidInputError,
  resolveInput,
  unclassified,
  type DiagnosisReport,
  type RunbookStatus,
} from '../../src/runbook';
import { sourceError, sourceOk, sourceUnavailable } from '../../src/runbook/diagnosis';
import { nodeGroupSnapshot } from '../support/snapshots';

const usage = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(EXIT.USAGE);
    return (err as Error).message;
  }
  throw new Error('not refused');
};

describe('arguments', () => {
  it('reads <ns>/<name>, and refuses anything else naming the argument and what is wrong', () => {
    expect(parseObjectRef('kube-system/ng-a-1', 'argument <ns/name>')).toEqual({
      namespace: 'kube-system',
      name: 'ng-a-1',
    });
    expect(usage(() => parseObjectRef('ng-a-1', 'argument <ns/name>'))).toBe(
      'argument <ns/name> must be <namespace>/<name>, got "ng-a-1"',
    );
    expect(usage(() => parseObjectRef('a/b/c', 'argument <ns/name>'))).toContain(
      'must be <namespace>/<name>',
    );
    expect(usage(() => parseObjectRef('Kube/x', 'argument <ns/name>'))).toBe(
      'argument <ns/name> "Kube/x": namespace must be a Kubernetes namespace name (DNS label), got "Kube"',
    );
  });

  it('a run is a VPSieNode (its runbook first, then the text as a workflow id) or a workflow id', () => {
    expect(parseRunArg('kube-system/ng-a-1')).toEqual({
      text: 'kube-system/ng-a-1',
      ref: { namespace: 'kube-system', name: 'ng-a-1' },
      workflowIds: ['provisioning-failed/kube-system/ng-a-1', 'kube-system/ng-a-1'],
    });
    expect(parseRunArg('provisioning-failed/kube-system/ng-a-1').workflowIds).toEqual([
      'provisioning-failed/kube-system/ng-a-1',
    ]);
    // A sweep's id reads as ns/name too: its own text is the second try.
    expect(parseRunArg('orphaned-vm-cleanup/manual-1').workflowIds).toEqual([
      'provisioning-failed/orphaned-vm-cleanup/manual-1',
      'orphaned-vm-cleanup/manual-1',
    ]);
    expect(parseRunArg('orphaned-vm-cleanup-2025-01-01T00:00:00Z')).toMatchObject({
      ref: null,
      workflowIds: ['orphaned-vm-cleanup-2025-01-01T00:00:00Z'],
    });
    expect(usage(() => parseRunArg(''))).toContain(
      'must be a VPSieNode as <namespace>/<name> or a workflow id',
    );
    expect(usage(() => parseRunArg('a/b\n'))).toContain('got "a/b\\n"');
  });

  it('numbers and durations of the CLI itself name their flag', () => {
    expect(parseWholeNumber('25', '--limit', 1, 1000)).toBe(25);
    expect(usage(() => parseWholeNumber('2.5', '--limit', 1, 1000))).toBe(
      '--limit must be a whole number from 1 to 1000, got "2.5"',
    );
    expect(parseCliDuration('2m', '--wait', 1000, 3_600_000)).toBe(120_000);
    expect(usage(() => parseCliDuration('2h', '--wait', 1000, 3_600_000))).toBe(
      '--wait must be between 1s and 3600s, got "2h"',
    );
    expect(usage(() => parseCliDuration('soon', '--wait', 1000, 3_600_000))).toContain(
      '--wait must be a duration',
    );
  });
});

describe('where Temporal is', () => {
  const settings = (
    env: NodeJS.ProcessEnv,
    flags: { address?: string; namespace?: string; taskQueue?: string } = {},
  ) => temporalSettings({ ...flags, connectTimeoutMs: 10_000 }, loadEnvConfig(env));

  it("the worker's variables, the embedded dev server when TEMPORAL_ADDRESS is unset, flags over both", () => {
    expect(settings({})).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'vpsie-runbook',
      connectTimeoutMs: 10_000,
      // plain gRPC unless TEMPORAL_TLS* or TEMPORAL_API_KEY* say otherwise, as the worker connects
      security: { tls: null, apiKey: null },
    });
    expect(settings({ TEMPORAL_DEV_PORT: '7300' }).address).toBe('127.0.0.1:7300');
    const env = { TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'ops', TEMPORAL_TASK_QUEUE: 'q1' };
    expect(settings(env)).toMatchObject({ address: 'temporal:7233', namespace: 'ops', taskQueue: 'q1' });
    expect(settings(env, { address: 'other:7000', namespace: 'n2', taskQueue: 'q2' })).toMatchObject({
      address: 'other:7000',
      namespace: 'n2',
      taskQueue: 'q2',
    });
  });

  it('a bad flag or variable is a usage error naming it', () => {
    expect(usage(() => settings({}, { address: 'temporal' }))).toBe(
      '--address must be host:port (for example temporal:7233), got "temporal"',
    );
    expect(usage(() => settings({}, { taskQueue: 'a b' }))).toContain(
      '--task-queue must be a task queue name without spaces',
    );
    expect(usage(() => settings({ TEMPORAL_ADDRESS: 'nope' }))).toContain(
      'TEMPORAL_ADDRESS must be host:port',
    );
  });
});

describe('workflow inputs as flags', () => {
  it('sets only the fields whose flags were given, as the workflow input names them', () => {
    expect(
      runbookOptionsFromFlags({
        dryRun: true,
        approver: ['alice', 'bob'],
        approvalTtl: '30m',
        autoApprove: [],
        checksPerRun: '50',
        recheckInterval: '10s',
      }),
    ).toEqual({
      dryRun: true,
      approvers: ['alice', 'bob'],
      approvalTtl: '30m',
      checksPerRun: 50,
      recheckInterval: '10s',
    });
    expect(sweepInputFromFlags({ dryRun: true, grace: '1h', mode: 'all', approver: ['alice'] })).toEqual({
      dryRun: true,
      grace: '1h',
      mode: 'all',
      approvers: ['alice'],
    });
  });

  it("tells the input checks' messages in flags", () => {
    const refusal = (options: object) => {
      try {
        resolveInput({ namespace: 'ns', name: 'x', options });
      } catch (err) {
        if (err instanceof InvalidInputError) return inFlagTerms(err.message, RUNBOOK_FLAGS, 'options');
      }
      throw new Error('accepted');
    };
    expect(refusal({ approvalTtl: '5s' })).toBe('--approval-ttl must be between 10s and 7 days, got "5s"');
    expect(refusal({ approvers: ['alice', ''] })).toBe('--approver #2 must be a non-empty string, got ""');
    expect(refusal({ severity: 'loud' })).toBe(
      '--severity must be one of critical, error, warning, info, got "loud"',
    );
    expect(inFlagTerms('input.grace must be between 15m and 30 days, got "1m"', SWEEP_FLAGS, 'input')).toBe(
      '--grace must be between 15m and 30 days, got "1m"',
    );
    // Every flag names a field the runbook accepts.
    const all = Object.fromEntries(
      RUNBOOK_FLAGS.map((f) => [
        f.field,
        f.kind === 'list'
          ? []
          : f.kind === 'flag'
            ? false
            : f.kind === 'count'
              ? 1
              : f.field === 'severity'
                ? 'info'
                : '1m',
      ]),
    );
    expect(() => resolveInput({ namespace: 'ns', name: 'x', options: all })).not.toThrow();
  });
});

describe('visibility queries', () => {
  it('quotes values so they stay values', () => {
    expect(quote("a'b\\c")).toBe("'a\\'b\\\\c'");
  });

  it('--pending-approval: waiting for a person now, on the deployment task queue', () => {
    expect(listQuery({ pendingApproval: true, taskQueue: 'vpsie-runbook' })).toBe(
      "WorkflowType IN ('provisioningFailedRunbook', 'orphanedVmCleanup') AND TaskQueue = 'vpsie-runbook' AND ApprovalPending = true AND ExecutionStatus = 'Running'",
    );
    expect(
      listQuery({
        cause: 'SSHKeyInvalid',
        nodeGroup: 'ng-a',
        outcome: 'Escalated',
        stage: 'completed',
        taskQueue: null,
      }),
    ).toBe(
      "WorkflowType IN ('provisioningFailedRunbook', 'orphanedVmCleanup') AND RunbookCause = 'SSHKeyInvalid' AND NodeGroup = 'ng-a' AND RunbookOutcome = 'Escalated' AND RunbookStage = 'completed'",
    );
    expect(listQuery({ open: true })).toContain("ExecutionStatus = 'Running'");
  });

  it('refuses values the workflows never write, naming the flag', () => {
    expect(usage(() => listQuery({ cause: "x' OR '1'='1" }))).toContain(
      '--cause must be one of VMCreationFailed',
    );
    expect(usage(() => listQuery({ nodeGroup: "ng' OR 'a'='a" }))).toContain(
      '--nodegroup must be a NodeGroup name',
    );
    expect(usage(() => listQuery({ outcome: 'Fine' }))).toContain('--outcome must be one of');
    expect(usage(() => listQuery({ stage: 'later' }))).toContain('--stage must be one of');
    expect(listQuery({ outcome: 'NothingToRemove' })).toContain("RunbookOutcome = 'NothingToRemove'"); // a sweep's
  });
});

const NOW = Date.parse('2026-11-24T10:05:00.000Z');
const uid = '3b1f0c1e-0000-4000-8000-000000000001';
const waiting: RunbookStatus = {
  ...unclassified(),
  ref: { namespace: 'kube-system', name: 'ng-a-1' },
  stage: 'awaiting-approval',
  stageSince: '2026-11-24T10:04:00.000Z',
  startedAt: '2026-11-24T10:00:00.000Z',
  run: 1,
  checks: 3,
  progress: {
    kind: 'failed',
    reason: 'phase Failed (ProvisioningTimeout: Provisioning timeout exceeded (10m0s))',
  },
  nextCheckAt: null,
  outcome: null,
  error: null,
  cause: 'ProvisioningTimeout',
  reasons: [
    {
      finding: 'provisioning-timeout',
      source: 'vpsieNode',
      field: 'status.lastError',
      value: 'Provisioning timeout exceeded (10m0s)',
      says: 'provisioning took longer than the controller allows',
    },
  ],
  plan: [
    {
      id: 'delete-vpsienode',
      kind: 'delete-vpsienode',
      destructive: true,
      target: { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid },
      why: 'Delete kube-system/ng-a-1.',
      state: 'awaiting-approval',
      startedAt: '2026-11-24T10:04:00.000Z',
      endedAt: null,
      result: null,
    },
    {
      id: 'wait-machine-gone',
      kind: 'wait-machine-gone',
      destructive: false,
      target: { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid },
      why: 'Wait for its machine to go.',
      wait: { until: '2026-11-24T10:20:00.000Z', onExpiry: 'escalate' },
      state: 'pending',
      startedAt: null,
      endedAt: null,
      result: null,
    },
  ],
  currentStep: 'delete-vpsienode',
  pendingApproval: {
    stepId: 'delete-vpsienode',
    kind: 'delete-vpsienode',
    target: { kind: 'VPSieNode', namespace: 'kube-system', name: 'ng-a-1', uid },
    action: 'Delete kube-system/ng-a-1.',
    requestedAt: '2026-11-24T10:04:00.000Z',
    expiresAt: '2026-11-24T11:04:00.000Z',
  },
  approvers: ['alice', 'bob'],
};
const meta = {
  arg: 'kube-system/ng-a-1',
  workflowId: 'provisioning-failed/kube-system/ng-a-1',
  runId: 'r1',
  execution: 'Running',
};

describe('status for a person', () => {
  it('shows the stage, cause, reasons, the plan with states, and exactly what waits, until when, and how to answer', () => {
    expect(renderRunbookStatus(waiting, meta, NOW).split('\n')).toEqual([
      'Run         provisioning-failed/kube-system/ng-a-1 (run r1, Running)',
      'VPSieNode   kube-system/ng-a-1',
      'Started     2026-11-24T10:00:00.000Z; 3 checks, run 1 of the chain',
      'Stage       awaiting-approval since 2026-11-24T10:04:00.000Z',
      'Progress    failed: phase Failed (ProvisioningTimeout: Provisioning timeout exceeded (10m0s))',
      'Cause       ProvisioningTimeout',
      'Reasons',
      '  - provisioning took longer than the controller allows [vpsieNode status.lastError: "Provisioning timeout exceeded (10m0s)"]',
      'Plan',
      '  awaiting-approval  delete-vpsienode   Delete kube-system/ng-a-1. (needs approval)',
      '  pending            wait-machine-gone  Wait for its machine to go. (until 2026-11-24T10:20:00.000Z)',
      'Waiting for approval',
      '  step        delete-vpsienode (delete-vpsienode)',
      `  target      VPSieNode kube-system/ng-a-1 (uid ${uid})`,
      `  exactly     {"kind":"VPSieNode","namespace":"kube-system","name":"ng-a-1","uid":"${uid}"}`,
      '  action      Delete kube-system/ng-a-1.',
      '  asked       2026-11-24T10:04:00.000Z',
      '  expires     2026-11-24T11:04:00.000Z (in 59m)',
      '  who         alice, bob',
      '  approve     vpsie-runbook approve kube-system/ng-a-1 --step delete-vpsienode --as <you>',
      "  reject      vpsie-runbook reject kube-system/ng-a-1 --step delete-vpsienode --as <you> --reason '<why>'",
    ]);
  });

  it('an ended run: decisions, escalation with its evidence and channels, outcome', () => {
    const ended: RunbookStatus = {
      ...waiting,
      stage: 'completed',
      pendingApproval: null,
      outcome: 'ApprovalExpired',
      conclusion: 'nobody decided in time',
      decisions: [
        {
          stepId: 'delete-vpsienode',
          decision: 'approve',
          approver: 'mallory',
          reason: null,
          via: 'signal',
          at: '2026-11-24T10:06:00.000Z',
          accepted: false,
          refusal: 'approver "mallory" is not on the allow-list (alice, bob)',
        },
      ],
      escalation: {
        workflowId: meta.workflowId,
        runId: 'r1',
        ref: waiting.ref,
        uid,
        cause: 'ProvisioningTimeout',
        kind: 'approval-expired',
        reason: 'nobody approved delete-vpsienode within 1h',
        step: 'delete-vpsienode',
        evidence: ['provisioning took longer than the controller allows'],
        record: {
          recordedAt: '2026-11-24T11:04:00.000Z',
          channels: [{ channel: 'kubernetes-event', ok: true, detail: 'Event RunbookEscalated' }],
        },
      },
    };
    const text = renderRunbookStatus(ended, { ...meta, execution: 'Completed' }, NOW);
    expect(text).toContain(
      'Decisions\n  - 2026-11-24T10:06:00.000Z approve delete-vpsienode by mallory via signal: refused (approver "mallory" is not on the allow-list (alice, bob))',
    );
    expect(text).toContain(
      'Escalation  approval-expired at delete-vpsienode: nobody approved delete-vpsienode within 1h\n  - provisioning took longer than the controller allows\n  kubernetes-event: sent (Event RunbookEscalated)',
    );
    expect(text).toMatch(/\nOutcome {5}ApprovalExpired: nobody decided in time$/);
    expect(text).not.toContain('Waiting for approval');
  });

  it("a finished run's report reads as its final status", () => {
    const report: DiagnosisReport = {
      ref: waiting.ref,
      outcome: 'Remediated',
      progress: waiting.progress,
      vpsieNode: null,
      checks: 4,
      runs: 1,
      error: null,
      startedAt: waiting.startedAt,
      finishedAt: '2026-11-24T10:30:00.000Z',
      cause: 'ProvisioningTimeout',
      reasons: waiting.reasons,
      plan: waiting.plan,
      decisions: [],
      escalation: null,
      replacement: { namespace: 'kube-system', name: 'ng-a-2', uid: 'u2' },
      conclusion: 'replacement ng-a-2 Ready',
    };
    const text = renderRunbookStatus(statusFromReport(report), { ...meta, execution: 'Completed' }, NOW);
    expect(text).toContain('Stage       completed since 2026-11-24T10:30:00.000Z');
    expect(text).toContain('Replacement kube-system/ng-a-2 (uid u2)');
    expect(text).toMatch(/\nOutcome {5}Remediated: replacement ng-a-2 Ready$/);
  });

  it('times say how far they are; commands are quoted for a shell', () => {
    expect(when('2026-11-24T10:04:00.000Z', NOW)).toBe('2026-11-24T10:04:00.000Z (1m ago)');
    expect(shellWord('ns/name')).toBe('ns/name');
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(decisionCommands('orphaned-vm-cleanup/cli-1', 'terminate-a b').approve).toBe(
      "vpsie-runbook approve orphaned-vm-cleanup/cli-1 --step 'terminate-a b' --as <you>",
    );
  });

  it('list: one run per line, the approval step and expiry for runs that wait', () => {
    const row: RunRow = {
      workflowId: meta.workflowId,
      runId: 'r1',
      type: 'provisioningFailedRunbook',
      status: 'Running',
      taskQueue: 'vpsie-runbook',
      startTime: '2026-11-24T10:00:00.000Z',
      closeTime: null,
      vpsieNode: 'kube-system/ng-a-1',
      nodeGroup: 'ng-a',
      stage: 'awaiting-approval',
      cause: 'ProvisioningTimeout',
      outcome: null,
      approvalPending: true,
      pendingApproval: waiting.pendingApproval,
    };
    expect(
      renderRows(
        [
          row,
          {
            ...row,
            workflowId: 'provisioning-failed/kube-system/ng-b-1',
            pendingApproval: undefined,
            approvalPending: false,
            stage: 'completed',
            outcome: 'Remediated',
            status: 'Completed',
          },
        ],
        NOW,
      ).split('\n'),
    ).toEqual([
      'WORKFLOW ID                             STATUS     STAGE              CAUSE                OUTCOME     NODEGROUP  STARTED                   APPROVAL',
      'provisioning-failed/kube-system/ng-a-1  Running    awaiting-approval  ProvisioningTimeout  -           ng-a       2026-11-24T10:00:00.000Z  delete-vpsienode until 2026-11-24T11:04:00.000Z (in 59m)',
      'provisioning-failed/kube-system/ng-b-1  Completed  completed          ProvisioningTimeout  Remediated  ng-a       2026-11-24T10:00:00.000Z  -',
    ]);
  });
});

describe('validate-nodegroup verdicts', () => {
  const allGood: NodeGroupSources = {
    catalog: sourceOk({ unknownOfferings: [], unavailableOfferings: [], datacenter: 'ok', image: 'ok' }),
    sshKeys: sourceOk({ known: ['11'], unknown: [] }),
    clusterVersion: sourceOk({ major: '1', minor: '34', gitVersion: 'v1.34.4' }),
    vpsieCluster: sourceOk({ name: 'prod' }),
  };

  it('ok on every line when VPSie and the cluster agree', () => {
    expect(renderChecks(nodeGroupChecks(nodeGroupSnapshot({ kubernetesVersion: 'v1.34.0' }), allGood))).toBe(
      [
        'ok  offering 101: offered by VPSie',
        'ok  datacenter 1: known to VPSie and available',
        'ok  image 201: known to VPSie and available',
        'ok  ssh key 11: in the VPSie account',
        'ok  cluster cluster-1: VPSie managed cluster prod',
        'ok  kubernetesVersion v1.34.0: matches the cluster (v1.34.4)',
      ].join('\n'),
    );
  });

  it('names each wrong id and a version a minor apart, and what could not be checked', () => {
    const checks = nodeGroupChecks(
      nodeGroupSnapshot({
        offeringIDs: ['101', '9'],
        osImageID: null,
        sshKeyIDs: ['11', '12'],
        kubernetesVersion: 'v1.33.1',
      }),
      {
        catalog: sourceOk({
          unknownOfferings: ['9'],
          unavailableOfferings: [],
          datacenter: 'unavailable',
          image: 'unset',
        }),
        sshKeys: sourceOk({ known: ['11'], unknown: ['12'] }),
        clusterVersion: sourceOk({ major: '1', minor: '34+', gitVersion: 'v1.34.4+k3s1' }),
        vpsieCluster: sourceError('VPSieServer', 'HTTP 503'),
      },
    );
    expect(checks.map((c) => `${c.status} ${c.field}: ${c.detail}`)).toEqual([
      'ok spec.offeringIDs[0]: offered by VPSie',
      'wrong spec.offeringIDs[1]: VPSie has no offering 9: VM creation fails',
      'wrong spec.datacenterID: VPSie lists datacenter 1 as not available: VM creation fails',
      'ok spec.osImageID: not set: nothing to check',
      'ok spec.sshKeyIDs[0]: in the VPSie account',
      "wrong spec.sshKeyIDs[1]: the VPSie account has no SSH key 12 (the runbook's cause 5, SSH key issues)",
      'unchecked spec.resourceIdentifier: could not check: VPSieServer: HTTP 503',
      'wrong spec.kubernetesVersion: the cluster runs v1.34.4+k3s1: new nodes would not join (major.minor differ); set it to v1.34.x',
    ]);
  });

  it('without VPSie every VPSie check says why it was not made', () => {
    const none = sourceUnavailable<never>('VPSie credentials are not configured');
    const checks = nodeGroupChecks(nodeGroupSnapshot(), {
      ...allGood,
      catalog: none,
      sshKeys: none,
      vpsieCluster: none,
    });
    expect(checks.filter((c) => c.status === 'unchecked').map((c) => c.check)).toEqual([
      'offering 101',
      'datacenter 1',
      'image 201',
      'ssh key 11',
      'cluster cluster-1',
    ]);
    expect(checks.at(-1)).toMatchObject({ status: 'ok', check: 'kubernetesVersion v1.34.4' });
  });
});
