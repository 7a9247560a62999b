import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import { createKubernetesActivities } from './kubernetes';
import { createVPSieActivities } from './vpsie';

/** The outside world the activities act on; built once by the worker from configuration. */
export interface ActivityDeps {
  kubernetes: KubernetesClient;
  /** null when no VPSie credentials are configured: the VPSie activities then fail with a clear message. */
  vpsie: VPSieClient | null;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createKubernetesActivities(deps.kubernetes),
    ...createVPSieActivities(deps.vpsie),
  };
}

/** Workflows import this type only, never the implementation. */
export type RunbookActivities = ReturnType<typeof createActivities>;
