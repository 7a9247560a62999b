import type { ChannelsConfig } from '../channels';
import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import type { ControllerSelector } from '../runbook';
import { createEscalationActivities } from './escalation';
import { createEvidenceActivities } from './evidence';
import { keptAlive } from './keep-alive';
import { createKubernetesActivities } from './kubernetes';
import { createLeaseActivities } from './lease';
import { createMachineActivities } from './machines';
import { createOrphanActivities } from './orphans';
import { createVPSieActivities } from './vpsie';

/** The outside world the activities act on; built once by the worker from configuration. */
export interface ActivityDeps {
  kubernetes: KubernetesClient;
  /** null when no VPSie credentials are configured: the VPSie activities then fail with a clear message. */
  vpsie: VPSieClient | null;
  /** Where the autoscaler's pods are (config CONTROLLER_*); unset fields take the upstream defaults. */
  controller?: Partial<ControllerSelector>;
  /** The escalation channels and routes (config ESCALATION_*, SLACK_*, PAGERDUTY_*); unset: the Event only. */
  channels?: ChannelsConfig;
}

export function createActivities(deps: ActivityDeps) {
  // Reads, acts and the lease heartbeat while they run (when scheduled with a heartbeat timeout), so a dead
  // worker's activity is retried within seconds; the escalation activities heartbeat their own progress.
  const beating = keptAlive({
    ...createKubernetesActivities(deps.kubernetes, { controller: deps.controller }),
    ...createVPSieActivities(deps.vpsie),
    ...createMachineActivities(deps.kubernetes, deps.vpsie),
    ...createOrphanActivities(deps.kubernetes, deps.vpsie),
    ...createEvidenceActivities(deps),
    ...createLeaseActivities(),
  });
  return {
    ...beating,
    ...createEscalationActivities(deps.kubernetes, {
      vpsie: deps.vpsie,
      ...(deps.controller ? { controller: deps.controller } : {}),
      ...(deps.channels ? { channels: deps.channels } : {}),
    }),
  };
}

/** Workflows import this type only, never the implementation. */
export type RunbookActivities = ReturnType<typeof createActivities>;
