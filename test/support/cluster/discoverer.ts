/**
 * Upstream's Discoverer (`vpsienode/discoverer.go`): finds the machine of an asynchronous add/slave request.
 *
 * - Past `discoveryTimeoutMs` from `status.createdAt`: timed out.
 * - Lists VMs (`GET /vm`, first page only) and the cluster's Nodes. Candidates are running VMs (or status "").
 *   **With no candidate it stops there**, before looking at Nodes at all.
 * - Strategy 1: the newest Node that is not a control plane, has no `autoscaler.vpsie.com/vpsienode` label and
 *   is younger than `maxNodeAgeMs` is claimed (labels vpsienode and nodegroup, a merge patch without
 *   precondition); then a candidate VM with the Node's InternalIP (else ExternalIP) is the answer, else a VPS
 *   with id 0 and that IP (a K8s-managed node).
 * - Strategy 2: a candidate whose hostname starts with the VPSieNode's name (case-insensitive).
 * - Strategy 3: a candidate whose IP is a Node's InternalIP/ExternalIP, unless the Node is another's.
 */
import type { V1Node } from '@kubernetes/client-node';
import { addressesOf, listClusterNodes, type VPSieNodeControllerContext } from './context';
import { LABEL_NODEGROUP, LABEL_VPSIENODE } from './names';
import type { VPSieNodeObj } from './types';
import { describeError, MERGE, parseTime } from './util';
import type { VPS } from './vpsie-client';

const CALLER = 'vpsienode/discoverer.go';

export type Discovery =
  { kind: 'timeout' } | { kind: 'error'; message: string } | { kind: 'none' } | { kind: 'found'; vps: VPS };

export async function discoverVPS(ctx: VPSieNodeControllerContext, vn: VPSieNodeObj): Promise<Discovery> {
  const log = ctx.discovererLog.with({
    vpsienode: vn.metadata.name,
    cluster: vn.spec.resourceIdentifier,
    groupID: vn.spec.vpsieGroupID ?? 0,
  });
  const t = ctx.timings();
  const createdAt = parseTime(vn.status?.createdAt);
  if (createdAt !== undefined && Date.now() - createdAt > t.discoveryTimeoutMs) {
    log.warn(`${CALLER}:109`, 'VPS discovery timeout exceeded', {
      elapsed: `${Date.now() - createdAt}ms`,
      timeout: `${t.discoveryTimeoutMs}ms`,
    });
    return { kind: 'timeout' };
  }
  let vms: VPS[];
  try {
    vms = await ctx.vpsie.listVMs(ctx.world.overrideFor(vn));
  } catch (err) {
    log.error(`${CALLER}:126`, 'Failed to list VMs for discovery', { error: describeError(err) });
    return { kind: 'error', message: `failed to list VMs: ${describeError(err)}` };
  }
  let nodes: V1Node[];
  try {
    nodes = await listClusterNodes(ctx);
  } catch (err) {
    log.error(`${CALLER}:145`, 'Failed to list K8s nodes for discovery', { error: describeError(err) });
    return { kind: 'error', message: `failed to list K8s nodes: ${describeError(err)}` };
  }
  const candidates = vms.filter((vm) => vm.status === 'running' || vm.status === '');
  if (candidates.length === 0) return { kind: 'none' };
  candidates.sort((a, b) => b.createdAt - a.createdAt);

  const unclaimed = newestUnclaimed(nodes, t.maxNodeAgeMs);
  const ip = unclaimed ? nodeIP(unclaimed) : '';
  if (unclaimed && ip) {
    try {
      await claim(ctx, unclaimed, vn);
      log.info(`${CALLER}:409`, 'Successfully claimed K8s node', {
        nodeName: unclaimed.metadata?.name,
        vpsienode: vn.metadata.name,
        nodegroup: vn.spec.nodeGroupName,
      });
      const vm = candidates.find((c) => c.ip === ip);
      if (vm) {
        log.info(`${CALLER}:202`, 'Discovered VPS by unclaimed K8s node IP', {
          vpsID: vm.id,
          ip: vm.ip,
          k8sNode: unclaimed.metadata?.name,
          hostname: vm.hostname,
        });
        return { kind: 'found', vps: vm };
      }
      log.info(`${CALLER}:214`, 'Discovered K8s node (VPSie K8s-managed, no VPS ID available)', {
        k8sNode: unclaimed.metadata?.name,
        nodeIP: ip,
      });
      return {
        kind: 'found',
        vps: {
          id: 0,
          identifier: '',
          hostname: unclaimed.metadata?.name ?? '',
          status: 'running',
          cpu: 0,
          ram: 0,
          ssd: 0,
          ip,
          ipv6: '',
          createdAt: 0,
        },
      };
    } catch (err) {
      log.warn(`${CALLER}:193`, 'Failed to claim node', { error: describeError(err) });
    }
  }

  const prefix = vn.metadata.name.toLowerCase();
  for (const vm of candidates) {
    if (vm.hostname.toLowerCase().startsWith(prefix)) {
      log.info(`${CALLER}:241`, 'Discovered VPS by hostname pattern', {
        vpsID: vm.id,
        hostname: vm.hostname,
      });
      return { kind: 'found', vps: vm };
    }
    if (vm.ip) {
      const node = nodes.find((n) => addressesOf(n, 'InternalIP', 'ExternalIP').includes(vm.ip));
      const owner = node?.metadata?.labels?.[LABEL_VPSIENODE];
      if (node && (!owner || owner === vn.metadata.name)) {
        log.info(`${CALLER}:255`, 'Discovered VPS by IP matching K8s node', {
          vpsID: vm.id,
          ip: vm.ip,
          k8sNode: node.metadata?.name,
        });
        return { kind: 'found', vps: vm };
      }
    }
  }
  return { kind: 'none' };
}

function newestUnclaimed(nodes: V1Node[], maxAgeMs: number): V1Node | undefined {
  const created = (n: V1Node) => new Date(n.metadata?.creationTimestamp ?? 0).getTime();
  return nodes
    .filter((n) => {
      const labels = n.metadata?.labels ?? {};
      if ('node-role.kubernetes.io/control-plane' in labels || 'node-role.kubernetes.io/master' in labels)
        return false;
      if (LABEL_VPSIENODE in labels) return false;
      return Date.now() - created(n) <= maxAgeMs;
    })
    .sort((a, b) => created(b) - created(a))[0];
}

function nodeIP(node: V1Node): string {
  return addressesOf(node, 'InternalIP')[0] ?? addressesOf(node, 'ExternalIP')[0] ?? '';
}

async function claim(ctx: VPSieNodeControllerContext, node: V1Node, vn: VPSieNodeObj): Promise<void> {
  await ctx.core.patchNode(
    {
      name: node.metadata?.name ?? '',
      body: {
        metadata: {
          labels: { [LABEL_VPSIENODE]: vn.metadata.name, [LABEL_NODEGROUP]: vn.spec.nodeGroupName },
        },
      },
    },
    MERGE,
  );
}
