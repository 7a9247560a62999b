import { parse } from 'yaml';
import {
  bundleBytes,
  capBundle,
  escalationSummary,
  MAX_BUNDLE_BYTES,
  MAX_SUMMARY_LENGTH,
  severityOf,
} from '../../src/runbook/evidence-bundle';
import { vpsieNodeYaml } from '../../src/activities/escalation';
import { bundleOf, escalationOf, rawVPSieNode } from '../support/bundles';
import { evidenceOf } from '../support/snapshots';

describe('the evidence bundle', () => {
  it('holds the VPSieNode as kubectl shows it minus managedFields, and every source the runbook read', () => {
    const b = bundleOf();
    expect(b.vpsieNodeYaml.status).toBe('ok');
    const yaml = (b.vpsieNodeYaml as { value: string }).value;
    expect(yaml).toMatch(/^apiVersion: autoscaler.vpsie.com\/v1alpha1\nkind: VPSieNode\nmetadata:\n/);
    expect(yaml).not.toMatch(/managedFields/);
    const metadata = { ...(rawVPSieNode().metadata as Record<string, unknown>) };
    delete metadata.managedFields;
    expect(parse(yaml)).toEqual({ ...rawVPSieNode(), metadata });

    expect(b).toMatchObject({
      workflowId: 'provisioning-failed/kube-system/ng-a-1',
      vpsieNode: { namespace: 'kube-system', name: 'ng-a-1', uid: 'u1' },
      nodeGroup: 'ng-a',
      audience: 'vpsie-support',
      severity: 'critical',
      cause: 'VMCreationFailed',
      also: ['ProvisioningTimeout'],
      machine: { status: 'ok', value: { status: 'error', vm: { id: 4242 }, matchedBy: 'instance-id' } },
      node: { status: 'ok', value: { node: { name: 'ng-a-1-abcde', readyStatus: 'False' } } },
      events: { status: 'ok', value: [{ reason: 'PhaseFailed' }] },
      controllerLogs: { status: 'ok', value: { pods: [{ pod: 'vpsie-autoscaler-controller-abc' }] } },
      plan: [{ id: 'escalate', state: 'running', target: 'people, with cause VMCreationFailed' }],
      reasons: [{ finding: 'invalid-catalog' }],
      truncated: [],
    });
    expect(b.observedAt).toBe('2026-11-24T10:05:00Z');
  });

  it('says why a source is missing: the VPSieNode gone, or the whole evidence unreadable', () => {
    const gone = bundleOf({
      vpsieNodeYaml: { status: 'ok', value: null },
      evidence: { status: 'ok', value: evidenceOf({ vpsieNode: null }) },
    });
    expect(gone.vpsieNodeYaml).toEqual({ status: 'ok', value: null });
    const unread = bundleOf({
      vpsieNodeYaml: { status: 'error', type: 'Kubernetes403', message: 'forbidden' },
      evidence: { status: 'unavailable', why: 'not read within 20000 ms' },
    });
    expect(unread.vpsieNodeYaml).toEqual({ status: 'error', type: 'Kubernetes403', message: 'forbidden' });
    for (const s of [unread.events, unread.controllerLogs, unread.machine, unread.node])
      expect(s).toEqual({ status: 'unavailable', why: 'not read within 20000 ms' });
    expect(unread.observedAt).toBe('2026-11-24T10:12:30.000Z');
  });

  it('stays within its cap however large and multi-byte the evidence is, and says what it cut', () => {
    const line = 'ノードが登録されていません 🚫 '.repeat(60);
    const ev = bundleOf().controllerLogs;
    const huge = bundleOf({
      escalation: escalationOf({
        reason: line.repeat(20),
        evidence: Array.from({ length: 500 }, () => line),
      }),
      vpsieNodeYaml: {
        status: 'ok',
        value: vpsieNodeYaml(
          rawVPSieNode({ metadata: { name: 'ng-a-1', annotations: { big: line.repeat(200) } } }),
        ),
      },
      context: {
        reasons: Array.from({ length: 100 }, () => ({
          finding: 'phase' as const,
          source: 'vpsieNode' as const,
          field: 'status.phase',
          value: line,
          says: line,
        })),
        decisions: Array.from({ length: 300 }, (_, i) => ({
          stepId: 'delete-vpsienode',
          decision: 'approve' as const,
          approver: `person-${i}`,
          reason: line.slice(0, 300),
          via: 'signal' as const,
          at: '2026-11-24T10:12:00Z',
          accepted: false,
          refusal: 'not an approver',
        })),
      },
    });
    expect(ev.status).toBe('ok');
    expect(bundleBytes(huge)).toBeLessThanOrEqual(MAX_BUNDLE_BYTES);
    expect(huge.truncated).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^evidence lines: first 100 of 500 kept$/),
        expect.stringMatching(/^vpsieNodeYaml: /),
        expect.stringMatching(/^decisions: last 50 of 300 kept$/),
      ]),
    );
    // the identifying fields always survive
    expect(huge).toMatchObject({
      workflowId: 'provisioning-failed/kube-system/ng-a-1',
      cause: 'VMCreationFailed',
    });
    // and a tiny cap still terminates with the identifying fields
    const tiny = capBundle(huge, 8 * 1024);
    expect(bundleBytes(tiny)).toBeLessThanOrEqual(8 * 1024);
    expect(tiny.workflowId).toBe(huge.workflowId);
  });

  it('summarises in one line of at most 1024 characters', () => {
    const s = escalationSummary(escalationOf({ reason: `first line\nsecond ${'x'.repeat(3000)}` }));
    expect(s.length).toBe(MAX_SUMMARY_LENGTH);
    expect(s).toMatch(/^VPSieNode kube-system\/ng-a-1: VMCreationFailed: first line second x+…$/);
    expect(escalationSummary(escalationOf({ cause: null, kind: 'read-failed', reason: 'r' }))).toBe(
      'VPSieNode kube-system/ng-a-1: read-failed: r',
    );
  });

  it('takes the severity of the alert: Failed is critical, stuck is a warning, unread is an error', () => {
    expect(severityOf('Failed')).toBe('critical');
    expect(severityOf('Provisioning')).toBe('warning');
    expect(severityOf(null)).toBe('error');
    expect(severityOf('Failed', 'info')).toBe('info');
  });

  it('writes YAML for any object, without managedFields', () => {
    expect(vpsieNodeYaml({ apiVersion: 'v1', kind: 'X', metadata: { name: 'a', managedFields: [{}] } })).toBe(
      'apiVersion: v1\nkind: X\nmetadata:\n  name: a\n',
    );
  });
});
