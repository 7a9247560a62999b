/**
 * Names the vpsie-k8s-autoscaler uses (upstream `pkg/apis/autoscaler/v1alpha1/labels.go`,
 * `pkg/controller/{vpsienode,nodegroup}/controller.go`, `deploy/manifests/deployment.yaml`).
 */

export const GROUP = 'autoscaler.vpsie.com';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** VPSieNode finalizer (vpsienode/controller.go). */
export const FINALIZER = 'vpsienode.autoscaler.vpsie.com/finalizer';
/** NodeGroup finalizer (nodegroup/controller.go). */
export const NODEGROUP_FINALIZER = 'nodegroup.autoscaler.vpsie.com/finalizer';

export const LABEL_MANAGED = 'autoscaler.vpsie.com/managed';
export const LABEL_NODEGROUP = 'autoscaler.vpsie.com/nodegroup';
export const LABEL_VPSIENODE = 'autoscaler.vpsie.com/vpsienode';
export const LABEL_DATACENTER = 'autoscaler.vpsie.com/datacenter';
export const LABEL_OFFERING = 'autoscaler.vpsie.com/offering';
export const ANNOTATION_VPS_ID = 'autoscaler.vpsie.com/vps-id';
/** Set while an asynchronous add/slave request waits for discovery (vpsienode/provisioner.go). */
export const ANNOTATION_CREATION_REQUESTED = 'autoscaler.vpsie.com/creation-requested';
/** The runbook's "Force NodeGroup Reconciliation" annotation (any annotation change does the same). */
export const RECONCILE_TRIGGER = 'reconcile-trigger';

/** Event sources: the recorders are named after the controllers (`mgr.GetEventRecorderFor(ControllerName)`). */
export const VPSIENODE_CONTROLLER = 'vpsienode-controller';
export const NODEGROUP_CONTROLLER = 'nodegroup-controller';

/** On every object a simulator makes outside the test namespace (Nodes, the controller's pod): its id. */
export const LABEL_SIMULATOR = 'vpsie-runbook.test/simulator';

/** The controller's Deployment (kustomize manifests; the Helm chart names it after the release). */
export const CONTROLLER_DEPLOYMENT = 'vpsie-autoscaler-controller';
/** The controller's container. */
export const CONTROLLER_CONTAINER = 'controller';
/** Labels of the controller's Deployment, its selector and its pods. */
export const CONTROLLER_POD_LABELS: Readonly<Record<string, string>> = {
  app: 'vpsie-autoscaler',
  component: 'controller',
};
/** The image the upstream manifests run. */
export const CONTROLLER_IMAGE = 'ghcr.io/vpsieinc/vpsie-k8s-autoscaler:0.7.8';
/** The Go client's User-Agent (pkg/vpsie/client/client.go). */
export const CONTROLLER_USER_AGENT = 'vpsie-k8s-autoscaler/1.0';

/** Phases (vpsienode_types.go), in the order a healthy VPSieNode goes through them. */
export const HEALTHY_PHASES: readonly string[] = [
  'Pending',
  'Provisioning',
  'Provisioned',
  'Joining',
  'Ready',
];

/** Condition reasons (vpsienode/conditions.go). */
export const Reason = {
  Provisioning: 'Provisioning',
  Provisioned: 'Provisioned',
  Joining: 'Joining',
  Joined: 'Joined',
  Ready: 'Ready',
  Terminating: 'Terminating',
  Deleting: 'Deleting',
  Failed: 'Failed',
  VPSieAPIError: 'VPSieAPIError',
  ProvisioningTimeout: 'ProvisioningTimeout',
  CapacityLimitReached: 'CapacityLimitReached',
  JoiningTimeout: 'JoiningTimeout',
  NodeNotFound: 'NodeNotFound',
  DrainFailed: 'DrainFailed',
  NodeDeleteFailed: 'NodeDeleteFailed',
  VPSDeleteFailed: 'VPSDeleteFailed',
  TTLExpired: 'TTLExpired',
} as const;
