import { conditions, identity, num, obj, str, strings } from './read';
import type { VPSieNodeSnapshot } from './types';

/** The controller's finalizer: a deleted VPSieNode stays until the controller has terminated its VM. */
export const VPSIENODE_FINALIZER = 'vpsienode.autoscaler.vpsie.com/finalizer';

/**
 * Set to "true" by the controller when VPSie accepted a create without giving the VM's id yet: a discoverer then
 * looks for the VM (by hostname prefix or IP) for up to 15 minutes while spec.vpsieInstanceID stays 0.
 */
export const CREATION_REQUESTED_ANNOTATION = 'autoscaler.vpsie.com/creation-requested';

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
    creationRequested: obj(metadata.annotations)[CREATION_REQUESTED_ANNOTATION] === 'true',
    vpsieNodeIdentifier: str(spec.vpsieNodeIdentifier),
    vpsieGroupID: num(spec.vpsieGroupID) ?? 0,
    resourceIdentifier: str(spec.resourceIdentifier),
    nodeGroupName: str(spec.nodeGroupName),
    ipAddress: str(spec.ipAddress),
    ipv6Address: str(spec.ipv6Address),
    hostname: str(status.hostname),
    vpsieStatus: str(status.vpsieStatus),
    nodeName: str(status.nodeName) ?? str(spec.nodeName),
    provisioningStartedAt: str(status.createdAt) ?? str(metadata.creationTimestamp),
    provisionedAt: str(status.provisionedAt),
    joinedAt: str(status.joinedAt),
    readyAt: str(status.readyAt),
    deletionTimestamp: str(metadata.deletionTimestamp),
    finalizers: strings(metadata.finalizers),
    lastError: str(status.lastError),
    conditions: conditions(status.conditions),
  };
}
