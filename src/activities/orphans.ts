/**
 * The orphaned-VM sweep's one read (issue 8 item 4): NodeGroups, VPSieNodes and Nodes from the cluster, the
 * managed clusters and VMs from VPSie, in one parallel round, decided by the pure `findOrphans`. The result holds
 * machines and reasons only: never a credential, never a raw object.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import {
  toClusterNodeSnapshot,
  toNodeGroupSnapshot,
  toNodeSnapshot,
  toVMSnapshot,
  toVPSieNodeSnapshot,
  type ClusterNodeSnapshot,
} from '../runbook';
import { findOrphans, type OrphanScan } from '../runbook/orphans';
import { asActivityFailure } from './kubernetes';
import { asVPSieActivityFailure, cancellation, failingAs, vpsieClientOrFail } from './vpsie';

export interface FindOrphansInput {
  /** Machines younger than this are kept (the workflow validated it: 15 min to 30 days). */
  graceMs: number;
}

export function createOrphanActivities(kube: KubernetesClient, vpsie: VPSieClient | null) {
  const guarded = failingAs((err) => asVPSieActivityFailure(asActivityFailure(err)));

  return {
    /**
     * Which machines of this cluster nothing claims and are older than `graceMs` (`candidates`), and every other
     * machine of the cluster with the reason it stays (`kept`). Reads only.
     */
    findOrphanedMachines: guarded(async (input: FindOrphansInput): Promise<OrphanScan> => {
      const graceMs = (input as Partial<FindOrphansInput> | null)?.graceMs;
      if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs <= 0)
        throw ApplicationFailure.nonRetryable(
          `graceMs must be a positive number of milliseconds, got ${JSON.stringify(graceMs)}`,
          'InvalidInput',
        );
      const c = vpsieClientOrFail(vpsie);
      const [rawNodeGroups, rawVPSieNodes, rawNodes, vms, allClusters] = await Promise.all([
        kube.listNodeGroups(),
        kube.listVPSieNodes(),
        kube.listNodes(),
        c.listVMs(cancellation()),
        c.listK8sClusters(cancellation()),
      ]);
      const nodeGroups = rawNodeGroups.map(toNodeGroupSnapshot).map((g) => ({
        namespace: g.namespace,
        name: g.name,
        resourceIdentifier: g.resourceIdentifier,
      }));
      const ours = [...new Set(nodeGroups.map((g) => g.resourceIdentifier).filter((r): r is string => !!r))];
      const others = allClusters.map((k) => k.identifier).filter((id) => !ours.includes(id));
      const read = async (id: string): Promise<ClusterNodeSnapshot[] | null> => {
        const cluster = await c.getK8sCluster(id, cancellation());
        return cluster && cluster.nodes.map(toClusterNodeSnapshot);
      };
      const [mine, theirs] = await Promise.all([Promise.all(ours.map(read)), Promise.all(others.map(read))]);
      return {
        scannedAt: new Date().toISOString(),
        ...findOrphans({
          nodeGroups,
          clusters: Object.fromEntries(ours.map((id, i) => [id, mine[i]])),
          otherClusters: others.map((id, i) => ({ resourceIdentifier: id, nodes: theirs[i] ?? [] })),
          vms: vms.map(toVMSnapshot),
          vpsieNodes: rawVPSieNodes.map(toVPSieNodeSnapshot),
          nodes: rawNodes.map(toNodeSnapshot),
          nowMs: Date.now(),
          graceMs,
        }),
      };
    }),
  };
}
