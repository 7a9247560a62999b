/**
 * Removing a machine from VPSie (runbook "Manual VM Cleanup"): the one act that needs both the cluster and
 * VPSie, because the controller may own or be about to adopt a machine that looks orphaned. Right before the
 * delete, in the same activity, the machine is re-read and everything that could claim it is listed.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { KubernetesClient } from '../clients/kubernetes';
import type { VPSieClient } from '../clients/vpsie';
import {
  claimsOn,
  describeClaims,
  toNodeSnapshot,
  toVPSieNodeSnapshot,
  type MachineIdentity,
} from '../runbook';
import { asActivityFailure } from './kubernetes';
import { asVPSieActivityFailure, cancellation, failingAs, vpsieClientOrFail } from './vpsie';

/** What every removal says about the machine's owner, as far as the caller knows it. */
interface Scope {
  /**
   * The NodeGroup the machine was made for; only that NodeGroup's pending creations can adopt it. null or unset:
   * unknown, so a pending creation in any NodeGroup keeps the machine.
   */
  nodeGroup?: string | null;
  /** UID of the VPSieNode being replaced, whose own claim on the machine does not count (see ClaimContext). */
  released?: string | null;
}

/** The VM as diagnosed: a terminate only goes ahead while the id still names that VM and nothing claims it. */
export interface VMPrecondition extends Scope {
  id: number;
  /** The VM's UUID as diagnosed: VPSie could in principle reuse a numeric id, never a UUID. */
  identifier: string;
}

/** The cluster machine as diagnosed: removed only while its identifier still names it and nothing claims it. */
export interface ClusterNodePrecondition extends Scope {
  /** The VPSie Kubernetes cluster (`spec.resourceIdentifier`). */
  resourceIdentifier: string;
  identifier: string;
  /** The machine's hostname as diagnosed. */
  hostname: string;
}

export function createMachineActivities(kube: KubernetesClient, vpsie: VPSieClient | null) {
  const guarded = failingAs((err) => asVPSieActivityFailure(asActivityFailure(err)));

  /** Refuses (non-retryably) when a VPSieNode or Node claims the machine, or a pending creation may adopt it. */
  const refuseIfClaimed = async (machine: MachineIdentity, scope: Scope): Promise<void> => {
    const [vpsieNodes, nodes] = await Promise.all([kube.listVPSieNodes(), kube.listNodes()]);
    const claims = claimsOn(machine, {
      vpsieNodes: vpsieNodes.map(toVPSieNodeSnapshot),
      nodes: nodes.map(toNodeSnapshot),
      nowMs: Date.now(),
      nodeGroup: scope.nodeGroup ?? null,
      released: scope.released ?? null,
    });
    if (claims.length > 0)
      throw ApplicationFailure.create({
        message: describeClaims(machine, claims),
        type: 'MachineClaimed',
        nonRetryable: true,
        details: [claims],
      });
  };

  return {
    /**
     * Terminates a VM with `DELETE /vm/{id}`. Idempotent: a VM already gone is success. Refuses when the id now
     * names another VM, or when anything in the cluster claims it (see `claimsOn`).
     */
    terminateVM: guarded(async (expected: VMPrecondition): Promise<'terminated' | 'already-gone'> => {
      const c = vpsieClientOrFail(vpsie);
      const current = await c.getVM(expected.id, cancellation());
      if (!current) return 'already-gone';
      if (current.identifier !== expected.identifier) {
        throw ApplicationFailure.nonRetryable(
          `VM ${expected.id} is now ${current.identifier} ("${current.name}"), not the diagnosed ${expected.identifier}: not terminating it`,
          'VMPreconditionFailed',
        );
      }
      await refuseIfClaimed(
        {
          id: current.id,
          identifier: current.identifier,
          hostname: current.hostname,
          ipAddresses: [current.default_ip, current.default_ipv6].filter((ip): ip is string => !!ip),
        },
        expected,
      );
      const { alreadyGone } = await c.deleteVM(expected.id, cancellation());
      return alreadyGone ? 'already-gone' : 'terminated';
    }),

    /**
     * Removes a machine from its managed cluster the way the autoscaler does (`DELETE …/delete/slave`), for a
     * machine that has no VM id. Idempotent: a machine already gone is success. Refuses a master, a machine whose
     * identifier now names another hostname, and a machine anything in the cluster claims.
     */
    removeClusterNode: guarded(
      async (expected: ClusterNodePrecondition): Promise<'removed' | 'already-gone'> => {
        const c = vpsieClientOrFail(vpsie);
        const cluster = await c.getK8sCluster(expected.resourceIdentifier, cancellation());
        const current = cluster?.nodes.find((n) => n.identifier === expected.identifier);
        if (!current) return 'already-gone';
        if (current.role === 'master' || current.hostname.toLowerCase() !== expected.hostname.toLowerCase()) {
          throw ApplicationFailure.nonRetryable(
            `cluster node ${expected.identifier} is now ${current.role || 'a node'} "${current.hostname}", not the diagnosed "${expected.hostname}": not removing it`,
            'ClusterNodePreconditionFailed',
          );
        }
        await refuseIfClaimed(
          {
            id: 0,
            identifier: current.identifier,
            hostname: current.hostname,
            ipAddresses: current.ip ? [current.ip] : [],
          },
          expected,
        );
        const { alreadyGone } = await c.deleteK8sNode(
          expected.resourceIdentifier,
          expected.identifier,
          cancellation(),
        );
        return alreadyGone ? 'already-gone' : 'removed';
      },
    ),
  };
}
