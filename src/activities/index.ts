import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import type { ControllerSelector } from '../runbook';
import { createEscalationActivities } from './escalation';
import { createEvidenceActivities } from './evidence';
import { createKubernetesActivities } from './kubernetes';
import { createMachineActivities } from './machines';
import { createVPSieActivities } from './vpsie';

/** The outside world the activities act on; built once by the worker from configuration. */
export interface ActivityDeps {
  kubernetes: KubernetesClient;
  /** null when no VPSie credentials are configured: the VPSie activities then fail with a clear message. */
  vpsie: VPSieClient | null;
  /** Where the autoscaler's pods are (config CONTROLLER_*); unset fields take the upstream defaults. */
  controller?: Partial<ControllerSelector>;
}

export function createActivities(deps: ActivityDeps) {
  return {
    ...createKubernetesActivities(deps.kubernetes, { controller: deps.controller }),
    ...createVPSieActivities(deps.vpsie),
    ...createMachineActivities(deps.kubernetes, deps.vpsie),
    ...createEvidenceActivities(deps),
    ...createEscalationActivities(deps.kubernetes),
  };
}

/** Workflows import this type only, never the implementation. */
export type RunbookActivities = ReturnType<typeof createActivities>;
