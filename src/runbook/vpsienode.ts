import { conditions, identity, num, obj, str } from './read';
import type { VPSieNodeSnapshot } from './types';

/** The controller's finalizer: a deleted VPSieNode stays until the controller has terminated its VM. */
export const VPSIENODE_FINALIZER = 'vpsienode.autoscaler.vpsie.com/finalizer';

/** Reduces a VPSieNode object, as the API server returns it, to what the runbook reasons about. */
export function toVPSieNodeSnapshot(resource: unknown): VPSieNodeSnapshot {
  const r = obj(resource);
  const metadata = obj(r.metadata);
  const spec = obj(r.spec);
  const status = obj(r.status);
  return {
    ...identity('VPSieNode', metadata),
    phase: str(status.phase),
    vpsieInstanceID: num(spec.vpsieInstanceID) ?? 0,
    nodeGroupName: str(spec.nodeGroupName),
    nodeName: str(status.nodeName) ?? str(spec.nodeName),
    provisioningStartedAt: str(status.createdAt) ?? str(metadata.creationTimestamp),
    provisionedAt: str(status.provisionedAt),
    joinedAt: str(status.joinedAt),
    readyAt: str(status.readyAt),
    deletionTimestamp: str(metadata.deletionTimestamp),
    lastError: str(status.lastError),
    conditions: conditions(status.conditions),
  };
}
