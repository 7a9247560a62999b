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
  /**
   * When the controller last rewrote the condition. While a node is in flight it does so on every requeue (every
   * few seconds), so this moving says the controller is alive, not that anything changed.
   */
  lastUpdateTime?: string;
}

/**
 * What the runbook's step 1 ("Check VPSieNode Status") reads from a VPSieNode. Secrets never appear here: the
 * resource holds none, and only the fields the runbook reasons about are kept (this lands in workflow history).
 */
export interface VPSieNodeSnapshot {
  namespace: string;
  name: string;
  /** The precondition of every act on this VPSieNode: a same-named replacement has another UID. */
  uid: string;
  /** Changes every few seconds while the controller works on the node: never a precondition. */
  resourceVersion: string;
  /** Unknown phases are kept verbatim rather than dropped: the controller may be newer than we are. */
  phase: VPSieNodePhase | string | null;
  /**
   * spec.vpsieInstanceID; 0 while the controller does not know the VM's id. Not proof that no VM exists: creation
   * through the managed-Kubernetes API is often asynchronous (see creationRequested, vpsieNodeIdentifier,
   * ipAddress, hostname, vpsieStatus).
   */
  vpsieInstanceID: number;
  /** Annotation `autoscaler.vpsie.com/creation-requested` is "true": VPSie accepted a create, the id may come later. */
  creationRequested: boolean;
  /** spec.vpsieNodeIdentifier: VPSie's UUID of the node, when the create answer carried one. */
  vpsieNodeIdentifier: string | null;
  /** spec.vpsieGroupID: the VPSie node group the VM is added to; 0 when unset (the controller refuses that). */
  vpsieGroupID: number;
  /** spec.resourceIdentifier: the VPSie Kubernetes cluster id. */
  resourceIdentifier: string | null;
  nodeGroupName: string | null;
  /** spec.ipAddress / spec.ipv6Address: set once the controller found the VM. The Node is matched by them first. */
  ipAddress: string | null;
  ipv6Address: string | null;
  /** status.hostname: the VM's hostname. */
  hostname: string | null;
  /** status.vpsieStatus: the VM's status as VPSie reported it (running, stopped, ...). */
  vpsieStatus: string | null;
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
  /** What still holds a deleted VPSieNode (the controller's finalizer until the VM is gone). */
  finalizers: string[];
  lastError: string | null;
  conditions: Condition[];
}
