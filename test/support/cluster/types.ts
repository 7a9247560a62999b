/**
 * Public types of the cluster simulator, and the wire shapes of the autoscaler's custom resources as upstream's
 * Go types serialise them (`pkg/apis/autoscaler/v1alpha1/*_types.go`).
 */
import type { KubeConfig, V1Taint } from '@kubernetes/client-node';
import type { VPSieSimulator } from '../vpsie-simulator';

// ---------------------------------------------------------------------------------------------------------
// Scenarios

/**
 * How the world treats one VPSieNode (or the next VPSieNodes of a NodeGroup). The controller is always the
 * same; a scenario only changes what VPSie answers, what VPSie's machine does, or what its kubelet does.
 *
 * - `healthy`: VPSie accepts the add/slave request and makes the machine, it boots, its kubelet registers.
 * - `vm-creation-fails` (cause 1): add/slave answers an error (`status`, `error`). The VPSieNode stays
 *   Provisioning with `lastError` and reason VPSieAPIError, and PhaseFailed Events, until ProvisioningTimeout.
 * - `capacity-limit` (cause 1, quota): add/slave answers `{"error": true, ..., "Worker nodes count exceeds the
 *   allowed limit"}`: Failed at once with CapacityLimitReached; the NodeGroup pauses and deletes such nodes.
 * - `creation-never-completes`: add/slave is accepted with id 0 but VPSie never makes the node: Provisioning
 *   with the creation-requested annotation and `vpsieInstanceID` 0 until ProvisioningTimeout.
 * - `stuck-provisioning` (cause 3): VPSie makes the machine but it never boots (`vmStatus`, default
 *   `provisioning`): nothing to discover or to see running; ProvisioningTimeout.
 * - `never-registers` (cause 2): the machine runs, its kubelet never registers. With an id known (a `sync`
 *   answer, or a hostname that starts with the VPSieNode's name) the VPSieNode reaches Joining and fails with
 *   JoiningTimeout; otherwise discovery never finds it (it looks for Nodes) and it fails ProvisioningTimeout.
 * - `k8s-managed`: the machine never appears in `GET /vm`; discovery finds its Node, the VPSieNode goes
 *   Provisioned → Ready with `vpsieInstanceID` 0 and `spec.ipAddress` set. Upstream only looks at Nodes when
 *   `GET /vm` lists at least one running VM, so the account needs one (a test adds it).
 * - `version-mismatch` (cause 4): writes a version that does not match the cluster's into the target's
 *   `spec.kubernetesVersion`; a machine whose VPSieNode carries such a version runs a kubelet that never
 *   registers (its journal says why; the controller logs nothing about it). Upstream never sends the version
 *   to VPSie: following the VPSieNode's spec is the runbook's model, so fixing the NodeGroup fixes replacements.
 * - `unknown-ssh-keys` (cause 5): writes SSH key ids the VPSie account does not have into the target's
 *   `spec.sshKeyIDs`. Nothing else changes: upstream never sends them to VPSie (combine with a behaviour).
 * - `vm-delete-fails`: `DELETE …/delete/slave` and `DELETE /vm/{id}` answer 500: after three attempts the
 *   VPSieNode goes Failed with VPSDeleteFailed, then Terminating again; the finalizer stays.
 */
export type Scenario =
  | 'healthy'
  | 'vm-creation-fails'
  | 'capacity-limit'
  | 'creation-never-completes'
  | 'stuck-provisioning'
  | 'never-registers'
  | 'k8s-managed'
  | 'version-mismatch'
  | 'unknown-ssh-keys'
  | 'vm-delete-fails';

/** A VPSieNode by name (in the simulator's namespace), or a NodeGroup. */
export type StageTarget = string | { vpsieNode: string } | { nodeGroup: string };

/** How VPSie answers `POST …/add/slave/group/{gid}` (see the VPSie simulator). */
export type AddSlaveAnswer = 'async-identifier' | 'async-true' | 'sync';

export interface StageOptions {
  /** NodeGroup targets: how many VPSieNodes of the group first seen from now on get it (default: all). */
  count?: number;
  /** `vm-creation-fails`: the message VPSie answers. */
  error?: string;
  /** `vm-creation-fails`: the HTTP status (default 500); 200 answers `{"error": true, "code": 400, ...}`. */
  status?: number;
  /** `version-mismatch`: the wrong version (default: four minors older than the cluster). */
  kubernetesVersion?: string;
  /** `unknown-ssh-keys`: the unknown key ids (default: one random id). */
  sshKeyIDs?: string[];
  /** `stuck-provisioning`: the status the machine keeps (default `provisioning`). */
  vmStatus?: string;
  /** How VPSie answers add/slave for this target (default: the simulator's world option). */
  answer?: AddSlaveAnswer;
  /** Whether VPSie names the machine after the VPSieNode (default: the simulator's world option). */
  hostnamePrefix?: boolean;
  /** Whether VPSie lists the machine in `GET /vm` (default: the world option; `k8s-managed` forces false). */
  inVmList?: boolean;
  /**
   * The InternalIP the machine's kubelet registers with, when it is not the machine's VPSie IP (a private
   * network): the controller then finds the Node by name, not by IP.
   */
  nodeIP?: string;
}

// ---------------------------------------------------------------------------------------------------------
// Timings: production values written next to the test defaults

export interface SimTimings {
  /** Controller FastRequeueAfter while provisioning/joining. Production 10 s. */
  fastRequeueMs: number;
  /** Controller DefaultRequeueAfter (Ready, NodeGroups). Production 30 s. */
  requeueMs: number;
  /** controller-runtime's per-object error backoff: base × 2^failures, capped. Production 5 ms … 1000 s. */
  errorBackoffBaseMs: number;
  errorBackoffMaxMs: number;
  /** Manager SyncPeriod: every object is reconciled at least this often. Production 10 min. */
  syncPeriodMs: number;
  /** ProvisioningTimeout, from `status.createdAt`. Production 10 min. */
  provisioningTimeoutMs: number;
  /** JoiningTimeout, from `status.provisionedAt`. Production 15 min. */
  joiningTimeoutMs: number;
  /** Discoverer DiscoveryTimeout, from `status.createdAt`. Production 15 min. */
  discoveryTimeoutMs: number;
  /** Discoverer MaxNodeAge: older unclaimed Nodes are ignored. Production 30 min. */
  maxNodeAgeMs: number;
  /** FailedVPSieNodeTTL (options.go): a Failed VPSieNode is deleted this long after failing. Production 30 min. */
  failedNodeTtlMs: number;
  /** Terminator RetryDelay between the three VPS delete attempts. Production 5 s. */
  vpsDeleteRetryDelayMs: number;
  /** NodeGroup deletion: requeue while its VPSieNodes go. Production 5 s. */
  nodeGroupDeleteRequeueMs: number;
  /** client-go's event spam filter: one more Event per object per this long once 25 are spent. Prod. 5 min. */
  eventSpamRefillMs: number;
  /** VPSie: from an accepted add/slave to the machine existing. Production: minutes. */
  vpsieCreateMs: number;
  /** VPSie: from the machine existing to it running. Production: minutes. */
  vmBootMs: number;
  /** kubelet: from the machine running to its Node registered. */
  nodeRegisterMs: number;
  /** kubelet: from registered to Ready=True. */
  nodeReadyMs: number;
}

/** Every production value (what the simulator plays with `timings: PRODUCTION_TIMINGS`). */
export const PRODUCTION_TIMINGS: Readonly<SimTimings> = {
  fastRequeueMs: 10_000,
  requeueMs: 30_000,
  errorBackoffBaseMs: 5,
  errorBackoffMaxMs: 1_000_000,
  syncPeriodMs: 10 * 60_000,
  provisioningTimeoutMs: 10 * 60_000,
  joiningTimeoutMs: 15 * 60_000,
  discoveryTimeoutMs: 15 * 60_000,
  maxNodeAgeMs: 30 * 60_000,
  failedNodeTtlMs: 30 * 60_000,
  vpsDeleteRetryDelayMs: 5_000,
  nodeGroupDeleteRequeueMs: 5_000,
  eventSpamRefillMs: 5 * 60_000,
  vpsieCreateMs: 60_000,
  vmBootMs: 90_000,
  nodeRegisterMs: 60_000,
  nodeReadyMs: 15_000,
};

/**
 * Test defaults: the controller's cadence and the world run in tenths of a second; its limits (timeouts, TTL)
 * keep their production values, so a test shortens only the limit it exercises.
 */
export const DEFAULT_TIMINGS: Readonly<SimTimings> = {
  ...PRODUCTION_TIMINGS,
  fastRequeueMs: 150,
  requeueMs: 400,
  errorBackoffBaseMs: 5,
  errorBackoffMaxMs: 400,
  vpsDeleteRetryDelayMs: 50,
  nodeGroupDeleteRequeueMs: 100,
  vpsieCreateMs: 100,
  vmBootMs: 150,
  nodeRegisterMs: 100,
  nodeReadyMs: 100,
};

// ---------------------------------------------------------------------------------------------------------
// Options and records

export interface WorldOptions {
  /** How VPSie answers add/slave. Default `async-identifier` (id 0 with the node's identifier). */
  answer?: AddSlaveAnswer;
  /** Whether the machines VPSie makes appear in `GET /vm`. Default true. */
  inVmList?: boolean;
  /** Whether VPSie names a machine after the VPSieNode that asked for it. Default false. */
  hostnamePrefix?: boolean;
}

export interface ClusterSimulatorOptions {
  /** Admin identity (the controller's and the kubelets' writes). */
  kubeConfig: KubeConfig;
  vpsie: VPSieSimulator;
  /** The namespace whose VPSieNodes and NodeGroups this simulator controls. */
  namespace: string;
  /** Poll period of the informers. Default 50 ms. */
  tickMs?: number;
  timings?: Partial<SimTimings>;
  world?: WorldOptions;
  /** The bearer token the controller sends to VPSie. Default: the VPSie simulator's default token. */
  vpsieToken?: string;
  /** Identifier of an existing VPSie K8s cluster to use; default: one made at start(). */
  vpsieCluster?: string;
  /** The cluster's Kubernetes version (default: the apiserver's). */
  clusterVersion?: string;
  /** When a kubelet's version lets it register: `same-minor` (default), `kubelet-skew` (≤ 3 minors older), `any`. */
  versionPolicy?: 'same-minor' | 'kubelet-skew' | 'any';
  /** Where the controller's Deployment, ReplicaSet and Pod live. Default kube-system. */
  controllerNamespace?: string;
}

/** Why a reconcile ran: a watch event, its own requeue, the manager's resync. */
export type ReconcileTrigger =
  'created' | 'updated' | 'owned-vpsienode' | 'requeue' | 'error-backoff' | 'resync';

/** One reconcile of one object, as the controller ran it (the "the controller has looked" signal). */
export interface ReconcileRecord {
  controller: 'vpsienode' | 'nodegroup';
  name: string;
  uid: string;
  trigger: ReconcileTrigger;
  startedAt: number;
  endedAt: number;
  /** VPSieNode phase before and after (NodeGroups: undefined). */
  phaseBefore?: string;
  phaseAfter?: string;
  /** Requeue asked for: ms (0 = at once), or undefined for none. */
  requeueAfterMs?: number;
  /** The error the reconcile returned (controller-runtime then backs off). */
  error?: string;
  /** Whether it wrote anything (status, object, Node, VPSie). */
  wrote: boolean;
}

export interface NodeGroupReconcile {
  nodeGroup: string;
  /**
   * What woke it: `created` (first seen), `spec-changed`, `annotations-changed`, `labels-changed`,
   * `status-changed` (an update by someone else), `vpsienodes-changed` (an owned VPSieNode), `requeue`,
   * `resync`.
   */
  reason:
    | 'created'
    | 'spec-changed'
    | 'annotations-changed'
    | 'labels-changed'
    | 'status-changed'
    | 'vpsienodes-changed'
    | 'requeue'
    | 'resync';
  /** Whether it carries `autoscaler.vpsie.com/managed=true` (otherwise the reconcile returns at once). */
  managed: boolean;
  /** The `reconcile-trigger` annotation's value at the time. */
  trigger?: string;
  /** VPSieNodes this reconcile created. */
  created: string[];
  at: Date;
}

/** One call the simulated controller made to VPSie (in-process; the VPSie request log stays the product's). */
export interface ControllerVPSieCall {
  method: string;
  path: string;
  /** HTTP status of the answer (200 for an `{"error": true}` body), or 0 for a transport error. */
  status: number;
  /** The error as the Go client reports it, when the call failed. */
  error?: string;
  at: number;
}

export interface ControllerPod {
  namespace: string;
  name: string;
  container: string;
  nodeName: string;
  replicaSet: string;
  deployment: string;
  labels: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------------------
// Wire shapes

export interface Meta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface Condition {
  type: string;
  status: string;
  lastTransitionTime?: string;
  lastUpdateTime?: string;
  reason?: string;
  message?: string;
}

export interface VPSieNodeSpec {
  vpsieInstanceID: number;
  instanceType: string;
  nodeGroupName: string;
  datacenterID: string;
  resourceIdentifier: string;
  project: string;
  osImageID?: string;
  kubernetesVersion: string;
  sshKeyIDs?: string[];
  nodeName?: string;
  ipAddress?: string;
  ipv6Address?: string;
  vpsieGroupID?: number;
  vpsieNodeIdentifier?: string;
}

export interface VPSieNodeStatus {
  phase?: string;
  nodeName?: string;
  vpsieStatus?: string;
  hostname?: string;
  resources?: { cpu: number; memoryMB: number; diskGB: number };
  createdAt?: string;
  provisionedAt?: string;
  joinedAt?: string;
  readyAt?: string;
  terminatingAt?: string;
  deletedAt?: string;
  conditions?: Condition[];
  lastError?: string;
  observedGeneration?: number;
}

export interface VPSieNodeObj {
  metadata: Meta;
  spec: VPSieNodeSpec;
  status?: VPSieNodeStatus;
}

export interface NodeGroupSpec {
  minNodes: number;
  maxNodes: number;
  datacenterID: string;
  resourceIdentifier: string;
  project: string;
  offeringIDs: string[];
  osImageID?: string;
  kubernetesVersion: string;
  preferredInstanceType?: string;
  labels?: Record<string, string>;
  taints?: V1Taint[];
  sshKeyIDs?: string[];
  kubeSizeID?: number;
}

export interface NodeGroupStatus {
  currentNodes?: number;
  desiredNodes?: number;
  readyNodes?: number;
  vpsieGroupID?: number;
  nodes?: Record<string, unknown>[];
  conditions?: Condition[];
  lastScaleTime?: string;
  lastScaleUpTime?: string;
  lastScaleDownTime?: string;
  observedGeneration?: number;
}

export interface NodeGroupObj {
  metadata: Meta;
  spec: NodeGroupSpec;
  status?: NodeGroupStatus;
}
