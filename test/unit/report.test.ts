/**
 * describeStatus for the stages after the wait: the one line the Temporal UI shows as a run's current details
 * (setCurrentDetails). A person reading it must know what the run waits for: who must approve what exactly, until
 * when; which step runs and until when; why it escalated; how it ended.
 */
import {
  classify,
  describeStatus,
  plan,
  unclassified,
  type Condition,
  type Evidence,
  type PlanStepStatus,
  type RunbookStatus,
} from '../../src/runbook';
import { evidenceOf, nodeGroupSnapshot, vmSnapshot, vpsieNodeSnapshot } from '../support/snapshots';

const NOW = Date.parse('2026-11-24T10:05:00Z');
const NODE = 'VPSieNode kube-system/ng-a-1';

const failedWith = (reason: string, message: string) =>
  vpsieNodeSnapshot({
    phase: 'Failed',
    conditions: [{ type: 'Error', status: 'True', reason, message } satisfies Condition],
    lastError: message,
  });
const withVM: Evidence['machine'] = {
  status: 'ok',
  value: { node: null, vm: vmSnapshot(), matchedBy: 'instance-id', ambiguous: [], cluster: 'found' },
};

/** A real plan for the evidence, every step pending, as the workflow holds it in status. */
function planned(e: Evidence): Pick<RunbookStatus, 'cause' | 'reasons' | 'also' | 'plan'> {
  const c = classify(e, NOW);
  const steps: PlanStepStatus[] = plan(c, e, { now: e.observedAt }).map((s) => ({
    ...s,
    state: 'pending',
    startedAt: null,
    endedAt: null,
    result: null,
  }));
  return { cause: c.cause, reasons: c.reasons, also: c.also, plan: steps };
}

const timeout = planned(
  evidenceOf({
    vpsieNode: failedWith('ProvisioningTimeout', 'Provisioning timeout exceeded (10m0s)'),
    machine: withVM,
  }),
);
const mismatch = planned(
  evidenceOf({ nodeGroup: { status: 'ok', value: nodeGroupSnapshot({ kubernetesVersion: 'v1.33.1' }) } }),
);
const leftBehind = planned(
  evidenceOf({ vpsieNode: null, lastSeen: vpsieNodeSnapshot({ vpsieInstanceID: 4242 }), machine: withVM }),
);

const base: RunbookStatus = {
  ref: { namespace: 'kube-system', name: 'ng-a-1' },
  stage: 'remediating',
  stageSince: '2026-11-24T10:05:00Z',
  startedAt: '2026-11-24T10:00:00Z',
  run: 1,
  checks: 3,
  progress: {
    kind: 'failed',
    reason: 'phase Failed (ProvisioningTimeout: Provisioning timeout exceeded (10m0s))',
  },
  nextCheckAt: null,
  outcome: null,
  error: null,
  ...unclassified(),
};

const pending = (stepId: string, s: Pick<RunbookStatus, 'plan'>) => {
  const step = s.plan.find((x) => x.id === stepId)!;
  return {
    stepId,
    kind: step.kind,
    target: step.target,
    requestedAt: '2026-11-24T10:05:00.000Z',
    expiresAt: '2026-11-24T11:05:00.000Z',
  };
};

describe('describeStatus: the fixtures are the plans the tests mean', () => {
  it('plans what each line below describes', () => {
    expect(timeout.cause).toBe('ProvisioningTimeout');
    expect(timeout.plan.map((s) => s.id)).toContain('wait-replacement');
    expect(mismatch.cause).toBe('KubernetesVersionMismatch');
    expect(mismatch.plan[0].id).toBe('patch-nodegroup-version');
    expect(leftBehind.cause).toBe('VPSieNodeGone');
    expect(leftBehind.plan.map((s) => s.id)).toEqual(['terminate-machine']);
  });
});

describe('describeStatus: gathering evidence', () => {
  it('says why the wait ended and what is being read', () => {
    expect(describeStatus({ ...base, stage: 'gathering-evidence' }, NOW)).toBe(
      `${NODE}: phase Failed (ProvisioningTimeout: Provisioning timeout exceeded (10m0s)); gathering evidence (VPSieNode, Events, controller logs, VPSie, Node, NodeGroup)`,
    );
  });
});

describe('describeStatus: awaiting approval', () => {
  it('names who may approve, the step, the exact object and UID, and the expiry', () => {
    const s: RunbookStatus = {
      ...base,
      ...timeout,
      stage: 'awaiting-approval',
      approvers: ['alice', 'bob'],
      currentStep: 'delete-vpsienode',
      pendingApproval: pending('delete-vpsienode', timeout),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; waiting until 2026-11-24T11:05:00.000Z for alice or bob to approve delete-vpsienode: VPSieNode kube-system/ng-a-1 (uid u1)`,
    );
  });

  it('says that anyone who may signal the workflow can approve when no approvers are configured', () => {
    const s: RunbookStatus = {
      ...base,
      ...timeout,
      stage: 'awaiting-approval',
      pendingApproval: pending('delete-vpsienode', timeout),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; waiting until 2026-11-24T11:05:00.000Z for anyone allowed to signal this workflow to approve delete-vpsienode: VPSieNode kube-system/ng-a-1 (uid u1)`,
    );
  });

  it('names the NodeGroup field and its change, before → after', () => {
    const s: RunbookStatus = {
      ...base,
      ...mismatch,
      stage: 'awaiting-approval',
      approvers: ['alice'],
      pendingApproval: pending('patch-nodegroup-version', mismatch),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: KubernetesVersionMismatch; waiting until 2026-11-24T11:05:00.000Z for alice to approve patch-nodegroup-version: NodeGroup kube-system/ng-a (uid ng-uid-1) spec.kubernetesVersion v1.33.1 → v1.34.4`,
    );
  });

  it('names the VM to terminate by id, hostname and identifier', () => {
    const s: RunbookStatus = {
      ...base,
      ...leftBehind,
      stage: 'awaiting-approval',
      pendingApproval: pending('terminate-machine', leftBehind),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: VPSieNodeGone; waiting until 2026-11-24T11:05:00.000Z for anyone allowed to signal this workflow to approve terminate-machine: VPSie VM 4242 ng-a-1-x1y2z (vm-uuid-4242)`,
    );
  });

  it('says it waits for approval in the moment before the request is recorded', () => {
    expect(describeStatus({ ...base, ...timeout, stage: 'awaiting-approval' }, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; waiting for approval`,
    );
  });
});

describe('describeStatus: remediating', () => {
  it('names the running wait, why, and its deadline', () => {
    const s: RunbookStatus = {
      ...base,
      ...timeout,
      plan: timeout.plan.map((x) =>
        x.id === 'wait-replacement'
          ? { ...x, state: 'running', wait: { until: '2026-11-24T10:31:00.000Z', onExpiry: 'continue' } }
          : x,
      ),
      currentStep: 'wait-replacement',
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; wait-replacement: Wait for NodeGroup ng-a to create a VPSieNode replacing uid u1. (until 2026-11-24T10:31:00.000Z)`,
    );
  });

  it('names a step that is not a wait without a deadline', () => {
    const s: RunbookStatus = {
      ...base,
      ...timeout,
      plan: timeout.plan.map((x) => (x.id === 'delete-vpsienode' ? { ...x, state: 'running' } : x)),
      currentStep: 'delete-vpsienode',
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; delete-vpsienode: Delete kube-system/ng-a-1 (uid u1) so that NodeGroup ng-a creates a new one.`,
    );
  });

  it('says remediating between steps', () => {
    expect(describeStatus({ ...base, ...timeout }, NOW)).toBe(`${NODE}: ProvisioningTimeout; remediating`);
  });
});

const escalation = (over: Partial<NonNullable<RunbookStatus['escalation']>> = {}) => ({
  workflowId: 'provisioning-failed/kube-system/ng-a-1',
  runId: 'run-1',
  ref: { namespace: 'kube-system', name: 'ng-a-1' },
  uid: 'u1',
  cause: 'ProvisioningTimeout',
  kind: 'wait-expired' as const,
  reason: 'wait-replacement-after-reconcile expired: NodeGroup ng-a created no replacement in time.',
  step: 'wait-replacement-after-reconcile',
  evidence: [],
  record: null,
  ...over,
});

describe('describeStatus: escalating', () => {
  it('names the cause and why the run hands over', () => {
    expect(describeStatus({ ...base, ...timeout, stage: 'escalating', escalation: escalation() }, NOW)).toBe(
      `${NODE}: ProvisioningTimeout; escalating: wait-replacement-after-reconcile expired: NodeGroup ng-a created no replacement in time.`,
    );
  });

  it('says the node was not classified when the VPSieNode could not be read', () => {
    const s: RunbookStatus = {
      ...base,
      stage: 'escalating',
      escalation: escalation({
        cause: null,
        kind: 'read-failed',
        step: null,
        reason: 'VPSieNode kube-system/ng-a-1 could not be read: Kubernetes403: forbidden',
      }),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: not classified; escalating: VPSieNode kube-system/ng-a-1 could not be read: Kubernetes403: forbidden`,
    );
  });
});

describe('describeStatus: completed', () => {
  const done = { ...base, ...timeout, stage: 'completed' as const };

  it('gives an escalation its reason', () => {
    expect(describeStatus({ ...done, outcome: 'Escalated', escalation: escalation() }, NOW)).toBe(
      `${NODE}: Escalated (wait-replacement-after-reconcile expired: NodeGroup ng-a created no replacement in time.)`,
    );
  });

  it('gives an expired approval the escalation’s reason', () => {
    const reason =
      'Nobody approved or rejected delete-vpsienode (VPSieNode kube-system/ng-a-1 (uid u1)) in time; nothing was done.';
    const s: RunbookStatus = {
      ...done,
      outcome: 'ApprovalExpired',
      escalation: escalation({ kind: 'approval-expired', step: 'delete-vpsienode', reason }),
    };
    expect(describeStatus(s, NOW)).toBe(`${NODE}: ApprovalExpired (${reason})`);
  });

  it('names the failed step and its error before the escalation it led to', () => {
    const s: RunbookStatus = {
      ...done,
      outcome: 'Escalated',
      error: {
        step: 'deleteVPSieNode',
        type: 'Kubernetes403',
        message: 'vpsienodes "ng-a-1" is forbidden',
        retryState: 'NON_RETRYABLE_FAILURE',
      },
      escalation: escalation({
        kind: 'step-failed',
        step: 'delete-vpsienode',
        reason: 'delete-vpsienode failed',
      }),
    };
    expect(describeStatus(s, NOW)).toBe(
      `${NODE}: Escalated (deleteVPSieNode: Kubernetes403: vpsienodes "ng-a-1" is forbidden)`,
    );
  });

  it.each([['Remediated'], ['Rejected'], ['DryRun']] as const)(
    'names the cause of a run that ended %s',
    (outcome) => {
      expect(describeStatus({ ...done, outcome }, NOW)).toBe(
        `${NODE}: ${outcome} (cause ProvisioningTimeout)`,
      );
    },
  );

  it('names the observation when nothing was classified', () => {
    const s: RunbookStatus = {
      ...base,
      stage: 'completed',
      outcome: 'recovered',
      progress: { kind: 'healthy', reason: 'phase Ready' },
    };
    expect(describeStatus(s, NOW)).toBe(`${NODE}: recovered (phase Ready)`);
  });
});
