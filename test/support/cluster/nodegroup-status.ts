/**
 * Upstream's NodeGroup status arithmetic and conditions (`nodegroup/status.go`, `nodegroup/conditions.go`).
 */
import type { NodeGroupObj, NodeGroupStatus, VPSieNodeObj } from './types';
import { metaTime, setCondition } from './util';

export function ngStatus(ng: NodeGroupObj): NodeGroupStatus {
  ng.status ??= {};
  return ng.status;
}

function set(ng: NodeGroupObj, type: string, ok: boolean, reason: string, message: string): void {
  const s = ngStatus(ng);
  s.conditions = setCondition(s.conditions, type, ok ? 'True' : 'False', reason, message);
}

export const setNGError = (ng: NodeGroupObj, on: boolean, reason: string, message: string) =>
  set(ng, 'Error', on, reason, message);
export const setNGReady = (ng: NodeGroupObj, on: boolean, reason: string, message: string) =>
  set(ng, 'Ready', on, reason, message);

const current = (ng: NodeGroupObj) => ngStatus(ng).currentNodes ?? 0;
const desired = (ng: NodeGroupObj) => ngStatus(ng).desiredNodes ?? 0;

function capacity(ng: NodeGroupObj): void {
  set(ng, 'AtMinCapacity', current(ng) <= ng.spec.minNodes, 'AtMinimumCapacity', '');
  set(ng, 'AtMaxCapacity', current(ng) >= ng.spec.maxNodes, 'AtMaximumCapacity', '');
}

export function conditionsForReconcile(ng: NodeGroupObj): void {
  setNGError(ng, false, 'Reconciling', 'Reconciliation in progress');
  capacity(ng);
}

export function conditionsAfterScale(ng: NodeGroupObj, direction: 'up' | 'down' | ''): void {
  const scaling = current(ng) !== desired(ng);
  if (scaling)
    set(
      ng,
      'Scaling',
      true,
      'Reconciling',
      direction === 'up' ? 'Scaling up nodes' : direction === 'down' ? 'Scaling down nodes' : '',
    );
  else set(ng, 'Scaling', false, 'ScalingComplete', 'Desired node count reached');
  const ready = (ngStatus(ng).readyNodes ?? 0) === desired(ng) && !scaling;
  if (ready) setNGReady(ng, true, 'ScalingComplete', 'All nodes are ready');
  else setNGReady(ng, false, 'Reconciling', 'Waiting for nodes to be ready');
  capacity(ng);
}

/** UpdateNodeGroupStatus: counts and the node list from the VPSieNodes not being deleted. */
export function updateFromVPSieNodes(ng: NodeGroupObj, vns: VPSieNodeObj[]): void {
  const s = ngStatus(ng);
  s.currentNodes = vns.length;
  s.readyNodes = vns.filter((v) => v.status?.phase === 'Ready').length;
  s.nodes = vns.map((v) => ({
    nodeName: v.status?.nodeName ?? '',
    vpsID: v.spec.vpsieInstanceID,
    instanceType: v.spec.instanceType,
    status: v.status?.phase ?? '',
    ...(v.status?.createdAt ? { createdAt: v.status.createdAt } : {}),
    ...(v.status?.readyAt ? { readyAt: v.status.readyAt } : {}),
    ...(v.spec.ipAddress ? { ipAddress: v.spec.ipAddress } : {}),
  }));
  if (!s.nodes.length) delete s.nodes;
  if (ng.metadata.generation) s.observedGeneration = ng.metadata.generation;
  if (!s.desiredNodes) s.desiredNodes = ng.spec.minNodes;
}

/** CalculateDesiredNodes: the status' desired count (else minNodes), within min and max. */
export function calculateDesired(ng: NodeGroupObj): number {
  let d = desired(ng);
  if (d === 0) d = ng.spec.minNodes;
  return Math.min(Math.max(d, ng.spec.minNodes), ng.spec.maxNodes);
}

export function setDesired(ng: NodeGroupObj, value: number): void {
  const s = ngStatus(ng);
  if (s.desiredNodes === value) return;
  const now = metaTime();
  s.desiredNodes = value;
  s.lastScaleTime = now;
  if (value > current(ng)) s.lastScaleUpTime = now;
  else if (value < current(ng)) s.lastScaleDownTime = now;
}

export const needsScaleUp = (ng: NodeGroupObj) => current(ng) < desired(ng) && current(ng) < ng.spec.maxNodes;
export const needsScaleDown = (ng: NodeGroupObj) =>
  current(ng) > desired(ng) && current(ng) > ng.spec.minNodes;

/** ValidateNodeGroupSpec's message, or undefined. */
export function validate(ng: NodeGroupObj): string | undefined {
  const s = ng.spec;
  if (s.minNodes < 0) return `minNodes must be >= 0, got ${s.minNodes}`;
  if (s.maxNodes < 1) return `maxNodes must be >= 1, got ${s.maxNodes}`;
  if (s.minNodes > s.maxNodes) return `minNodes (${s.minNodes}) must be <= maxNodes (${s.maxNodes})`;
  if (!s.datacenterID) return 'datacenterID is required';
  if (!s.offeringIDs?.length) return 'at least one offeringID is required';
  if (!s.kubernetesVersion) return 'kubernetesVersion is required';
  if (!/^v?\d+\.\d+\.\d+/.test(s.kubernetesVersion))
    return `invalid kubernetesVersion format: invalid version format: ${s.kubernetesVersion} (expected major.minor.patch)`;
  return undefined;
}

const TRANSITION = new Set(['Pending', 'Provisioning', 'Provisioned', 'Joining']);
export const inTransition = (vns: VPSieNodeObj[]) =>
  vns.filter((v) => TRANSITION.has(v.status?.phase ?? '')).length;
export const capacityFailures = (vns: VPSieNodeObj[]) =>
  vns.filter(
    (v) =>
      v.status?.phase === 'Failed' &&
      (v.status.conditions ?? []).some((c) => c.reason === 'CapacityLimitReached'),
  );
