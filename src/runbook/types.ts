/**
 * The runbook's vocabulary as plain data. Nothing here imports Temporal or does I/O, so workflows, activities,
 * clients and tests can all share it.
 */

/** Names a VPSieNode custom resource (`autoscaler.vpsie.com/v1alpha1`, namespaced). */
export interface VPSieNodeRef {
  namespace: string;
  name: string;
}

export const VPSIENODE_PHASES = [
  'Pending',
  'Provisioning',
  'Provisioned',
  'Joining',
  'Ready',
  'Terminating',
  'Deleting',
  'Failed',
] as const;
export type VPSieNodePhase = (typeof VPSIENODE_PHASES)[number];

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

/**
 * What the runbook's step 1 ("Check VPSieNode Status") reads from a VPSieNode. Secrets never appear here: the
 * resource holds none, and only the fields the runbook reasons about are kept.
 */
export interface VPSieNodeSnapshot {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  /** Unknown phases are kept verbatim rather than dropped: the controller may be newer than we are. */
  phase: VPSieNodePhase | string | null;
  /** 0 means the controller never got a VM from VPSie (runbook cause 1). */
  vpsieInstanceID: number;
  nodeGroupName: string | null;
  /** Node name from status, falling back to spec. */
  nodeName: string | null;
  /**
   * When provisioning started. The runbook says `status.provisioningStartTime`, which the real resource does not
   * have: it is `status.createdAt`, falling back to `metadata.creationTimestamp`.
   */
  provisioningStartedAt: string | null;
  provisionedAt: string | null;
  joinedAt: string | null;
  readyAt: string | null;
  deletionTimestamp: string | null;
  lastError: string | null;
  conditions: Condition[];
}
