import { randomUUID } from 'node:crypto';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { AUTOSCALER_GROUP, AUTOSCALER_VERSION } from '../../src/clients/kubernetes';
import type { VPSieNodeRef } from '../../src/runbook';
import { controlPlaneFromEnv, kubeconfigYaml } from './control-plane';

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

/** What a fixture sets: extra metadata (labels, annotations, finalizers, …) and the whole spec. */
export interface FixtureFields {
  metadata?: Record<string, unknown>;
  spec?: Record<string, unknown>;
}

/** Plays the controller's part in tests: creates VPSieNodes and NodeGroups and writes status, as an admin. */
export class VPSieNodeFixtures {
  private readonly api = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);

  async vpsieNode(namespace: string, name: string, fields: FixtureFields = {}): Promise<KubeObject> {
    return this.createObject('vpsienodes', 'VPSieNode', namespace, name, fields);
  }

  async nodeGroup(namespace: string, name: string, fields: FixtureFields = {}): Promise<KubeObject> {
    return this.createObject('nodegroups', 'NodeGroup', namespace, name, fields);
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

  async setStatus(ref: VPSieNodeRef, status: Record<string, unknown>): Promise<void> {
    const current = (await this.api.getNamespacedCustomObject({
      ...crd('vpsienodes', ref.namespace),
      name: ref.name,
    })) as {
      status?: Record<string, unknown>;
    };
    await this.api.replaceNamespacedCustomObjectStatus({
      ...crd('vpsienodes', ref.namespace),
      name: ref.name,
      body: { ...current, status: { ...(current.status ?? {}), ...status } },
    });
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
