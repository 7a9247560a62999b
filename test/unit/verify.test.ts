import {
  clusterNodeGone,
  describeVanished,
  findReplacement,
  registrationState,
  replacementState,
  targetState,
  vmGone,
  type ClusterNodeSnapshot,
  type NodeRegistration,
  type TargetState,
  type VMSnapshot,
  type VPSieNodeSnapshot,
} from '../../src/runbook';
import { nodeRegistration, vmSnapshot, vpsieNodeSnapshot } from '../support/snapshots';

// The VPSieNode as diagnosed: kube-system/ng-a-1, uid u1 (see vpsieNodeSnapshot).
const vn = vpsieNodeSnapshot;
const DELETING = '2026-11-24T10:20:00Z';

describe('targetState: the VPSieNode as diagnosed, now', () => {
  it.each<[string, TargetState['kind'], VPSieNodeSnapshot | null]>([
    ['absent', 'gone', null],
    ['the same UID', 'present', vn()],
    ['the same UID, Failed', 'present', vn({ phase: 'Failed' })],
    ['the same UID with a deletionTimestamp', 'deleting', vn({ deletionTimestamp: DELETING })],
    ['a same-named object with another UID', 'replaced', vn({ uid: 'u2' })],
    ['another UID that is itself being deleted', 'replaced', vn({ uid: 'u2', deletionTimestamp: DELETING })],
  ])('%s → %s', (_, kind, now) => {
    expect(targetState(now, 'u1').kind).toBe(kind);
  });

  it('carries the object it found, or the UID that replaced it', () => {
    const present = vn({ resourceVersion: '99' });
    expect(targetState(present, 'u1')).toEqual({ kind: 'present', node: present });
    const deleting = vn({ deletionTimestamp: DELETING });
    expect(targetState(deleting, 'u1')).toEqual({ kind: 'deleting', node: deleting });
    expect(targetState(vn({ uid: 'u2' }), 'u1')).toEqual({ kind: 'replaced', uid: 'u2' });
    expect(targetState(null, 'u1')).toEqual({ kind: 'gone' });
  });
});

describe('describeVanished: one line for the report when the target is no longer there', () => {
  it('says the object is gone, and why that happens', () => {
    expect(describeVanished({ kind: 'gone' }, 'kube-system/ng-a-1')).toBe(
      'VPSieNode kube-system/ng-a-1 no longer exists (the controller deletes Failed VPSieNodes after 30 minutes)',
    );
  });

  it('names the UID of the object that took its name', () => {
    expect(describeVanished({ kind: 'replaced', uid: 'u2' }, 'kube-system/ng-a-1')).toBe(
      'VPSieNode kube-system/ng-a-1 is now another object (uid u2): someone replaced it',
    );
  });

  it.each<TargetState>([
    { kind: 'present', node: vn() },
    { kind: 'deleting', node: vn({ deletionTimestamp: DELETING }) },
  ])('says nothing while the diagnosed object is still there ($kind)', (state) => {
    expect(describeVanished(state, 'kube-system/ng-a-1')).toBeNull();
  });
});

describe('registrationState: has a VMNotRegistering node recovered?', () => {
  const notReady = nodeRegistration({ readyStatus: 'False', readyReason: 'KubeletNotReady' });
  const ready = nodeRegistration();
  const recovered = (why: string) => ({ kind: 'recovered', why });
  const waiting = { kind: 'waiting' };

  it.each<[string, VPSieNodeSnapshot, NodeRegistration | null, unknown]>([
    // a Ready phase alone is no proof: the Node may have been deleted since
    ['phase Ready, no Node seen', vn({ phase: 'Ready' }), null, waiting],
    ['phase Ready, its Node not Ready', vn({ phase: 'Ready' }), notReady, waiting],
    [
      'Joining, its Node Ready (the controller has not noticed)',
      vn({ phase: 'Joining' }),
      ready,
      recovered('Node ng-a-1-abcde registered (matched by ip) and is Ready'),
    ],
    [
      'Provisioned, its Node found by label and Ready',
      vn({ phase: 'Provisioned' }),
      { ...ready, matchedBy: 'label' },
      recovered('Node ng-a-1-abcde registered (matched by label) and is Ready'),
    ],
    ['Joining, no Node', vn({ phase: 'Joining' }), null, waiting],
    ['Joining, its Node not Ready', vn({ phase: 'Joining' }), notReady, waiting],
    [
      'Joining, its Node never reported Ready',
      vn({ phase: 'Joining' }),
      nodeRegistration({ readyStatus: null, readyReason: null }),
      waiting,
    ],
    [
      'Failed, even with a Ready Node: the controller deletes it after its TTL',
      vn({ phase: 'Failed', lastError: 'JoiningTimeout: node did not join' }),
      ready,
      {
        kind: 'given-up',
        why: 'the controller failed ng-a-1 (JoiningTimeout: node did not join) and deletes it after 30 minutes: a late Node would not save it',
      },
    ],
  ])('%s', (_, node, registration, answer) => {
    expect(registrationState(node, registration)).toEqual(answer);
  });
});

describe('vmGone: has the VM left VPSie?', () => {
  it.each<[string, boolean, VMSnapshot | null]>([
    ['its id no longer answers', true, null],
    ['its id answers with the same VM', false, vmSnapshot()],
    ['its id answers with the same VM, being deleted', false, vmSnapshot({ status: 'deleting' })],
    ['its id answers with another VM (ids are reused)', true, vmSnapshot({ identifier: 'vm-uuid-other' })],
  ])('%s → gone: %s', (_, gone, vm) => {
    expect(vmGone(vm, 'vm-uuid-4242')).toBe(gone);
  });
});

describe('clusterNodeGone: has the machine left the managed cluster?', () => {
  const node = (identifier: string): ClusterNodeSnapshot => ({
    identifier,
    hostname: `host-${identifier}`,
    ip: null,
    status: 'running',
    role: 'slave',
    createdOn: null,
  });

  it.each<[string, boolean, ClusterNodeSnapshot[] | null]>([
    ['the cluster is gone (no list)', true, null],
    ['the cluster has no nodes', true, []],
    ['only other machines are left', true, [node('n-2'), node('n-3')]],
    ['the machine is still listed', false, [node('n-2'), node('n-1')]],
    ['the machine alone is listed', false, [node('n-1')]],
  ])('%s → gone: %s', (_, gone, nodes) => {
    expect(clusterNodeGone(nodes, 'n-1')).toBe(gone);
  });
});

describe('findReplacement: the NodeGroup member that took the deleted one’s place', () => {
  const member = (name: string, uid: string, started: string | null, over: Partial<VPSieNodeSnapshot> = {}) =>
    vn({ name, uid, provisioningStartedAt: started, ...over });
  const deleted = member('ng-a-1', 'u1', '2026-11-24T10:00:00Z', { deletionTimestamp: DELETING });
  const sibling = member('ng-a-2', 'u2', '2026-11-24T09:00:00Z', { phase: 'Ready' });

  it('is none while the group has only the deleted node and the members it had', () => {
    expect(findReplacement([deleted, sibling], 'u1', ['u1', 'u2'])).toBeNull();
    expect(findReplacement([], 'u1', [])).toBeNull();
  });

  it('is a member with a new UID', () => {
    const fresh = member('ng-a-x7k2p', 'u9', '2026-11-24T10:21:00Z');
    expect(findReplacement([deleted, sibling, fresh], 'u1', ['u1', 'u2'])).toBe(fresh);
  });

  it('is a same-named object with a new UID (the deleted one was recreated under its name)', () => {
    const recreated = member('ng-a-1', 'u9', '2026-11-24T10:21:00Z');
    expect(findReplacement([recreated, sibling], 'u1', ['u1', 'u2'])).toBe(recreated);
  });

  it('never takes the deleted UID, even when knownBefore is empty (the list was not read)', () => {
    expect(findReplacement([member('ng-a-1', 'u1', '2026-11-24T10:00:00Z')], 'u1', [])).toBeNull();
  });

  it('takes a member it did not know before when knownBefore is empty', () => {
    expect(findReplacement([deleted, sibling], 'u1', [])).toBe(sibling);
  });

  it('skips a new member that is already being deleted', () => {
    const doomed = member('ng-a-x7k2p', 'u9', '2026-11-24T10:21:00Z', { deletionTimestamp: DELETING });
    expect(findReplacement([deleted, sibling, doomed], 'u1', ['u1', 'u2'])).toBeNull();
  });

  it('takes the oldest of several new members, by provisioning start', () => {
    const later = member('ng-a-aaaaa', 'u8', '2026-11-24T10:22:00Z');
    const earlier = member('ng-a-zzzzz', 'u9', '2026-11-24T10:21:00Z');
    expect(findReplacement([later, earlier, sibling], 'u1', ['u1', 'u2'])).toBe(earlier);
    expect(findReplacement([earlier, later, sibling], 'u1', ['u1', 'u2'])).toBe(earlier);
  });

  it('breaks a tie in provisioning start by name', () => {
    const b = member('ng-a-b', 'u8', '2026-11-24T10:21:00Z');
    const a = member('ng-a-a', 'u9', '2026-11-24T10:21:00Z');
    expect(findReplacement([b, a], 'u1', ['u1'])).toBe(a);
    expect(findReplacement([a, b], 'u1', ['u1'])).toBe(a);
  });

  it('ranks a member with no provisioning start before the others (the snapshot falls back to creationTimestamp, so it is rare)', () => {
    const unstarted = member('ng-a-z', 'u8', null);
    const started = member('ng-a-a', 'u9', '2026-11-24T10:21:00Z');
    expect(findReplacement([started, unstarted], 'u1', ['u1'])).toBe(unstarted);
  });
});

describe('replacementState: the replacement, now', () => {
  const replacement = (over: Partial<VPSieNodeSnapshot> = {}) =>
    vn({ name: 'ng-a-x7k2p', uid: 'u9', ...over });

  it.each<[string, VPSieNodeSnapshot | null, ReturnType<typeof replacementState>]>([
    ['absent', null, { kind: 'gone' }],
    ['a same-named object with another UID', replacement({ uid: 'u10' }), { kind: 'gone' }],
    ['being deleted', replacement({ phase: 'Ready', deletionTimestamp: DELETING }), { kind: 'gone' }],
    ['Ready', replacement({ phase: 'Ready' }), { kind: 'ready' }],
    ['Provisioning', replacement({ phase: 'Provisioning' }), { kind: 'waiting', phase: 'Provisioning' }],
    ['Joining', replacement({ phase: 'Joining' }), { kind: 'waiting', phase: 'Joining' }],
    ['without a phase yet', replacement({ phase: null }), { kind: 'waiting', phase: null }],
    [
      'Failed with the controller’s error',
      replacement({ phase: 'Failed', lastError: 'failed to create VPS: API error 500' }),
      { kind: 'failed', why: 'failed to create VPS: API error 500' },
    ],
    [
      'Failed with no error',
      replacement({ phase: 'Failed' }),
      { kind: 'failed', why: 'Failed, with no lastError' },
    ],
  ])('%s', (_, now, state) => {
    expect(replacementState(now, 'u9')).toEqual(state);
  });
});
