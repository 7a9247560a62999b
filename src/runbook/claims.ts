/**
 * Who may still own a VPSie machine. A machine is only safe to terminate when nothing in the cluster claims it
 * and the controller cannot be about to adopt it: its discoverer looks for a requested machine by hostname
 * prefix (the VPSieNode's name) or by IP for up to 15 minutes while `spec.vpsieInstanceID` stays 0, and claims
 * fresh unlabelled Nodes, so a machine with no owner *yet* may be one a VPSieNode is waiting for.
 */
import type { NodeSnapshot } from './evidence';
import type { VPSieNodeSnapshot } from './types';

/** The controller's discovery window for a requested machine (its DiscoveryTimeout). */
export const DISCOVERY_WINDOW_MS = 15 * 60_000;

/** What identifies a machine in VPSie (a VM, or a node of the managed-Kubernetes cluster). */
export interface MachineIdentity {
  /** VM id; 0 for a managed-Kubernetes node that has none. */
  id: number;
  identifier: string;
  hostname: string;
  ipAddresses: string[];
}

export interface Claim {
  by: 'vpsienode' | 'node' | 'pending-creation';
  /** namespace/name of the VPSieNode, or the Node's name. */
  owner: string;
  /** Which field ties the owner to the machine, in words a person reads in an error. */
  how: string;
}

export interface ClaimContext {
  vpsieNodes: readonly VPSieNodeSnapshot[];
  nodes: readonly NodeSnapshot[];
  nowMs: number;
  /** Only pending creations of this NodeGroup count; null when the machine's NodeGroup is unknown (all count). */
  nodeGroup: string | null;
  discoveryWindowMs?: number;
  /**
   * The UID of a VPSieNode whose claim does not count: the one the runbook replaces, which owns the machine but
   * whose controller would leave it behind (see `controllerRemovesMachine`), and which is deleted next.
   */
  released?: string | null;
}

const lower = (s: string | null | undefined) => (s ?? '').toLowerCase();

function vpsieNodeClaim(m: MachineIdentity, vn: VPSieNodeSnapshot): string | null {
  const hostname = lower(m.hostname);
  if (m.id !== 0 && vn.vpsieInstanceID === m.id) return `spec.vpsieInstanceID is ${m.id}`;
  if (m.identifier && vn.vpsieNodeIdentifier === m.identifier)
    return `spec.vpsieNodeIdentifier is ${m.identifier}`;
  for (const ip of [vn.ipAddress, vn.ipv6Address])
    if (ip && m.ipAddresses.includes(ip)) return `spec.ipAddress is ${ip}`;
  for (const name of [vn.hostname, vn.nodeName])
    if (name && hostname !== '' && lower(name) === hostname) return `its node name/hostname is ${name}`;
  // The discoverer's hostname rule: VPSie names the machine after the VPSieNode, with a suffix.
  if (hostname.startsWith(lower(vn.name)))
    return `the hostname ${m.hostname} starts with the VPSieNode's name`;
  return null;
}

function nodeClaim(m: MachineIdentity, node: NodeSnapshot): string | null {
  for (const ip of [node.internalIP, node.externalIP])
    if (ip && m.ipAddresses.includes(ip)) return `its address is ${ip}`;
  if (m.hostname && lower(node.name) === lower(m.hostname)) return `its name is the hostname ${m.hostname}`;
  return null;
}

/** A VPSieNode still waiting for VPSie to tell which machine is its own. */
function pendingCreation(vn: VPSieNodeSnapshot, ctx: ClaimContext): string | null {
  if (!vn.creationRequested || vn.vpsieInstanceID !== 0 || vn.deletionTimestamp) return null;
  // Only the Provisioning phase runs discovery; a Failed node waits for its TTL and adopts nothing.
  if (vn.phase !== null && vn.phase !== 'Pending' && vn.phase !== 'Provisioning') return null;
  if (ctx.nodeGroup !== null && vn.nodeGroupName !== ctx.nodeGroup) return null;
  const since = vn.provisioningStartedAt ? Date.parse(vn.provisioningStartedAt) : NaN;
  const window = ctx.discoveryWindowMs ?? DISCOVERY_WINDOW_MS;
  // An unreadable start time cannot prove the window has passed: count it as pending.
  if (!Number.isNaN(since) && ctx.nowMs - since > window) return null;
  const ago = Number.isNaN(since) ? 'at an unknown time' : `${Math.round((ctx.nowMs - since) / 1000)} s ago`;
  return `requested a machine ${ago} (NodeGroup ${vn.nodeGroupName ?? '?'}) and the controller may still adopt this one`;
}

/** Every claim on the machine; empty means nothing in the cluster owns it or may be about to. */
export function claimsOn(machine: MachineIdentity, ctx: ClaimContext): Claim[] {
  const claims: Claim[] = [];
  for (const vn of ctx.vpsieNodes) {
    if (ctx.released && vn.uid === ctx.released) continue;
    const owner = `${vn.namespace}/${vn.name}`;
    const how = vpsieNodeClaim(machine, vn);
    if (how) claims.push({ by: 'vpsienode', owner, how });
    const pending = how ? null : pendingCreation(vn, ctx);
    if (pending) claims.push({ by: 'pending-creation', owner, how: pending });
  }
  for (const node of ctx.nodes) {
    const how = nodeClaim(machine, node);
    if (how) claims.push({ by: 'node', owner: node.name, how });
  }
  return claims;
}

/** One sentence for an error: why the machine was kept. */
export function describeClaims(machine: MachineIdentity, claims: readonly Claim[]): string {
  const what = `machine ${machine.id || machine.identifier} (${machine.hostname || 'no hostname'})`;
  const list = claims.map((c) => `${c.by === 'node' ? 'Node' : 'VPSieNode'} ${c.owner}: ${c.how}`);
  return `${what} is claimed, not terminating it: ${list.join('; ')}`;
}
