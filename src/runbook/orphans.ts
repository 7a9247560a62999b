/**
 * The orphaned-VM sweep (issue 8 item 4, Karpenter's garbage collection of leaked instances): which VPSie
 * machines are this cluster's, which of them nothing in the cluster owns, and which of those are old enough to
 * remove. Pure and deterministic: the activity decides with it, the workflow validates its input with it.
 *
 * How a machine is known to be this cluster's, from the autoscaler's code:
 * - it is a worker in the node list (`GET /k8s/cluster/byId/{id}`) of a VPSie managed-Kubernetes cluster that a
 *   NodeGroup names in `spec.resourceIdentifier`: the autoscaler creates every node there
 *   (`POST …/add/slave/group/{gid}`, `pkg/controller/vpsienode/provisioner.go`) and removes it there
 *   (`DELETE …/delete/slave`), and such machines may never appear in `GET /vm`;
 * - or it is a VM in `GET /vm` whose hostname starts with a NodeGroup's name, a dash and the hex digits of the
 *   random suffix: the NodeGroup controller names each VPSieNode `<nodegroup>-<8 hex digits>`
 *   (`pkg/controller/nodegroup/reconciler.go`, buildVPSieNode and generateRandomSuffix), and VPSie names the
 *   machine with the VPSieNode's name as prefix (`discoverer.go` matchesHostnamePattern: "my-nodegroup-abc123"
 *   makes "my-nodegroup-abc123-k8s-worker"; `provisioner.go` generateHostname falls back to the name itself).
 *   A VM that is a worker of another VPSie cluster of the account is that cluster's, whatever its name.
 *
 * A machine of this cluster is an orphan when no VPSieNode or Node claims it (`claimsOn`: id, identifier, IP,
 * hostname, the discoverer's hostname prefix, or a pending creation that may still adopt it), and it is removed
 * only once it is older than the grace period, so a machine the controller is still creating is never touched.
 */
import { resolveApprovalOptions, type DecisionRecord, type PendingApproval } from './approval';
import { claimsOn, describeClaims, type Claim, type MachineIdentity } from './claims';
import { formatDuration, parseDuration, type DurationInput } from './duration';
import type { NodeGroupRef, NodeSnapshot } from './evidence';
import { InvalidInputError } from './input';
import type { ClusterNodeSnapshot } from './machine';
import type { VPSieNodeSnapshot } from './types';
import type { VMSnapshot } from './vm';

// ---------------------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------------------

/** The workflow's input, as callers write it (`temporal workflow start --input '{...}'`, or the Schedule). */
export interface OrphanSweepInput {
  /** Only machines older than this are removed; default 30m, between 15m and 30 days. */
  grace?: DurationInput;
  /** Who may decide (exact names, case included); empty or absent: anyone who may signal the workflow. */
  approvers?: string[];
  /** How long each approval waits; default 1h, between 10s and 7 days. */
  approvalTtl?: DurationInput;
  /** Find and report the orphans, ask nobody, remove nothing. Default false. */
  dryRun?: boolean;
  /** `each` (default): one approval per machine, step `terminate-<identifier>`; `all`: one, step `terminate-all`. */
  mode?: OrphanSweepMode;
}

export type OrphanSweepMode = 'each' | 'all';

export interface ResolvedOrphanSweepInput {
  graceMs: number;
  mode: OrphanSweepMode;
  dryRun: boolean;
  allowList: string[];
  approvalTtlMs: number;
}

/**
 * The default grace period: the controller's own horizon. Its discoverer adopts a requested machine for up to
 * 15 minutes (DiscoveryTimeout) and an unclaimed Node up to 30 minutes old (MaxNodeAge), so a younger machine may
 * still become a VPSieNode's.
 */
export const DEFAULT_ORPHAN_GRACE_MS = 30 * 60_000;
/** Below the discoverer's 15-minute window a machine the controller is still looking for could be taken. */
export const MIN_ORPHAN_GRACE_MS = 15 * 60_000;
/** A typo guard: a month is already longer than anyone keeps a leaked machine on purpose. */
export const MAX_ORPHAN_GRACE_MS = 30 * 86_400_000;
/**
 * Machines offered for removal per run: bounds the run's history (each approval and removal is a few events).
 * Further orphans are kept with that reason and offered by the next run.
 */
export const MAX_ORPHAN_CANDIDATES = 100;

/** The approval step kind of a removal: the runbook's "Manual VM Cleanup" act. */
export const ORPHAN_STEP_KIND = 'terminate-machine';
/** The step id of the one approval in mode `all`. */
export const TERMINATE_ALL_STEP = 'terminate-all';

const INPUT_FIELDS = ['grace', 'approvers', 'approvalTtl', 'dryRun', 'mode'];

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Validates the sweep's input; throws InvalidInputError naming every bad field. */
export function resolveOrphanSweepInput(input: unknown): ResolvedOrphanSweepInput {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input))
    throw new InvalidInputError(`input must be an object, got ${show(input)}`);
  const o = input as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(o).filter((k) => !INPUT_FIELDS.includes(k));
  if (unknown.length)
    problems.push(`input has unknown field(s) ${unknown.join(', ')}; known: ${INPUT_FIELDS.join(', ')}`);

  let graceMs = DEFAULT_ORPHAN_GRACE_MS;
  if (o.grace !== undefined) {
    try {
      graceMs = parseDuration(o.grace, 'input.grace');
      if (graceMs < MIN_ORPHAN_GRACE_MS || graceMs > MAX_ORPHAN_GRACE_MS)
        problems.push(
          `input.grace must be between ${formatDuration(MIN_ORPHAN_GRACE_MS)} and 30 days, got ${show(o.grace)}`,
        );
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  let mode: OrphanSweepMode = 'each';
  if (o.mode !== undefined) {
    if (o.mode !== 'each' && o.mode !== 'all')
      problems.push(`input.mode must be "each" or "all", got ${show(o.mode)}`);
    else mode = o.mode;
  }
  if (o.dryRun !== undefined && typeof o.dryRun !== 'boolean')
    problems.push(`input.dryRun must be true or false, got ${show(o.dryRun)}`);

  let allowList: string[] = [];
  let approvalTtlMs = 0;
  try {
    const approval = resolveApprovalOptions(
      {
        ...(o.approvers !== undefined ? { approvers: o.approvers as string[] } : {}),
        ...(o.approvalTtl !== undefined ? { approvalTtl: o.approvalTtl as DurationInput } : {}),
      },
      [],
      'input',
    );
    allowList = approval.allowList;
    approvalTtlMs = approval.ttlMs;
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length) throw new InvalidInputError(problems.join('; '));
  return { graceMs, mode, dryRun: o.dryRun === true, allowList, approvalTtlMs };
}

// ---------------------------------------------------------------------------------------------------------
// Finding the orphans
// ---------------------------------------------------------------------------------------------------------

/** A machine of this cluster as the sweep keeps it: enough to show a person and to remove it. */
export interface OrphanMachine {
  /** `cluster-node`: removed through `DELETE …/delete/slave`; `vm`: through `DELETE /vm/{id}`. */
  kind: 'cluster-node' | 'vm';
  /** VM id; 0 when VPSie lists the machine only in its cluster. */
  id: number;
  /** VPSie's UUID of the machine (the cluster node's, or the VM's). */
  identifier: string;
  hostname: string;
  ip: string | null;
  status: string;
  /** As VPSie wrote it (the cluster node's `created_on`, else its VM's); null when VPSie did not say. */
  createdOn: string | null;
  /** The VPSie managed-Kubernetes cluster that lists it; null for a VM found only in `GET /vm`. */
  resourceIdentifier: string | null;
  /** The NodeGroup whose VPSieNode naming the hostname carries; null when it carries none. */
  nodeGroup: NodeGroupRef | null;
  /** Why the machine is this cluster's, in words. */
  belongs: string;
}

/** A machine with the reason it was kept (or, for a candidate, why it is an orphan). */
export interface MachineVerdict {
  machine: OrphanMachine;
  why: string;
}

export interface OrphanScan {
  /** When the sources were read (activity time, ISO 8601). */
  scannedAt: string;
  graceMs: number;
  /** Orphans older than the grace period, oldest first: what the sweep asks to remove. */
  candidates: MachineVerdict[];
  /** Every other machine of this cluster, with the reason it stays. */
  kept: MachineVerdict[];
  /** What the sweep could not look at (a NodeGroup whose VPSie cluster VPSie does not know, ...). */
  notes: string[];
}

/** Everything the sweep decides from, as the activity read it. */
export interface OrphanScanSources {
  nodeGroups: readonly { namespace: string; name: string; resourceIdentifier: string | null }[];
  /** The machines of each cluster a NodeGroup names; null when VPSie has no such cluster. */
  clusters: Readonly<Record<string, readonly ClusterNodeSnapshot[] | null>>;
  /** The account's other managed clusters with their machines: a VM that is theirs is not this cluster's. */
  otherClusters: readonly { resourceIdentifier: string; nodes: readonly ClusterNodeSnapshot[] }[];
  vms: readonly VMSnapshot[];
  vpsieNodes: readonly VPSieNodeSnapshot[];
  nodes: readonly NodeSnapshot[];
  nowMs: number;
  graceMs: number;
}

const lower = (s: string) => s.toLowerCase();
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The NodeGroup whose VPSieNode naming `hostname` carries: `<nodegroup>-<1 to 8 hex digits>` (upstream's suffix
 * is 8; its fallback, `%x` of a timestamp, may be shorter), then the end or a separator. When NodeGroups of
 * several namespaces share the name, the first in namespace order.
 */
export function nodeGroupOfHostname(
  hostname: string,
  nodeGroups: readonly { namespace: string; name: string }[],
): NodeGroupRef | null {
  const h = lower(hostname);
  const sorted = [...nodeGroups].sort(
    (a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name),
  );
  for (const ng of sorted) {
    if (new RegExp(`^${escapeRegExp(lower(ng.name))}-[0-9a-f]{1,8}(?:$|[-.])`).test(h))
      return { namespace: ng.namespace, name: ng.name };
  }
  return null;
}

/**
 * VPSie's `created_on` as a time: RFC 3339 with a zone, or `YYYY-MM-DD HH:MM:SS` (read as UTC: VPSie does not say
 * which zone it means). null for anything else: an age that cannot be read never counts as old enough.
 */
export function parseVPSieTime(value: string | null | undefined): number | null {
  if (!value) return null;
  const s = value.trim();
  const zoned = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i;
  const plain = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(:\d{2}(\.\d+)?)?)$/;
  let t = NaN;
  if (zoned.test(s)) t = Date.parse(s);
  else {
    const m = plain.exec(s);
    if (m) t = Date.parse(`${m[1]}T${m[2]}Z`);
  }
  return Number.isNaN(t) ? null : t;
}

function identityOf(m: OrphanMachine, vmIPs: string[]): MachineIdentity {
  return {
    id: m.id,
    identifier: m.identifier,
    hostname: m.hostname,
    ipAddresses: [...new Set([m.ip, ...vmIPs].filter((ip): ip is string => !!ip))],
  };
}

/**
 * Which machines are this cluster's orphans. Every machine of this cluster ends up in exactly one of
 * `candidates` (orphaned and older than the grace period) or `kept` (with the reason); VMs that are not this
 * cluster's are not listed at all.
 */
export function findOrphans(src: OrphanScanSources): Omit<OrphanScan, 'scannedAt'> {
  const notes: string[] = [];
  const machines: { machine: OrphanMachine; vmIPs: string[]; master: boolean }[] = [];
  const vmOf = (hostname: string, ip: string | null) =>
    src.vms.find(
      (v) => (hostname !== '' && lower(v.hostname) === lower(hostname)) || (!!ip && v.ipAddress === ip),
    );
  const seenVMs = new Set<number>();

  // 1. The workers of every cluster a NodeGroup names.
  const clusterIds = [
    ...new Set(src.nodeGroups.map((g) => g.resourceIdentifier).filter((r): r is string => !!r)),
  ].sort();
  for (const id of clusterIds) {
    const nodes = src.clusters[id];
    if (!nodes) {
      const named = src.nodeGroups
        .filter((g) => g.resourceIdentifier === id)
        .map((g) => `${g.namespace}/${g.name}`);
      notes.push(
        `NodeGroup ${named.join(', ')} names VPSie cluster ${id}, which VPSie does not know: not swept`,
      );
      continue;
    }
    for (const n of nodes) {
      const vm = vmOf(n.hostname, n.ip);
      if (vm) seenVMs.add(vm.id);
      machines.push({
        master: n.role === 'master',
        vmIPs: vm?.ipAddress ? [vm.ipAddress] : [],
        machine: {
          kind: 'cluster-node',
          id: vm?.id ?? 0,
          identifier: n.identifier,
          hostname: n.hostname,
          ip: n.ip,
          status: n.status,
          createdOn: n.createdOn ?? vm?.createdOn ?? null,
          resourceIdentifier: id,
          nodeGroup: nodeGroupOfHostname(n.hostname, src.nodeGroups),
          belongs: `a ${n.role || 'worker'} of VPSie cluster ${id}, which a NodeGroup names`,
        },
      });
    }
  }
  for (const g of src.nodeGroups)
    if (!g.resourceIdentifier)
      notes.push(
        `NodeGroup ${g.namespace}/${g.name} has no spec.resourceIdentifier: its cluster is not swept`,
      );

  // 2. VMs named the way VPSie names the autoscaler's machines, that no other cluster of the account lists.
  const elsewhere = (v: VMSnapshot) =>
    src.otherClusters.find((c) =>
      c.nodes.some(
        (n) =>
          (v.hostname !== '' && lower(n.hostname) === lower(v.hostname)) || (!!n.ip && n.ip === v.ipAddress),
      ),
    );
  for (const v of src.vms) {
    if (seenVMs.has(v.id)) continue;
    const nodeGroup = nodeGroupOfHostname(v.hostname, src.nodeGroups);
    if (!nodeGroup) continue;
    const other = elsewhere(v);
    if (other) {
      notes.push(
        `VM ${v.id} (${v.hostname}) is named like NodeGroup ${nodeGroup.namespace}/${nodeGroup.name}'s machines but is a worker of VPSie cluster ${other.resourceIdentifier}: not this cluster's`,
      );
      continue;
    }
    machines.push({
      master: false,
      vmIPs: [],
      machine: {
        kind: 'vm',
        id: v.id,
        identifier: v.identifier,
        hostname: v.hostname,
        ip: v.ipAddress,
        status: v.status,
        createdOn: v.createdOn || null,
        resourceIdentifier: null,
        nodeGroup,
        belongs: `a VM in GET /vm named after a VPSieNode of NodeGroup ${nodeGroup.namespace}/${nodeGroup.name} (${nodeGroup.name}-<hex suffix>)`,
      },
    });
  }

  // 3. Each machine: a master, too young, claimed, or an orphan old enough to remove.
  const candidates: (MachineVerdict & { at: number })[] = [];
  const kept: MachineVerdict[] = [];
  const grace = formatDuration(src.graceMs);
  for (const { machine, vmIPs, master } of machines) {
    if (master) {
      kept.push({ machine, why: 'a master of the cluster: never removed' });
      continue;
    }
    const created = parseVPSieTime(machine.createdOn);
    if (created === null) {
      kept.push({
        machine,
        why: `VPSie gives no readable creation time (${show(machine.createdOn ?? undefined)}): its age, and so the grace period, cannot be checked`,
      });
      continue;
    }
    const age = src.nowMs - created;
    if (age < src.graceMs) {
      kept.push({
        machine,
        why: `created ${formatDuration(Math.max(0, age))} ago, younger than the grace period (${grace}): the controller may still be creating or adopting it`,
      });
      continue;
    }
    const claims = claimsOnMachine(machine, vmIPs, src);
    if (claims.length) {
      kept.push({ machine, why: describeClaims(identityOf(machine, vmIPs), claims) });
      continue;
    }
    candidates.push({
      machine,
      at: created,
      why: `${machine.belongs}; no VPSieNode or Node claims it; created ${formatDuration(age)} ago (grace period ${grace})`,
    });
  }
  candidates.sort((a, b) => a.at - b.at || a.machine.hostname.localeCompare(b.machine.hostname));
  for (const c of candidates.splice(MAX_ORPHAN_CANDIDATES))
    kept.push({
      machine: c.machine,
      why: `an orphan, but over this run's limit of ${MAX_ORPHAN_CANDIDATES} removals: the next sweep offers it`,
    });
  return {
    graceMs: src.graceMs,
    candidates: candidates.map(({ machine, why }) => ({ machine, why })),
    kept,
    notes,
  };
}

/**
 * `claimsOn` for a machine of the sweep. A pending creation only adopts machines of its own VPSie cluster
 * (`add/slave` creates in `spec.resourceIdentifier`), so another cluster's pending creations do not count when
 * the machine's cluster is known. The NodeGroup scope is the one the hostname names, as the removal uses.
 */
function claimsOnMachine(machine: OrphanMachine, vmIPs: string[], src: OrphanScanSources): Claim[] {
  const byOwner = new Map(src.vpsieNodes.map((vn) => [`${vn.namespace}/${vn.name}`, vn]));
  return claimsOn(identityOf(machine, vmIPs), {
    vpsieNodes: src.vpsieNodes,
    nodes: src.nodes,
    nowMs: src.nowMs,
    nodeGroup: machine.nodeGroup?.name ?? null,
  }).filter((c) => {
    if (c.by !== 'pending-creation' || !machine.resourceIdentifier) return true;
    const owner = byOwner.get(c.owner)?.resourceIdentifier;
    return !owner || owner === machine.resourceIdentifier;
  });
}

/** The approval step id of one machine: `terminate-<identifier>`, or `terminate-<VM id>` without one. */
export function orphanStepId(machine: Pick<OrphanMachine, 'identifier' | 'id'>): string {
  return `terminate-${machine.identifier || machine.id}`;
}

/** What removing the machine sends, in words: shown to the approver. */
export function removalOf(machine: OrphanMachine): string {
  return machine.kind === 'cluster-node'
    ? `DELETE /k8s/cluster/byId/${machine.resourceIdentifier}/delete/slave {"identifier": "${machine.identifier}"}`
    : `DELETE /vm/${machine.id}`;
}

/** The exact target an approver sees: the machine, and the request that removes it. */
export function approvalTargetOf(machine: OrphanMachine): OrphanMachine & { removal: string } {
  return { ...machine, removal: removalOf(machine) };
}

// ---------------------------------------------------------------------------------------------------------
// Status and report
// ---------------------------------------------------------------------------------------------------------

export type OrphanSweepStage = 'finding' | 'awaiting-approval' | 'removing' | 'completed';

/**
 * How a sweep ended:
 * - `Removed`: at least one machine was removed (or was found already gone);
 * - `NothingToRemove`: no orphan older than the grace period;
 * - `DryRun`: input `dryRun`; the candidates are listed, nothing was asked or removed;
 * - `Rejected`: people rejected every removal;
 * - `ApprovalExpired`: nobody decided in time (removals approved before that are `Removed`);
 * - `NothingRemoved`: every approved removal was refused by its re-check or failed;
 * - `ReadFailed`: the cluster or VPSie could not be read; nothing was removed.
 */
export type OrphanSweepOutcome =
  'Removed' | 'NothingToRemove' | 'DryRun' | 'Rejected' | 'ApprovalExpired' | 'NothingRemoved' | 'ReadFailed';

export interface RemovedMachine {
  machine: OrphanMachine;
  /** `already-gone`: VPSie no longer had it when the removal looked (404 is done). */
  result: 'terminated' | 'removed' | 'already-gone';
  at: string;
}

export interface OrphanSweepStatus {
  stage: OrphanSweepStage;
  startedAt: string;
  finishedAt: string | null;
  graceMs: number;
  grace: string;
  mode: OrphanSweepMode;
  dryRun: boolean;
  /** Empty: anyone who may signal the workflow. */
  approvers: string[];
  /** The orphans offered for removal, with why each is one. */
  candidates: MachineVerdict[];
  removed: RemovedMachine[];
  /** Machines of this cluster left alone, with why: young, claimed, a master, rejected, not approved in time. */
  kept: MachineVerdict[];
  /** Approved removals that the removal's own re-check refused (claimed meanwhile, changed): nothing was sent. */
  refused: MachineVerdict[];
  /** Approved removals that failed through their retries. */
  failed: MachineVerdict[];
  notes: string[];
  /** The machine being removed now. */
  current: OrphanMachine | null;
  pendingApproval: PendingApproval | null;
  decisions: DecisionRecord[];
  refusedDecisions: DecisionRecord[];
  outcome: OrphanSweepOutcome | null;
  /** Why the sweep could not read its sources (outcome `ReadFailed`). */
  error: { step: string; type: string; message: string } | null;
}

/** The workflow's result: the status as it ended. */
export type OrphanSweepReport = Omit<OrphanSweepStatus, 'current' | 'pendingApproval' | 'stage'>;

/** The outcome from what happened. */
export function sweepOutcome(s: {
  dryRun: boolean;
  candidates: readonly unknown[];
  removed: readonly unknown[];
  expired: boolean;
  rejected: number;
}): OrphanSweepOutcome {
  if (s.dryRun) return 'DryRun';
  if (s.candidates.length === 0) return 'NothingToRemove';
  if (s.removed.length > 0) return 'Removed';
  if (s.expired) return 'ApprovalExpired';
  if (s.rejected >= s.candidates.length) return 'Rejected';
  return 'NothingRemoved';
}

/** One line for the Temporal UI's current details. */
export function describeSweep(s: OrphanSweepStatus, workflowId: string): string {
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  const tally = `${count(s.candidates.length, 'orphan')}, ${s.removed.length} removed, ${s.kept.length} kept, ${s.refused.length} refused, ${s.failed.length} failed`;
  switch (s.stage) {
    case 'finding':
      return `Orphaned-VM sweep: finding this cluster's machines that nothing claims, older than ${s.grace}`;
    case 'awaiting-approval': {
      const p = s.pendingApproval;
      if (!p) return `Orphaned-VM sweep: ${tally}; waiting for approval`;
      const who = s.approvers.length ? s.approvers.join(' or ') : 'anyone allowed to signal this workflow';
      return `Orphaned-VM sweep: ${tally}; waiting until ${p.expiresAt} for ${who} to approve ${p.stepId}. Approve: temporal workflow update execute --workflow-id ${workflowId} --name decide --input '{"stepId": "${p.stepId}", "decision": "approve", "approver": "<you>"}'`;
    }
    case 'removing':
      return `Orphaned-VM sweep: ${tally}; removing ${s.current ? `${s.current.hostname || s.current.identifier} (${removalOf(s.current)})` : ''}`;
    case 'completed':
      return `Orphaned-VM sweep: ${s.outcome}: ${tally}${s.error ? ` (${s.error.step}: ${s.error.type}: ${s.error.message})` : ''}`;
  }
}
