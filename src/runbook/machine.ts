/**
 * Which VPSie machine is a VPSieNode's. `spec.vpsieInstanceID` is often 0: the controller creates machines
 * through the managed-Kubernetes API, which answers before the machine exists, and such machines may never
 * appear in `GET /vm` (domain.md §8). They are in the cluster's nodes (`GET /k8s/cluster/byId/{id}`), found
 * the way the controller finds them: by the identifier the create answer carried, by hostname, by IP, and last
 * by the discoverer's rule that VPSie names the machine with the VPSieNode's name as a prefix.
 */
import type { VPSieNodeSnapshot } from './types';
import type { VMSnapshot } from './vm';

/** A machine of a managed cluster, as the runbook keeps it. */
export interface ClusterNodeSnapshot {
  /** UUID: what `DELETE …/delete/slave` names and `spec.vpsieNodeIdentifier` holds. */
  identifier: string;
  hostname: string;
  ip: string | null;
  status: string;
  /** `master` or `slave` ('' when the API did not say). */
  role: string;
  createdOn: string | null;
}

/** The fields of the API's cluster node this module reads (the client's `K8sClusterNode` has them). */
export interface ClusterNodeFields {
  identifier: string;
  hostname: string;
  ip: string | null;
  status: string;
  role: string;
  created_on: string | null;
}

export function toClusterNodeSnapshot(n: ClusterNodeFields): ClusterNodeSnapshot {
  return {
    identifier: n.identifier,
    hostname: n.hostname,
    ip: n.ip,
    status: n.status,
    role: n.role,
    createdOn: n.created_on,
  };
}

/** What of a VPSieNode ties it to its machine. */
export type MachineQuery = Pick<
  VPSieNodeSnapshot,
  'name' | 'vpsieInstanceID' | 'vpsieNodeIdentifier' | 'hostname' | 'nodeName' | 'ipAddress'
>;

export type MatchedBy = 'instance-id' | 'identifier' | 'hostname' | 'ip' | 'hostname-prefix';

export interface MachineMatch {
  /** The machine among the cluster's workers, or null. */
  node: ClusterNodeSnapshot | null;
  /** The machine in `GET /vm`, or null (normal for a machine made through the managed-Kubernetes API). */
  vm: VMSnapshot | null;
  /** The strongest evidence that tied the VPSieNode to what was found; null when nothing was. */
  matchedBy: MatchedBy | null;
  /** Several machines start with the VPSieNode's name: none is chosen, a person must look. */
  ambiguous: string[];
}

const lower = (s: string) => s.toLowerCase();

/**
 * Finds the VPSieNode's machine among the cluster's nodes and the account's VMs. The numeric id and the
 * identifier are authoritative: when set and not found, the machine is gone, and no weaker rule may name
 * another. Masters are never a VPSieNode's machine.
 */
export function matchMachine(
  q: MachineQuery,
  clusterNodes: readonly ClusterNodeSnapshot[],
  vms: readonly VMSnapshot[],
): MachineMatch {
  const workers = clusterNodes.filter((n) => n.role !== 'master');
  const ambiguous: string[] = [];
  let matchedBy: MatchedBy | null = null;
  const by = <T>(found: T | undefined | null, how: MatchedBy): T | null => {
    if (found && matchedBy === null) matchedBy = how;
    return found ?? null;
  };

  let vm: VMSnapshot | null = null;
  if (q.vpsieInstanceID > 0)
    vm = by(
      vms.find((v) => v.id === q.vpsieInstanceID),
      'instance-id',
    );
  const hostnames = [q.hostname, q.nodeName, vm?.hostname].filter((h): h is string => !!h).map(lower);
  const ips = [q.ipAddress, vm?.ipAddress].filter((ip): ip is string => !!ip);
  const named = (h: string) => hostnames.includes(lower(h));
  const prefixed = <T extends { hostname: string }>(
    items: readonly T[],
    what: (i: T) => string,
  ): T | null => {
    const found = items.filter((i) => i.hostname !== '' && lower(i.hostname).startsWith(lower(q.name)));
    if (found.length > 1) ambiguous.push(...found.map(what));
    return found.length === 1 ? found[0] : null;
  };

  let node: ClusterNodeSnapshot | null;
  if (q.vpsieNodeIdentifier) {
    node = by(
      workers.find((n) => n.identifier === q.vpsieNodeIdentifier),
      'identifier',
    );
  } else {
    node =
      by(
        workers.find((n) => named(n.hostname)),
        'hostname',
      ) ??
      by(
        workers.find((n) => n.ip !== null && ips.includes(n.ip)),
        'ip',
      ) ??
      (q.vpsieInstanceID > 0
        ? null
        : by(
            prefixed(workers, (n) => `${n.hostname} (${n.identifier})`),
            'hostname-prefix',
          ));
  }

  // A set instance id is the VM or nothing; otherwise the VM, if listed at all, is the machine's namesake.
  if (q.vpsieInstanceID === 0) {
    const machine = node;
    vm = machine
      ? (vms.find(
          (v) =>
            lower(v.hostname) === lower(machine.hostname) || (!!machine.ip && v.ipAddress === machine.ip),
        ) ?? null)
      : q.vpsieNodeIdentifier
        ? null
        : (by(
            vms.find((v) => named(v.hostname)),
            'hostname',
          ) ??
          by(
            vms.find((v) => v.ipAddress !== null && ips.includes(v.ipAddress)),
            'ip',
          ) ??
          by(
            prefixed(vms, (v) => `${v.hostname} (VM ${v.id})`),
            'hostname-prefix',
          ));
  }
  return { node, vm, matchedBy, ambiguous };
}
