import {
  assessProgress,
  describeStatus,
  outcomeOf,
  toVPSieNodeSnapshot,
  unclassified,
  type RunbookStatus,
  type VPSieNodeSnapshot,
} from '../../src/runbook';
import { vpsieNodeSnapshot } from '../support/snapshots';

const limits = { provisioningLimitMs: 10 * 60_000, joiningLimitMs: 15 * 60_000 };
const t0 = Date.parse('2026-11-24T10:00:00Z');
const min = 60_000;

function node(phase: string | null, extra: Partial<VPSieNodeSnapshot> = {}): VPSieNodeSnapshot {
  return vpsieNodeSnapshot({ phase, provisioningStartedAt: new Date(t0).toISOString(), ...extra });
}

describe('assessProgress', () => {
  it('waits for the controller while provisioning is inside its 10 minute limit', () => {
    const p = assessProgress(node('Provisioning'), t0 + 4 * min, limits);
    expect(p).toMatchObject({ kind: 'in-progress', deadline: '2026-11-24T10:10:00.000Z' });
    expect(outcomeOf(p)).toBeNull();
  });

  it('calls provisioning past the limit stuck', () => {
    const p = assessProgress(node('Provisioning'), t0 + 11 * min, limits);
    expect(p).toMatchObject({ kind: 'stuck' });
    expect(p.reason).toContain('11 min');
    expect(outcomeOf(p)).toBe('needs-remediation');
  });

  it('times joining from provisionedAt with the 15 minute limit', () => {
    const joining = node('Joining', { provisionedAt: new Date(t0 + 8 * min).toISOString() });
    expect(assessProgress(joining, t0 + 20 * min, limits).kind).toBe('in-progress');
    expect(assessProgress(joining, t0 + 24 * min, limits).kind).toBe('stuck');
  });

  it('does not wait when there is no start time at all', () => {
    expect(assessProgress(node('Pending', { provisioningStartedAt: null }), t0, limits).kind).toBe('stuck');
  });

  it('reports Failed with the Error condition', () => {
    const failed = node('Failed', {
      conditions: [{ type: 'Error', status: 'True', reason: 'VPSieAPIError', message: 'quota exceeded' }],
    });
    const p = assessProgress(failed, t0, limits);
    expect(p).toEqual({ kind: 'failed', reason: 'phase Failed (VPSieAPIError: quota exceeded)' });
  });

  it.each([
    [null, 'missing', 'not-found'],
    [node('Ready'), 'healthy', 'recovered'],
    [node('Terminating'), 'terminating', 'terminating'],
    [node('Provisioning', { deletionTimestamp: '2026-11-24T10:01:00Z' }), 'terminating', 'terminating'],
  ])('%#: maps to %s / %s', (n, kind, outcome) => {
    const p = assessProgress(n, t0 + min, limits);
    expect(p.kind).toBe(kind);
    expect(outcomeOf(p)).toBe(outcome);
  });
});

describe('toVPSieNodeSnapshot', () => {
  const base = {
    apiVersion: 'autoscaler.vpsie.com/v1alpha1',
    kind: 'VPSieNode',
    metadata: {
      name: 'ng-a-1',
      namespace: 'kube-system',
      uid: 'abc',
      resourceVersion: '42',
      creationTimestamp: '2026-11-24T09:00:00Z',
    },
    spec: { vpsieInstanceID: 1234, nodeGroupName: 'ng-a', nodeName: 'spec-node' },
    status: {
      phase: 'Joining',
      provisionedAt: '2026-11-24T09:05:00Z',
      conditions: [{ type: 'VPSReady', status: 'True' }],
    },
  };

  it('takes the provisioning start from status.createdAt when present', () => {
    const s = toVPSieNodeSnapshot({ ...base, status: { ...base.status, createdAt: '2026-11-24T09:01:00Z' } });
    expect(s.provisioningStartedAt).toBe('2026-11-24T09:01:00Z');
  });

  it('falls back to metadata.creationTimestamp', () => {
    const s = toVPSieNodeSnapshot(base);
    expect(s).toMatchObject({
      provisioningStartedAt: '2026-11-24T09:00:00Z',
      vpsieInstanceID: 1234,
      nodeName: 'spec-node',
      phase: 'Joining',
      conditions: [{ type: 'VPSReady', status: 'True' }],
    });
  });

  it('treats a missing instance id as 0 (no VM created)', () => {
    expect(toVPSieNodeSnapshot({ ...base, spec: {} }).vpsieInstanceID).toBe(0);
  });

  it('refuses an object without a name', () => {
    expect(() => toVPSieNodeSnapshot({ metadata: {} })).toThrow(/metadata\.name/);
  });
});

describe('describeStatus', () => {
  const ref = { namespace: 'kube-system', name: 'ng-a-1' };
  const base: RunbookStatus = {
    ref,
    stage: 'diagnosing',
    stageSince: '2026-11-24T10:00:00Z',
    startedAt: '2026-11-24T10:00:00Z',
    run: 1,
    checks: 1,
    progress: null,
    nextCheckAt: null,
    outcome: null,
    error: null,
    ...unclassified(),
  };
  const inProgress = {
    kind: 'in-progress' as const,
    reason: 'Provisioning for 4 min',
    deadline: '2026-11-24T10:10:00Z',
  };

  it('says what the run waits for and when it looks next', () => {
    const text = describeStatus(
      {
        ...base,
        stage: 'waiting-for-controller',
        progress: inProgress,
        nextCheckAt: new Date(t0 + 90_000).toISOString(),
      },
      t0,
    );
    expect(text).toBe(
      'VPSieNode kube-system/ng-a-1: Provisioning for 4 min; waiting for the controller, next check in 1m 30s',
    );
  });

  it('says which look it is making before the first wait', () => {
    expect(describeStatus({ ...base, checks: 0 }, t0)).toBe(
      'Checking VPSieNode kube-system/ng-a-1 (check 1)',
    );
  });

  it('says when it is looking again while it waits', () => {
    const text = describeStatus({ ...base, stage: 'waiting-for-controller', progress: inProgress }, t0);
    expect(text).toBe('VPSieNode kube-system/ng-a-1: Provisioning for 4 min; checking again (check 2)');
  });

  // The later stages (evidence, approval, remediation, escalation) are in report.test.ts.
  it('names the outcome of a run from before the whole runbook when done', () => {
    const text = describeStatus(
      {
        ...base,
        stage: 'completed',
        outcome: 'recovered',
        progress: { kind: 'healthy', reason: 'phase Ready' },
      },
      t0,
    );
    expect(text).toBe('VPSieNode kube-system/ng-a-1: recovered (phase Ready)');
  });

  it('names the failed step and its error when the read failed (runs from before the whole runbook)', () => {
    const text = describeStatus(
      {
        ...base,
        stage: 'completed',
        outcome: 'read-failed',
        error: {
          step: 'checkVPSieNode',
          type: 'Kubernetes403',
          message: 'vpsienodes "ng-a-1" is forbidden',
          retryState: 'NON_RETRYABLE_FAILURE',
        },
      },
      t0,
    );
    expect(text).toBe(
      'VPSieNode kube-system/ng-a-1: read-failed (checkVPSieNode: Kubernetes403: vpsienodes "ng-a-1" is forbidden)',
    );
  });
});
