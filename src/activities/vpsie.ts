import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { VPSieApiError, type VPSieClient } from '../clients/vpsie';
import {
  checkCatalog,
  checkSSHKeyIDs,
  matchMachine,
  toClusterNodeSnapshot,
  toVMSnapshot,
  type CatalogCheck,
  type ClusterNodeSnapshot,
  type MachineMatch,
  type MachineQuery,
  type SSHKeyCheck,
  type VMSnapshot,
} from '../runbook';

/**
 * VPSie answers as Temporal failures. The client makes one attempt per call; Temporal's retry policy is the
 * only retry layer. Permanent failures (401/403/404/4xx, capacity limits, malformed answers) fail at once with
 * a type the workflow can branch on (`VPSieAuth`, `VPSieCapacity`, …); transient ones are retried, after the
 * API's own `Retry-After` when it gave one. The details are the error's secret-free JSON form.
 */
export function asVPSieActivityFailure(err: unknown): unknown {
  if (err instanceof RangeError) return ApplicationFailure.nonRetryable(err.message, 'InvalidInput');
  if (!(err instanceof VPSieApiError)) return err;
  const type = `VPSie${err.kind.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase())}`;
  return ApplicationFailure.create({
    message: err.message,
    type,
    nonRetryable: err.permanent,
    details: [err.toJSON()],
    ...(err.retryAfterMs !== undefined
      ? { nextRetryDelay: Math.min(err.retryAfterMs, MAX_RETRY_AFTER_MS) }
      : {}),
  });
}

/**
 * The longest `Retry-After` followed: the retry policies' own longest interval. Temporal takes a failure's
 * `nextRetryDelay` over the policy, so an unbounded one (`Retry-After: 86400`) would park a run silently for a day.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** The activity's cancellation signal, so a cancelled run stops waiting on VPSie. */
export function cancellation(): { signal?: AbortSignal } {
  try {
    return { signal: Context.current().cancellationSignal };
  } catch {
    return {}; // called outside an activity (a script, a test): nothing to cancel with
  }
}

export interface VPSieNodeGroupSnapshot {
  /** What `VPSieNode.spec.vpsieGroupID` must hold. */
  id: number;
  identifier: string;
  name: string;
  nodesCount: number | null;
}

export interface MachineFinding extends MachineMatch {
  /** `unknown`: VPSie has no such cluster; `unset`: the VPSieNode names none. */
  cluster: 'found' | 'unknown' | 'unset';
}

/** The configured client, or a non-retryable failure that says how to configure one. */
export function vpsieClientOrFail(vpsie: VPSieClient | null): VPSieClient {
  if (!vpsie) {
    throw ApplicationFailure.nonRetryable(
      'VPSie credentials are not configured: set VPSIE_TOKEN_FILE (or VPSIE_TOKEN), or VPSIE_CLIENT_ID and VPSIE_CLIENT_SECRET (or their _FILE forms), for the worker',
      'VPSieNotConfigured',
    );
  }
  return vpsie;
}

/** Wraps an activity so that whatever it throws reaches Temporal as `toFailure` maps it. */
export const failingAs =
  (toFailure: (err: unknown) => unknown) =>
  <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
  async (...args: A): Promise<R> => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toFailure(err);
    }
  };

/** Runbook step 4 by id: null when VPSie does not know it. Shared by `checkVM` and the evidence. */
export async function readVM(c: VPSieClient, instanceID: number): Promise<VMSnapshot | null> {
  const vm = await c.getVM(instanceID, cancellation());
  return vm && toVMSnapshot(vm);
}

/** Runbook cause 5 against the account's keys. */
export async function readSSHKeyCheck(c: VPSieClient, sshKeyIDs: string[]): Promise<SSHKeyCheck> {
  return checkSSHKeyIDs(sshKeyIDs, await c.listSSHKeys(cancellation()));
}

/** What of a NodeGroup cause 1 checks against VPSie's catalog. */
export interface CatalogQuery {
  offeringIDs: string[];
  datacenterID: string | null;
  osImageID: string | null;
}

/** Runbook cause 1 against VPSie's catalog. */
export async function readCatalogCheck(c: VPSieClient, wanted: CatalogQuery): Promise<CatalogCheck> {
  const [offerings, datacenters, images] = await Promise.all([
    c.listOfferings(cancellation()),
    c.listDatacenters(cancellation()),
    c.listImages(cancellation()),
  ]);
  return checkCatalog(wanted, { offerings, datacenters, images });
}

/** The machines of a managed cluster; null when VPSie has no such cluster. */
export async function readClusterNodes(
  c: VPSieClient,
  resourceIdentifier: string,
): Promise<ClusterNodeSnapshot[] | null> {
  const cluster = await c.getK8sCluster(resourceIdentifier, cancellation());
  return cluster && cluster.nodes.map(toClusterNodeSnapshot);
}

/** Runbook step 4 for a VPSieNode whose `vpsieInstanceID` may be 0 (see `matchMachine`). */
export async function readMachine(
  c: VPSieClient,
  query: MachineQuery & { resourceIdentifier: string | null },
): Promise<MachineFinding> {
  const nodes = query.resourceIdentifier ? await readClusterNodes(c, query.resourceIdentifier) : [];
  const vms =
    query.vpsieInstanceID > 0
      ? [await c.getVM(query.vpsieInstanceID, cancellation())].filter((v) => v !== null)
      : await c.listVMs(cancellation());
  return {
    cluster: !query.resourceIdentifier ? 'unset' : nodes ? 'found' : 'unknown',
    ...matchMachine(query, nodes ?? [], vms.map(toVMSnapshot)),
  };
}

export function createVPSieActivities(vpsie: VPSieClient | null) {
  const client = (): VPSieClient => vpsieClientOrFail(vpsie);
  const guarded = failingAs(asVPSieActivityFailure);

  return {
    /** Runbook step 4: was the VM created, and what state is it in? null when VPSie does not know the id. */
    checkVM: guarded(async (instanceID: number): Promise<VMSnapshot | null> => readVM(client(), instanceID)),

    /** For orphan detection: every VM in the account, reduced to what the runbook needs. */
    listVMs: guarded(async (): Promise<VMSnapshot[]> =>
      (await client().listVMs(cancellation())).map(toVMSnapshot),
    ),

    /** Runbook cause 5: are the NodeGroup's SSH key ids known to the VPSie account? */
    checkSSHKeys: guarded(async (sshKeyIDs: string[]): Promise<SSHKeyCheck> =>
      readSSHKeyCheck(client(), sshKeyIDs),
    ),

    /** Runbook cause 1: are the NodeGroup's offering, datacenter and image ids valid and available? */
    checkCatalog: guarded(async (wanted: CatalogQuery): Promise<CatalogCheck> =>
      readCatalogCheck(client(), wanted),
    ),

    /** The machines of a managed cluster (`spec.resourceIdentifier`); null when VPSie has no such cluster. */
    listClusterNodes: guarded(async (resourceIdentifier: string): Promise<ClusterNodeSnapshot[] | null> =>
      readClusterNodes(client(), resourceIdentifier),
    ),

    /** The cluster's node groups (`spec.vpsieGroupID` must be one's id); null when VPSie has no such cluster. */
    listNodeGroups: guarded(async (resourceIdentifier: string): Promise<VPSieNodeGroupSnapshot[] | null> => {
      const groups = await client().listK8sNodeGroups(resourceIdentifier, cancellation());
      return (
        groups &&
        groups.map((g) => ({
          id: g.id,
          identifier: g.identifier,
          name: g.group_name,
          nodesCount: g.nodes_count,
        }))
      );
    }),

    /**
     * Runbook step 4 for a VPSieNode whose `vpsieInstanceID` may be 0: its machine among the cluster's nodes
     * and the account's VMs (see `matchMachine`).
     */
    findMachine: guarded(
      async (query: MachineQuery & { resourceIdentifier: string | null }): Promise<MachineFinding> =>
        readMachine(client(), query),
    ),
  };
}
