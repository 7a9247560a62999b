import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION } from '../../src/clients/kubernetes';
import { VPSIENODE_LABEL, type VPSieNodeRef } from '../../src/runbook';
import { controlPlaneFromEnv, kubeconfigYaml, NO_ROLE_USER } from './control-plane';

/** The identities the control plane's token file knows: an admin, and the runbook with only its own role. */
export type Identity = 'admin' | 'runbook';

export function kubeConfigFor(identity: Identity): KubeConfig {
  const cp = controlPlaneFromEnv();
  if (!cp)
    throw new Error(
      'KUBE_TEST_SERVER is unset: run the tests through jest (global setup starts the control plane)',
    );
  const kc = new KubeConfig();
  kc.loadFromString(
    kubeconfigYaml(cp, identity === 'admin' ? cp.adminToken : cp.runbookToken, {
      user: identity === 'admin' ? 'admin' : cp.runbookUser,
    }),
  );
  return kc;
}

/**
 * An identity the apiserver knows nothing good about (403): the static-token user `no-role-bound` when `user` is
 * that one (the product's code is never handed the admin token), else the admin impersonating `user`.
 */
export function kubeConfigImpersonating(user: string): KubeConfig {
  const cp = controlPlaneFromEnv();
  if (user === NO_ROLE_USER && cp?.noRoleToken) {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigYaml(cp, cp.noRoleToken, { user }));
    return kc;
  }
  const admin = kubeConfigFor('admin');
  const cluster = admin.getCurrentCluster();
  const adminUser = admin.getCurrentUser();
  if (!cluster || !adminUser) throw new Error('admin kubeconfig has no cluster or user');
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser(cluster, { ...adminUser, name: `as-${user}`, impersonateUser: user });
  return kc;
}

/** A namespace of the test's own, so parallel test files never see each other's objects. */
export async function createTestNamespace(prefix: string): Promise<string> {
  const core = kubeConfigFor('admin').makeApiClient(CoreV1Api);
  const name = `${prefix}-${randomUUID().slice(0, 6)}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/** Where an autoscaler custom resource lives, as the CustomObjectsApi takes it. */
export const crd = (plural: string, namespace: string) => ({
  group: AUTOSCALER_GROUP,
  version: AUTOSCALER_VERSION,
  plural,
  namespace,
});

/** A custom object as the apiserver answers it. */
export type KubeObject = {
  metadata: { uid: string; resourceVersion: string; [k: string]: unknown };
  [k: string]: unknown;
};

/** What a fixture sets: extra metadata (labels, annotations, finalizers, …) and spec fields. */
export interface FixtureFields {
  metadata?: Record<string, unknown>;
  /** Merged over the required fields' defaults below, so that every fixture is an object the CRD accepts. */
  spec?: Record<string, unknown>;
}

/**
 * Every field the upstream VPSieNode CRD requires, with the values the controller would write for a node it has
 * not provisioned yet (vpsieInstanceID 0 is written, never omitted: the Go field has no omitempty).
 */
export const VPSIENODE_REQUIRED_SPEC: Readonly<Record<string, unknown>> = {
  vpsieInstanceID: 0,
  instanceType: 'offering-1',
  nodeGroupName: 'ng-a',
  datacenterID: 'dc-1',
  resourceIdentifier: 'cluster-1',
  project: 'project-1',
  kubernetesVersion: 'v1.30.2',
};

/** Every field the upstream NodeGroup CRD requires (offeringIDs: at least one). */
export const NODEGROUP_REQUIRED_SPEC: Readonly<Record<string, unknown>> = {
  minNodes: 1,
  maxNodes: 3,
  datacenterID: 'dc-1',
  resourceIdentifier: 'cluster-1',
  project: 'project-1',
  offeringIDs: ['offering-1'],
  kubernetesVersion: 'v1.30.2',
};

/** Plays the controller's part in tests: creates VPSieNodes and NodeGroups and writes status, as an admin. */
export class VPSieNodeFixtures {
  private readonly api = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);

  async vpsieNode(namespace: string, name: string, fields: FixtureFields = {}): Promise<KubeObject> {
    const spec = { ...VPSIENODE_REQUIRED_SPEC, ...fields.spec };
    return this.createObject('vpsienodes', 'VPSieNode', namespace, name, { ...fields, spec });
  }

  async nodeGroup(namespace: string, name: string, fields: FixtureFields = {}): Promise<KubeObject> {
    const spec = { ...NODEGROUP_REQUIRED_SPEC, ...fields.spec };
    return this.createObject('nodegroups', 'NodeGroup', namespace, name, { ...fields, spec });
  }

  /** An autoscaler object as it is now; null when there is none. */
  async get(plural: string, namespace: string, name: string): Promise<KubeObject | null> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...crd(plural, namespace), name })) as KubeObject;
    } catch (err) {
      if ((err as { code?: number }).code === 404) return null;
      throw err;
    }
  }

  async create(
    ref: VPSieNodeRef,
    spec: Record<string, unknown>,
    status?: Record<string, unknown>,
  ): Promise<void> {
    await this.vpsieNode(ref.namespace, ref.name, { spec });
    if (status) await this.setStatus(ref, status);
  }

  /** Merges `status` into the object's status (a VPSieNode's needs `phase`, a NodeGroup's the three counts). */
  async setStatus(
    ref: VPSieNodeRef,
    status: Record<string, unknown>,
    plural = 'vpsienodes',
  ): Promise<KubeObject> {
    const current = (await this.api.getNamespacedCustomObject({
      ...crd(plural, ref.namespace),
      name: ref.name,
    })) as {
      status?: Record<string, unknown>;
    };
    return (await this.api.replaceNamespacedCustomObjectStatus({
      ...crd(plural, ref.namespace),
      name: ref.name,
      body: { ...current, status: { ...(current.status ?? {}), ...status } },
    })) as KubeObject;
  }

  private async createObject(
    plural: string,
    kind: string,
    namespace: string,
    name: string,
    { metadata = {}, spec = {} }: FixtureFields,
  ): Promise<KubeObject> {
    return (await this.api.createNamespacedCustomObject({
      ...crd(plural, namespace),
      body: {
        apiVersion: `${AUTOSCALER_GROUP}/${AUTOSCALER_VERSION}`,
        kind,
        metadata: { name, namespace, ...metadata },
        spec,
      },
    })) as KubeObject;
  }
}

/**
 * What a test file makes outside its own namespace, where nothing else would clear it away: cluster-scoped
 * Nodes and pods in kube-system. {@link deleteAll} (for afterAll) deletes them, ignoring any already gone.
 */
export class ClusterCleanup {
  private readonly core = kubeConfigFor('admin').makeApiClient(CoreV1Api);
  private readonly nodes: string[] = [];
  private readonly kubeSystemPods: string[] = [];

  addNodes(...names: string[]): void {
    this.nodes.push(...names);
  }

  addKubeSystemPods(...names: string[]): void {
    this.kubeSystemPods.push(...names);
  }

  async deleteAll(): Promise<void> {
    await Promise.all([
      ...this.nodes.map((name) => this.core.deleteNode({ name }).catch(() => undefined)),
      ...this.kubeSystemPods.map((name) =>
        this.core.deleteNamespacedPod({ namespace: 'kube-system', name }).catch(() => undefined),
      ),
    ]);
  }
}

export interface StatusChurnerOptions {
  /** The controller's requeue period, scaled down for tests (it is a few seconds upstream). Default 25 ms. */
  intervalMs?: number;
  /** Bound on the writes of one churner, so that a forgotten one stops by itself. Default 2000. */
  maxWrites?: number;
}

/**
 * The controller's requeue loop while a node is in flight, as far as the API sees it: read the object, write its
 * whole status back through the status subresource (Status().Update) with each condition's lastUpdateTime
 * stamped now, again and again, so that the resourceVersion keeps moving. `writes` counts the writes that
 * landed; `nextWrite()` waits for a write that began (read the object) after the call, so its resourceVersion is
 * newer than anything read before the call: a test can prove that churn happened at a given point.
 * Timestamps carry milliseconds because the requeue period is scaled down from seconds to milliseconds here.
 * Stops on stop(), at maxWrites, or when the object is gone.
 */
export class StatusChurner {
  private readonly api = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);
  private readonly intervalMs: number;
  private readonly maxWrites: number;
  private readonly waiters: { after: number; resolve: (rv: string) => void; reject: (e: Error) => void }[] =
    [];
  /** Rounds begun (each reads, then writes). */
  private rounds = 0;
  private running = true;
  private done: Promise<void> = Promise.resolve();
  /** Status writes that landed. */
  writes = 0;
  /** The resourceVersion each write produced, in order. */
  readonly resourceVersions: string[] = [];
  /** Why it stopped by itself (object gone, bound reached, an unexpected error); null while running. */
  endedBecause: string | null = null;

  constructor(
    private readonly plural: 'vpsienodes' | 'nodegroups',
    private readonly ref: { namespace: string; name: string },
    opts: StatusChurnerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 25;
    this.maxWrites = opts.maxWrites ?? 2000;
  }

  start(): this {
    this.done = this.loop();
    return this;
  }

  /**
   * Resolves with the resourceVersion of the first write whose round began after this call (a write already in
   * flight does not count); rejects when the churner ends first.
   */
  nextWrite(): Promise<string> {
    if (this.endedBecause) return Promise.reject(new Error(`churner ended: ${this.endedBecause}`));
    return new Promise((resolve, reject) => this.waiters.push({ after: this.rounds, resolve, reject }));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }

  private end(reason: string): void {
    this.running = false;
    this.endedBecause ??= reason;
    for (const w of this.waiters.splice(0)) w.reject(new Error(`churner ended: ${reason}`));
  }

  private async loop(): Promise<void> {
    const where = { ...crd(this.plural, this.ref.namespace), name: this.ref.name };
    while (this.running) {
      if (this.writes >= this.maxWrites) return this.end(`reached ${this.maxWrites} writes`);
      const round = ++this.rounds;
      try {
        const current = (await this.api.getNamespacedCustomObject(where)) as KubeObject & {
          status?: Record<string, unknown>;
        };
        const now = new Date().toISOString();
        const status = { ...(current.status ?? {}) };
        status.conditions = ((status.conditions as Record<string, unknown>[] | undefined) ?? []).map((c) => ({
          ...c,
          lastUpdateTime: now,
        }));
        const written = (await this.api.replaceNamespacedCustomObjectStatus({
          ...where,
          body: { ...current, status },
        })) as KubeObject;
        // an unchanged status is no write at all for the apiserver: the test forgot to give it a condition
        if (written.metadata.resourceVersion === current.metadata.resourceVersion)
          return this.end('status has no condition whose lastUpdateTime could move');
        this.writes += 1;
        this.resourceVersions.push(written.metadata.resourceVersion);
        for (const w of this.waiters.filter((w) => w.after < round)) {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(written.metadata.resourceVersion);
        }
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code === 404) return this.end('object gone');
        // 409: someone wrote between our read and write, as happens to the controller: requeue
        if (code !== 409) return this.end(`unexpected error: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
    this.end('stopped');
  }
}

/**
 * What the controller does when a node joins: the kubelet registers a Node and reports Ready, the controller
 * labels it for the VPSieNode and marks the VPSieNode Ready. Answers the Node's name.
 */
export async function joinsAndBecomesReady(
  fixtures: VPSieNodeFixtures,
  cleanup: ClusterCleanup,
  ref: VPSieNodeRef,
): Promise<string> {
  const adminCore = kubeConfigFor('admin').makeApiClient(CoreV1Api);
  const name = `${ref.namespace}-${ref.name}`;
  cleanup.addNodes(name);
  const created = await adminCore.createNode({
    body: { metadata: { name, labels: { [VPSIENODE_LABEL]: ref.name } } },
  });
  const now = new Date();
  await adminCore.replaceNodeStatus({
    name,
    body: {
      ...created,
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    },
  });
  await fixtures.setStatus(ref, { phase: 'Ready', readyAt: now.toISOString(), nodeName: name });
  return name;
}
