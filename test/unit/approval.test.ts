import {
  checkDecision,
  DEFAULT_APPROVAL_TTL_MS,
  InvalidInputError,
  MAX_APPROVAL_TTL_MS,
  MIN_APPROVAL_TTL_MS,
  recordDecision,
  resolveApprovalOptions,
  truncateUtf8,
  utf8Length,
  type PendingApproval,
} from '../../src/runbook';

const pending: PendingApproval = {
  stepId: 'delete-vpsienode',
  kind: 'delete-vpsienode',
  target: { namespace: 'kube-system', name: 'ng-a-7x2k', uid: 'u-1' },
  requestedAt: '2026-11-25T10:00:00.000Z',
  expiresAt: '2026-11-25T11:00:00.000Z',
};
const ok = { stepId: 'delete-vpsienode', decision: 'approve', approver: 'alice@example.com' };
const KINDS = ['delete-vpsienode', 'terminate-vm', 'patch-nodegroup'] as const;

describe('checkDecision', () => {
  it('accepts a decision for the pending step from anyone when the allow-list is empty', () => {
    expect(checkDecision(ok, pending, [])).toEqual({ accepted: true, decision: ok });
  });

  it('accepts a rejection with a reason from a listed approver, and keeps only the known fields', () => {
    const input = { ...ok, decision: 'reject', reason: 'change freeze', extra: 'ignored' };
    expect(checkDecision(input, pending, ['bob', 'alice@example.com'])).toEqual({
      accepted: true,
      decision: { stepId: ok.stepId, decision: 'reject', approver: ok.approver, reason: 'change freeze' },
    });
  });

  it('accepts a reason of exactly 1 KiB of UTF-8 (multi-byte characters counted as bytes)', () => {
    const reason = 'é'.repeat(512); // 2 bytes each
    expect(checkDecision({ ...ok, reason }, pending, [])).toMatchObject({ accepted: true });
  });

  it.each([
    ['not an object', 'approve', 'payload', /decision must be an object, got "approve"/],
    ['null', null, 'payload', /decision must be an object, got null/],
    ['an array', [ok], 'payload', /must be an object/],
    ['no stepId', { ...ok, stepId: undefined }, 'stepId', /stepId must be a non-empty string.*got nothing/],
    ['a numeric stepId', { ...ok, stepId: 7 }, 'stepId', /stepId must be .* got 7/],
    ['an empty stepId', { ...ok, stepId: '' }, 'stepId', /stepId must be a non-empty string/],
    ['an oversized stepId', { ...ok, stepId: 'x'.repeat(254) }, 'stepId', /at most 253 characters/],
    ['an unknown decision', { ...ok, decision: 'maybe' }, 'decision', /"approve" or "reject", got "maybe"/],
    ['a capitalised decision', { ...ok, decision: 'Approve' }, 'decision', /got "Approve"/],
    ['no approver', { ...ok, approver: undefined }, 'approver', /approver must be a non-empty string/],
    ['an empty approver', { ...ok, approver: '' }, 'approver', /approver must be a non-empty string, got ""/],
    [
      'an oversized approver',
      { ...ok, approver: 'a'.repeat(254) },
      'approver',
      /at most 253 characters, got 254/,
    ],
    ['an approver with spaces around', { ...ok, approver: ' alice' }, 'approver', /white space/],
    ['an approver with a newline', { ...ok, approver: 'alice\nbob' }, 'approver', /control characters/],
    ['a numeric reason', { ...ok, reason: 42 }, 'reason', /reason must be a string, got 42/],
    ['a reason over 1 KiB', { ...ok, reason: 'x'.repeat(1025) }, 'reason', /at most 1024 bytes.*got 1025/],
    ['a reason over 1 KiB in bytes only', { ...ok, reason: 'é'.repeat(513) }, 'reason', /got 1026/],
  ])('refuses %s, naming the field', (_what, input, field, message) => {
    const check = checkDecision(input, pending, []);
    expect(check).toMatchObject({ accepted: false, field });
    expect(check.accepted || check.message).toMatch(message);
  });

  it.each([
    ['another name', 'mallory'],
    ['the same name in another case', 'Alice@example.com'],
    ['a prefix', 'alice'],
  ])('refuses an approver not on the allow-list: %s', (_what, approver) => {
    const check = checkDecision({ ...ok, approver }, pending, ['alice@example.com', 'bob']);
    expect(check).toEqual({
      accepted: false,
      field: 'approver',
      message: `approver "${approver}" is not on the allow-list (alice@example.com, bob); names match exactly, case included`,
    });
  });

  it('refuses a decision when nothing is pending', () => {
    expect(checkDecision(ok, null, [])).toEqual({
      accepted: false,
      field: 'pending',
      message: 'no approval is pending: nothing to approve (stepId "delete-vpsienode")',
    });
  });

  it('refuses a decision for a step that is not the pending one, naming the pending one', () => {
    expect(checkDecision({ ...ok, stepId: 'terminate-vm' }, pending, [])).toEqual({
      accepted: false,
      field: 'stepId',
      message:
        'stepId "terminate-vm" is not the pending step: "delete-vpsienode" (delete-vpsienode) awaits approval',
    });
  });

  it('checks the shape before the allow-list, and the allow-list before what is pending', () => {
    expect(checkDecision({ ...ok, approver: 'mallory', reason: 1 }, null, ['bob'])).toMatchObject({
      field: 'reason',
    });
    expect(checkDecision({ ...ok, approver: 'mallory' }, null, ['bob'])).toMatchObject({ field: 'approver' });
  });

  it('shortens a long allow-list in the message', () => {
    const list = Array.from({ length: 12 }, (_, i) => `user${i}`);
    const check = checkDecision({ ...ok, approver: 'mallory' }, pending, list);
    expect(check.accepted || check.message).toMatch(/\(user0, .*user9, \.\.\.\)/);
  });
});

describe('recordDecision', () => {
  const at = '2026-11-25T10:05:00.000Z';

  it('records an accepted decision: who, what, when', () => {
    const input = { ...ok, reason: 'looks right' };
    expect(recordDecision(input, checkDecision(input, pending, []), 'update', at)).toEqual({
      stepId: ok.stepId,
      decision: 'approve',
      approver: ok.approver,
      reason: 'looks right',
      via: 'update',
      at,
      accepted: true,
      refusal: null,
    });
  });

  it('records a refusal with its reason, keeping only bounded strings of whatever was sent', () => {
    const input = { stepId: 9, decision: 'approve', approver: 'a'.repeat(300), reason: 'é'.repeat(2000) };
    const record = recordDecision(input, checkDecision(input, pending, []), 'signal', at);
    expect(record).toMatchObject({ stepId: null, decision: 'approve', via: 'signal', accepted: false });
    expect(record.refusal).toMatch(/stepId must be/);
    expect(record.approver).toHaveLength(253);
    expect(utf8Length(record.reason as string)).toBe(1024);
  });

  it('records a payload that is not an object as nulls', () => {
    const record = recordDecision('yes', checkDecision('yes', pending, []), 'signal', at);
    expect(record).toMatchObject({
      stepId: null,
      decision: null,
      approver: null,
      reason: null,
      accepted: false,
    });
  });
});

describe('UTF-8 helpers', () => {
  it.each([
    ['', 0],
    ['abc', 3],
    ['é', 2],
    ['€', 3],
    ['😀', 4],
  ])('utf8Length(%p) is %d', (s, n) => expect(utf8Length(s)).toBe(n));

  it('truncates without splitting a character', () => {
    expect(truncateUtf8('a€b', 3)).toBe('a');
    expect(truncateUtf8('a€b', 4)).toBe('a€');
    expect(truncateUtf8('😀😀', 5)).toBe('😀');
  });
});

describe('resolveApprovalOptions', () => {
  it('defaults: anyone may approve, 1 h TTL, nothing auto-approved', () => {
    expect(resolveApprovalOptions(undefined, KINDS)).toEqual({
      allowList: [],
      ttlMs: 3_600_000,
      autoApprove: [],
    });
    expect(DEFAULT_APPROVAL_TTL_MS).toBe(3_600_000);
  });

  it('takes an allow-list, a TTL and auto-approved kinds, without duplicates', () => {
    expect(
      resolveApprovalOptions(
        {
          approvers: ['alice', 'bob', 'alice'],
          approvalTtl: '30m',
          autoApprove: ['patch-nodegroup', 'patch-nodegroup'],
        },
        KINDS,
      ),
    ).toEqual({ allowList: ['alice', 'bob'], ttlMs: 1_800_000, autoApprove: ['patch-nodegroup'] });
  });

  it.each([
    ['10s', MIN_APPROVAL_TTL_MS],
    ['7d', MAX_APPROVAL_TTL_MS],
    [60_000, 60_000],
  ])('accepts the TTL %p', (approvalTtl, ms) => {
    expect(resolveApprovalOptions({ approvalTtl }, KINDS).ttlMs).toBe(ms);
  });

  it.each([
    [{ approvalTtl: '9s' }, /options\.approvalTtl must be between 10s and 7 days, got "9s"/],
    [{ approvalTtl: 60 }, /options\.approvalTtl must be between 10s and 7 days, got 60/],
    [{ approvalTtl: '8d' }, /options\.approvalTtl must be between/],
    [{ approvalTtl: 'soon' }, /options\.approvalTtl must be a duration/],
    [{ approvalTtl: 0 }, /options\.approvalTtl must be a positive duration/],
    [{ approvers: 'alice' }, /options\.approvers must be a list of names, got "alice"/],
    [{ approvers: ['alice', ''] }, /options\.approvers\[1\] must be a non-empty string/],
    [{ approvers: ['alice '] }, /options\.approvers\[0\] must not start or end with white space/],
    [{ approvers: [7] }, /options\.approvers\[0\] must be a non-empty string, got 7/],
    [{ approvers: Array.from({ length: 101 }, (_, i) => `u${i}`) }, /at most 100 names, got 101/],
    [{ autoApprove: 'terminate-vm' }, /options\.autoApprove must be a list of step kinds/],
    [
      { autoApprove: ['terminate-vm', 'reboot', 3] },
      /options\.autoApprove: unknown step kind\(s\) "reboot", 3; known: delete-vpsienode, terminate-vm, patch-nodegroup/,
    ],
  ])('refuses %p with an error naming the field', (options, message) => {
    const attempt = () => resolveApprovalOptions(options as never, KINDS);
    expect(attempt).toThrow(InvalidInputError);
    expect(attempt).toThrow(message);
  });

  it('names every bad field at once, under the given path', () => {
    expect(() =>
      resolveApprovalOptions({ approvers: [''], approvalTtl: '1s', autoApprove: ['x'] }, KINDS, 'approval'),
    ).toThrow(/approval\.approvers\[0\].*; approval\.approvalTtl.*; approval\.autoApprove/);
  });
});
