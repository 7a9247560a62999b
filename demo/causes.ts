/**
 * The failures the demo stages, one kind per cause of the runbook, the same way test/e2e/runbook-causes.test.ts
 * stages them: a NodeGroup whose first VPSieNode gets a behaviour of the simulated autoscaler and VPSie (its
 * replacement is healthy), or a VPSieNode no controller watches. Nothing here decides a cause: the runs do.
 */
import type { CustomObjectsApi } from '@kubernetes/client-node';
import {
  API_VERSION,
  GROUP,
  VERSION,
  type ClusterSimulator,
  type VPSieNodeObj,
} from '../test/support/cluster';

export const DEMO_CAUSES = [
  'VMCreationFailed',
  'VMNotRegistering',
  'ProvisioningTimeout',
  'KubernetesVersionMismatch',
  'SSHKeyInvalid',
  'Unknown',
] as const;
export type DemoCause = (typeof DEMO_CAUSES)[number];

/** The alerts of deploy/prometheus/vpsie-runbook-rules.yaml. */
export type AlertName = 'VPSieNodeProvisioningFailed' | 'VPSieNodeProvisioningTimeout';

export interface CauseScenario {
  cause: DemoCause;
  /** The runbook's section, as the README's table names it. */
  section: string;
  /** Names of what is staged: `<slug>-<n>` (the NodeGroup; its VPSieNode is `<slug>-<n>-<8 hex>`). */
  slug: string;
  /** What the sandbox does to the node, for a person. */
  staged: string;
  /** What the run is expected to do with it, for a person. */
  expect: string;
  /**
   * The alert the shipped rules raise for it: with the autoscaler running, every one of these ends Failed
   * (VPSieNodeProvisioningFailed); a VPSieNode no controller handles never gets a phase (the Timeout rule).
   */
  alertName: AlertName;
}

export const SCENARIOS: Readonly<Record<DemoCause, CauseScenario>> = {
  VMCreationFailed: {
    cause: 'VMCreationFailed',
    section: 'Cause 1. VM creation failed',
    slug: 'vm-creation-failed',
    staged: 'VPSie answers 503 to the create',
    expect: 'asks to delete and recreate the VPSieNode',
    alertName: 'VPSieNodeProvisioningFailed',
  },
  VMNotRegistering: {
    cause: 'VMNotRegistering',
    section: 'Cause 2. VM created but not registering',
    slug: 'vm-not-registering',
    staged: 'the VM runs, its kubelet never registers',
    expect: 'asks to delete and recreate the VPSieNode',
    alertName: 'VPSieNodeProvisioningFailed',
  },
  ProvisioningTimeout: {
    cause: 'ProvisioningTimeout',
    section: 'Cause 3. Timeout during provisioning',
    slug: 'provisioning-timeout',
    staged: 'the VM never boots',
    expect: 'asks to delete and recreate the VPSieNode',
    alertName: 'VPSieNodeProvisioningFailed',
  },
  KubernetesVersionMismatch: {
    cause: 'KubernetesVersionMismatch',
    section: 'Cause 4. Invalid Kubernetes version',
    slug: 'version-mismatch',
    staged: "the NodeGroup asks for a version four minors older than the cluster's",
    expect: "asks to patch the NodeGroup's version, then to delete and recreate",
    alertName: 'VPSieNodeProvisioningFailed',
  },
  SSHKeyInvalid: {
    cause: 'SSHKeyInvalid',
    section: 'Cause 5. SSH key issues',
    slug: 'ssh-key-invalid',
    staged: 'the NodeGroup names an SSH key the VPSie account lacks',
    expect: 'escalates naming the key, destroys nothing',
    alertName: 'VPSieNodeProvisioningFailed',
  },
  Unknown: {
    cause: 'Unknown',
    section: 'None of the five',
    slug: 'no-controller',
    staged: 'a VPSieNode in namespace default, which no autoscaler watches',
    expect: 'escalates with all the evidence',
    alertName: 'VPSieNodeProvisioningTimeout',
  },
};

/** Where a VPSieNode no controller watches is put (the simulated autoscaler watches SANDBOX_NAMESPACE). */
export const UNWATCHED_NAMESPACE = 'default';
/** The namespace of the simulated autoscaler's NodeGroups and VPSieNodes, as on a VPSie cluster. */
export const SANDBOX_NAMESPACE = 'kube-system';

/** `vmcreationfailed`, `vm-creation-failed` and `VMCreationFailed` all name the same cause. */
export function parseCause(text: string): DemoCause | undefined {
  const key = text
    .trim()
    .toLowerCase()
    .replace(/[-_\s]/g, '');
  return DEMO_CAUSES.find((c) => c.toLowerCase() === key || SCENARIOS[c].slug.replace(/-/g, '') === key);
}

/** One staged failure: the VPSieNode an alert is about. */
export interface StagedFailure {
  cause: DemoCause;
  namespace: string;
  vpsieNode: string;
  /** Its NodeGroup (none for a VPSieNode no controller made). */
  nodeGroup: string | null;
  alertName: AlertName;
}

export interface StageDeps {
  sim: ClusterSimulator;
  /** Admin identity: the controller's side, which creates the objects. */
  custom: CustomObjectsApi;
  /** How long to wait for the controller to make the NodeGroup's VPSieNode. */
  timeoutMs?: number;
  /** Stops waiting when the demo is being stopped. */
  stopping?: () => boolean;
}

/** Stages failure number `n` (1, 2, …) of `cause`; resolves once its VPSieNode exists (with a phase, if watched). */
export async function stageFailure(deps: StageDeps, cause: DemoCause, n: number): Promise<StagedFailure> {
  const { sim } = deps;
  const scenario = SCENARIOS[cause];
  const name = `${scenario.slug}-${n}`;
  const staged = (vpsieNode: string, namespace = SANDBOX_NAMESPACE, nodeGroup: string | null = name) => ({
    cause,
    namespace,
    vpsieNode,
    nodeGroup,
    alertName: scenario.alertName,
  });
  switch (cause) {
    case 'VMCreationFailed':
      await sim.stage({ nodeGroup: name }, 'vm-creation-fails', {
        count: 1,
        status: 503,
        error: 'Service temporarily unavailable',
      });
      break;
    case 'VMNotRegistering':
      await sim.stage({ nodeGroup: name }, 'never-registers', { count: 1, answer: 'sync' });
      break;
    case 'ProvisioningTimeout':
      await sim.stage({ nodeGroup: name }, 'stuck-provisioning', { count: 1, answer: 'sync' });
      break;
    case 'KubernetesVersionMismatch':
      await sim.stage({ nodeGroup: name }, 'version-mismatch');
      // VPSie answers the create with the VM's id, so the controller knows which machine to delete.
      await sim.stage({ nodeGroup: name }, 'healthy', { count: 1, answer: 'sync' });
      break;
    case 'SSHKeyInvalid':
      await sim.stage({ nodeGroup: name }, 'unknown-ssh-keys', { sshKeyIDs: [`sshkey-deleted-${n}`] });
      await sim.stage({ nodeGroup: name }, 'never-registers', { count: 1, answer: 'sync' });
      break;
    case 'Unknown': {
      await deps.custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: UNWATCHED_NAMESPACE,
        plural: 'vpsienodes',
        body: {
          apiVersion: API_VERSION,
          kind: 'VPSieNode',
          metadata: { name, namespace: UNWATCHED_NAMESPACE },
          spec: sim.vpsieNodeSpec(),
        },
      });
      return staged(name, UNWATCHED_NAMESPACE, null);
    }
  }
  await sim.createNodeGroup(name);
  const vn = await firstVPSieNode(deps, name);
  return staged(vn.metadata.name);
}

/** The NodeGroup's one VPSieNode, once the controller has given it a phase. */
async function firstVPSieNode(deps: StageDeps, nodeGroup: string): Promise<VPSieNodeObj> {
  const deadline = Date.now() + (deps.timeoutMs ?? 60_000);
  for (;;) {
    const list = (await deps.custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: SANDBOX_NAMESPACE,
      plural: 'vpsienodes',
      labelSelector: `autoscaler.vpsie.com/nodegroup=${nodeGroup}`,
    })) as { items: VPSieNodeObj[] };
    const vn = list.items.find((x) => x.status?.phase);
    if (vn) return vn;
    if (deps.stopping?.()) throw new Error('stopped');
    if (Date.now() > deadline)
      throw new Error(
        `the simulated autoscaler made no VPSieNode for NodeGroup ${nodeGroup}; its errors: ${deps.sim.errors.join('; ') || 'none'}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
