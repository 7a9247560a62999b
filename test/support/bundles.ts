/**
 * Escalations and evidence bundles for the pure tests of the evidence bundle and the channels' payloads.
 */
import { vpsieNodeYaml } from '../../src/activities/escalation';
import type { Escalation } from '../../src/runbook';
import {
  buildEvidenceBundle,
  type BundleInput,
  type EscalationContext,
  type EvidenceBundle,
} from '../../src/runbook/evidence-bundle';
import { evidenceOf, nodeRegistration, vmSnapshot, vpsieNodeSnapshot } from './snapshots';

/** A cause-1 escalation of ng-a-1: the catalog names an offering VPSie lacks. */
export function escalationOf(over: Partial<Escalation> = {}): Escalation {
  return {
    workflowId: 'provisioning-failed/kube-system/ng-a-1',
    runId: '0b7c3f52-5f1e-4a55-9d0e-6f9a6c7e1d11',
    ref: { namespace: 'kube-system', name: 'ng-a-1' },
    uid: 'u1',
    cause: 'VMCreationFailed',
    kind: 'cause',
    reason: 'VPSie refused to create the VM: the NodeGroup names offering 999, which VPSie does not have.',
    step: 'escalate',
    evidence: [
      'NodeGroup names offering 999, unknown to VPSie (catalog offeringIDs: 999)',
      'controllerLogs line: {"level":"error","msg":"failed to create VPS","vpsienode":"ng-a-1"}',
    ],
    ...over,
  };
}

/** The VPSieNode as the apiserver answers it, managedFields and all. */
export function rawVPSieNode(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'autoscaler.vpsie.com/v1alpha1',
    kind: 'VPSieNode',
    metadata: {
      name: 'ng-a-1',
      namespace: 'kube-system',
      uid: 'u1',
      resourceVersion: '812',
      creationTimestamp: '2026-11-24T10:00:00Z',
      labels: { 'autoscaler.vpsie.com/nodegroup': 'ng-a' },
      managedFields: [
        { manager: 'vpsie-autoscaler', operation: 'Update', fieldsType: 'FieldsV1', fieldsV1: {} },
      ],
    },
    spec: { nodeGroupName: 'ng-a', vpsieInstanceID: 4242, vpsieGroupID: 7, resourceIdentifier: 'cluster-1' },
    status: {
      phase: 'Failed',
      lastError: 'failed to create VPS: offering 999 not found',
      conditions: [
        { type: 'Error', status: 'True', reason: 'VPSieAPIError', message: 'offering 999 not found' },
      ],
    },
    ...over,
  };
}

export const CONTEXT: EscalationContext = {
  reasons: [
    {
      finding: 'invalid-catalog',
      source: 'catalog',
      field: 'offeringIDs',
      value: '999',
      says: 'The NodeGroup names offering 999, which VPSie does not have.',
    },
  ],
  also: ['ProvisioningTimeout'],
  plan: [
    {
      id: 'escalate',
      kind: 'escalate',
      destructive: false,
      target: { kind: 'Escalation', cause: 'VMCreationFailed', evidence: [] },
      why: 'A person must fix the NodeGroup.',
      state: 'running',
      startedAt: '2026-11-24T10:12:00Z',
      endedAt: null,
      result: null,
    },
  ],
  decisions: [],
  error: null,
};

export function bundleOf(over: Partial<BundleInput> = {}): EvidenceBundle {
  return buildEvidenceBundle({
    escalation: escalationOf(),
    route: { audience: 'vpsie-support', why: 'cause VMCreationFailed: VPSie did not create the VM' },
    severity: 'critical',
    vpsieNodeYaml: { status: 'ok', value: vpsieNodeYaml(rawVPSieNode()) },
    evidence: {
      status: 'ok',
      value: evidenceOf({
        vpsieNode: vpsieNodeSnapshot({ phase: 'Failed', vpsieInstanceID: 4242 }),
        events: {
          status: 'ok',
          value: [
            {
              type: 'Warning',
              reason: 'PhaseFailed',
              message: 'VPSieNode failed: offering 999 not found',
              count: 1,
              firstSeen: '2026-11-24T10:10:00Z',
              lastSeen: '2026-11-24T10:10:00Z',
              source: 'vpsie-autoscaler',
              involvedObject: { kind: 'VPSieNode', name: 'ng-a-1', uid: 'u1' },
            },
          ],
        },
        controllerLogs: {
          status: 'ok',
          value: {
            pods: [
              {
                pod: 'vpsie-autoscaler-controller-abc',
                container: 'controller',
                lines: [
                  '{"level":"error","msg":"failed to create VPS","vpsienode":"ng-a-1","error":"offering 999 not found"}',
                ],
                error: null,
              },
            ],
            note: null,
          },
        },
        machine: {
          status: 'ok',
          value: {
            node: null,
            vm: vmSnapshot({ status: 'error' }),
            matchedBy: 'instance-id',
            ambiguous: [],
            cluster: 'unset',
          },
        },
        node: { status: 'ok', value: nodeRegistration({ readyStatus: 'False' }) },
      }),
    },
    context: CONTEXT,
    now: '2026-11-24T10:12:30.000Z',
    ...over,
  });
}
