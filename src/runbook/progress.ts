import type { VPSieNodeSnapshot } from './types';

/**
 * The controller's own limits (vpsie-k8s-autoscaler): 10 minutes for the VM to provision, 15 minutes for the
 * node to join. Until they pass the controller is still working on the node, and acting on it would race it.
 */
export const CONTROLLER_PROVISIONING_LIMIT_MS = 10 * 60_000;
export const CONTROLLER_JOINING_LIMIT_MS = 15 * 60_000;

export interface ProgressLimits {
  provisioningLimitMs: number;
  joiningLimitMs: number;
}

export type Progress =
  /** The VPSieNode no longer exists: the alert is stale or someone already cleaned up. */
  | { kind: 'missing'; reason: string }
  /** Being deleted; the controller owns it until its finalizer is gone. */
  | { kind: 'terminating'; reason: string }
  /** The node became Ready: nothing left to do. */
  | { kind: 'healthy'; reason: string }
  /** Still inside the controller's own limit: look again at `recheckAt`. */
  | { kind: 'in-progress'; reason: string; deadline: string }
  /** Past the controller's limit without becoming Ready (runbook cause 3, timeout during provisioning). */
  | { kind: 'stuck'; reason: string; deadline: string }
  /** The controller gave up and set phase Failed. */
  | { kind: 'failed'; reason: string };

function at(iso: string | null): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

function failureReason(n: VPSieNodeSnapshot): string {
  const errorCondition = n.conditions.find((c) => c.type === 'Error' && c.status === 'True');
  const detail = [errorCondition?.reason, errorCondition?.message ?? n.lastError].filter(Boolean).join(': ');
  return detail ? `phase Failed (${detail})` : 'phase Failed';
}

/**
 * Where a VPSieNode stands against the controller's limits at `nowMs`. Pure: the workflow passes its own
 * deterministic clock.
 */
export function assessProgress(
  node: VPSieNodeSnapshot | null,
  nowMs: number,
  limits: ProgressLimits,
): Progress {
  if (!node) return { kind: 'missing', reason: 'VPSieNode not found' };
  if (node.deletionTimestamp) {
    return { kind: 'terminating', reason: `being deleted since ${node.deletionTimestamp}` };
  }
  switch (node.phase) {
    case 'Ready':
      return { kind: 'healthy', reason: 'phase Ready' };
    case 'Failed':
      return { kind: 'failed', reason: failureReason(node) };
    case 'Terminating':
    case 'Deleting':
      return { kind: 'terminating', reason: `phase ${node.phase}` };
    default:
      break;
  }
  const joining = node.phase === 'Provisioned' || node.phase === 'Joining';
  // Joining is timed from when the VM came up; provisioning from when the controller started.
  const since = joining
    ? (at(node.provisionedAt) ?? at(node.provisioningStartedAt))
    : at(node.provisioningStartedAt);
  const limit = joining ? limits.joiningLimitMs : limits.provisioningLimitMs;
  const phase = node.phase ?? 'no phase';
  if (since === null) {
    // No start time at all: we cannot tell whether the controller still has time, so we do not wait for it.
    return { kind: 'stuck', reason: `${phase} with no start time`, deadline: new Date(nowMs).toISOString() };
  }
  const deadline = new Date(since + limit).toISOString();
  const elapsedMin = Math.floor((nowMs - since) / 60_000);
  if (nowMs < since + limit) {
    return {
      kind: 'in-progress',
      reason: `${phase} for ${elapsedMin} min, within the controller's limit`,
      deadline,
    };
  }
  return { kind: 'stuck', reason: `${phase} for ${elapsedMin} min, past the controller's limit`, deadline };
}
