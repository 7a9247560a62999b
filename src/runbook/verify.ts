/**
 * What one look during a remediation wait means (issue 7 item 3): pure, so the workflow only sequences looks and
 * tests can table every answer. "Gone" always means "not the object diagnosed": a same-named object with another
 * UID is someone else's.
 */
import type { NodeRegistration } from './evidence';
import type { ClusterNodeSnapshot } from './machine';
import type { VPSieNodeSnapshot } from './types';
import type { VMSnapshot } from './vm';

/** The VPSieNode as diagnosed (`uid`), now. */
export type TargetState =
  | { kind: 'present'; node: VPSieNodeSnapshot }
  | { kind: 'deleting'; node: VPSieNodeSnapshot }
  | { kind: 'gone' }
  | { kind: 'replaced'; uid: string };

export function targetState(now: VPSieNodeSnapshot | null, uid: string): TargetState {
  if (now === null) return { kind: 'gone' };
  if (now.uid !== uid) return { kind: 'replaced', uid: now.uid };
  return now.deletionTimestamp ? { kind: 'deleting', node: now } : { kind: 'present', node: now };
}

/** One line for a target that is no longer there, for the report. */
export function describeVanished(s: TargetState, name: string): string | null {
  switch (s.kind) {
    case 'gone':
      return `VPSieNode ${name} no longer exists (the controller deletes Failed VPSieNodes after 30 minutes)`;
    case 'replaced':
      return `VPSieNode ${name} is now another object (uid ${s.uid}): someone replaced it`;
    default:
      return null;
  }
}

/** VMNotRegistering's wait, after one look. */
export type RegistrationState =
  { kind: 'recovered'; why: string } | { kind: 'given-up'; why: string } | { kind: 'waiting' };

/**
 * Has a VMNotRegistering node recovered? Only a Node that matches it and reports Ready says so: a Ready phase
 * without a Node is what the runbook calls "not registering" (the Node may have been deleted since). A Failed
 * VPSieNode cannot recover: the controller deletes it 30 minutes after failing, draining whatever Node joined,
 * so waiting longer only delays the replacement.
 */
export function registrationState(
  node: VPSieNodeSnapshot,
  registration: NodeRegistration | null,
): RegistrationState {
  if (node.phase === 'Failed')
    return {
      kind: 'given-up',
      why: `the controller failed ${node.name} (${node.lastError ?? 'no lastError'}) and deletes it after 30 minutes: a late Node would not save it`,
    };
  if (registration?.node.readyStatus === 'True')
    return {
      kind: 'recovered',
      why: `Node ${registration.node.name} registered (matched by ${registration.matchedBy}) and is Ready`,
    };
  return { kind: 'waiting' };
}

/** The VM is gone from VPSie when its id no longer answers, or answers with another VM. */
export function vmGone(vm: VMSnapshot | null, identifier: string): boolean {
  return vm === null || vm.identifier !== identifier;
}

/** A managed cluster's machine is gone when the cluster (or its list) no longer has that identifier. */
export function clusterNodeGone(nodes: ClusterNodeSnapshot[] | null, identifier: string): boolean {
  return nodes === null || !nodes.some((n) => n.identifier === identifier);
}

/**
 * The NodeGroup's replacement for a deleted VPSieNode: a member that is not being deleted and whose UID is
 * neither the deleted one's nor any member's when the delete was sent. The oldest such, by name, when several.
 */
export function findReplacement(
  members: VPSieNodeSnapshot[],
  replaced: string,
  knownBefore: readonly string[],
): VPSieNodeSnapshot | null {
  const fresh = members
    .filter((m) => m.uid !== replaced && !knownBefore.includes(m.uid) && !m.deletionTimestamp)
    .sort(
      (a, b) =>
        (a.provisioningStartedAt ?? '').localeCompare(b.provisioningStartedAt ?? '') ||
        a.name.localeCompare(b.name),
    );
  return fresh[0] ?? null;
}

/** The replacement, now: Ready ends the remediation; Failed or gone means the recreate did not help. */
export type ReplacementState =
  | { kind: 'ready' }
  | { kind: 'waiting'; phase: string | null }
  | { kind: 'failed'; why: string }
  | { kind: 'gone' };

export function replacementState(now: VPSieNodeSnapshot | null, uid: string): ReplacementState {
  if (now === null || now.uid !== uid || now.deletionTimestamp) return { kind: 'gone' };
  if (now.phase === 'Ready') return { kind: 'ready' };
  if (now.phase === 'Failed') return { kind: 'failed', why: now.lastError ?? 'Failed, with no lastError' };
  return { kind: 'waiting', phase: now.phase };
}
