/**
 * The evidence one diagnosis rests on (issue 7 item 1): what the runbook's steps 1–5 and causes 1, 4 and 5 read,
 * gathered in parallel into one small record. Every source but the VPSieNode is read on its own, so one that
 * cannot be read (VPSie unreachable, VPSie not configured) is recorded as such and the rest is still reported.
 */
import type { CatalogCheck, SSHKeyCheck, VMSnapshot } from './vm';
import type {
  ClusterVersion,
  ControllerPodLog,
  EventSummary,
  NodeGroupSnapshot,
  NodeRegistration,
} from './evidence';
import type { MachineMatch } from './machine';
import type { VPSieNodeRef, VPSieNodeSnapshot } from './types';

/** One source of evidence as read: its value, the error that stopped the read, or why it was not read. */
export type SourceResult<T> =
  | { status: 'ok'; value: T }
  /** type: the activity failure's type (`VPSieAuth`, `Kubernetes403`, …); message: secret-free. */
  | { status: 'error'; type: string; message: string }
  /** Not read at all, and why: VPSie not configured, or the source does not apply (no NodeGroup named). */
  | { status: 'unavailable'; why: string };

export const sourceOk = <T>(value: T): SourceResult<T> => ({ status: 'ok', value });
export const sourceError = <T>(type: string, message: string): SourceResult<T> => ({
  status: 'error',
  type,
  message,
});
export const sourceUnavailable = <T>(why: string): SourceResult<T> => ({ status: 'unavailable', why });

/** The value of a source that was read, else null. */
export function sourceValue<T>(source: SourceResult<T>): T | null {
  return source.status === 'ok' ? source.value : null;
}

/** Runbook step 3: what `readControllerLogs` returns (its `ControllerLogEvidence` has these fields). */
export interface ControllerLogs {
  pods: ControllerPodLog[];
  /** Says that no controller pod matched the selector; null when some did. */
  note: string | null;
}

/**
 * Runbook step 4: the VPSieNode's machine in VPSie, as the `findMachine` activity returns it (its
 * `MachineFinding` has these fields). {@link machineFromVM} makes one from what `checkVM` returns.
 */
export interface MachineEvidence extends MachineMatch {
  /** `unknown`: VPSie has no such cluster; `unset`: the VPSieNode names none. */
  cluster: 'found' | 'unknown' | 'unset';
}

/** `checkVM`'s answer (by `spec.vpsieInstanceID`) as machine evidence. */
export function machineFromVM(vm: VMSnapshot | null): MachineEvidence {
  return { node: null, vm, matchedBy: vm ? 'instance-id' : null, ambiguous: [], cluster: 'unset' };
}

export type EvidenceSource =
  | 'vpsieNode'
  | 'events'
  | 'controllerLogs'
  | 'machine'
  | 'node'
  | 'nodeGroup'
  | 'clusterVersion'
  | 'sshKeys'
  | 'catalog';

export interface Evidence {
  /** The VPSieNode the run is about, as named in its input. */
  ref: VPSieNodeRef;
  /** When the evidence was gathered (ISO 8601, workflow time). */
  observedAt: string;
  /** Step 1; null when the VPSieNode does not exist (any more). */
  vpsieNode: VPSieNodeSnapshot | null;
  /**
   * The last snapshot of this VPSieNode the run saw before it went (its first read), so a machine left behind
   * can still be named; null when the run never saw it.
   */
  lastSeen: VPSieNodeSnapshot | null;
  /** Step 2: Events about the VPSieNode (capped). */
  events: SourceResult<EventSummary[]>;
  /** Step 3: the controller's log lines about it (capped). */
  controllerLogs: SourceResult<ControllerLogs>;
  /** Step 4: its machine in VPSie. */
  machine: SourceResult<MachineEvidence>;
  /** Step 5: its Node; ok with null when no Node matched. */
  node: SourceResult<NodeRegistration | null>;
  /** The VPSieNode's NodeGroup; ok with null when it does not exist. */
  nodeGroup: SourceResult<NodeGroupSnapshot | null>;
  /** Cause 4: the API server's version. */
  clusterVersion: SourceResult<ClusterVersion>;
  /** Cause 5: the NodeGroup's SSH key ids against the account. */
  sshKeys: SourceResult<SSHKeyCheck>;
  /** Cause 1: the NodeGroup's offering / datacenter / image ids against VPSie's catalog. */
  catalog: SourceResult<CatalogCheck>;
}

/** Every source that was not read, with why: an escalation lists them. */
export function unreadSources(e: Evidence): { source: EvidenceSource; says: string }[] {
  const sources: [EvidenceSource, SourceResult<unknown>][] = [
    ['events', e.events],
    ['controllerLogs', e.controllerLogs],
    ['machine', e.machine],
    ['node', e.node],
    ['nodeGroup', e.nodeGroup],
    ['clusterVersion', e.clusterVersion],
    ['sshKeys', e.sshKeys],
    ['catalog', e.catalog],
  ];
  return sources.flatMap(([source, r]) =>
    r.status === 'ok'
      ? []
      : [{ source, says: r.status === 'error' ? `${r.type}: ${r.message}` : `unavailable: ${r.why}` }],
  );
}
