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

const vpsienodes = (ns: string) => ({
  group: AUTOSCALER_GROUP,
  version: AUTOSCALER_VERSION,
  plural: 'vpsienodes',
  namespace: ns,
});

/** Plays the controller's part in tests: creates a VPSieNode and writes its status, as an admin. */
export class VPSieNodeFixtures {
  private readonly api = kubeConfigFor('admin').makeApiClient(CustomObjectsApi);

  async create(
    ref: VPSieNodeRef,
    spec: Record<string, unknown>,
    status?: Record<string, unknown>,
  ): Promise<void> {
    await this.api.createNamespacedCustomObject({
      ...vpsienodes(ref.namespace),
      body: {
        apiVersion: `${AUTOSCALER_GROUP}/${AUTOSCALER_VERSION}`,
        kind: 'VPSieNode',
        metadata: { name: ref.name, namespace: ref.namespace },
        spec,
      },
    });
    if (status) await this.setStatus(ref, status);
  }

  async setStatus(ref: VPSieNodeRef, status: Record<string, unknown>): Promise<void> {
    const current = (await this.api.getNamespacedCustomObject({
      ...vpsienodes(ref.namespace),
      name: ref.name,
    })) as {
      status?: Record<string, unknown>;
    };
    await this.api.replaceNamespacedCustomObjectStatus({
      ...vpsienodes(ref.namespace),
      name: ref.name,
      body: { ...current, status: { ...(current.status ?? {}), ...status } },
    });
  }
}
