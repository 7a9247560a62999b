import {
  ESCALATION_EVENT_REASON,
  escalationMessage,
  InvalidInputError,
  MAX_EVENT_MESSAGE_BYTES,
  utf8Length,
  validateEscalation,
  type Escalation,
} from '../../src/runbook';

const base: Escalation = {
  workflowId: 'provisioning-failed/kube-system/ng-a-7x2k',
  runId: '0193d5c4-8a1e-7c2b-9f00-5a1d2e3f4a5b',
  ref: { namespace: 'kube-system', name: 'ng-a-7x2k' },
  uid: '6f1c2a7e-0d7b-4a55-9a63-1e2f3a4b5c6d',
  cause: 'SSHKeyInvalid',
  kind: 'cause',
  reason: 'The NodeGroup names SSH keys the VPSie account lacks: add them to the account or fix sshKeyIDs.',
  step: 'escalate',
  evidence: [
    'NodeGroup kube-system/ng-a spec.sshKeyIDs: key-9 is not in the account',
    'VPSieNode status.lastError: failed to create VPS: ssh key not found',
  ],
};

/** The message InvalidInputError carries for `input`, or a failure when it is accepted. */
function refusal(input: unknown): string {
  try {
    validateEscalation(input);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidInputError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe('validateEscalation', () => {
  it('accepts a full escalation and returns only the known fields', () => {
    expect(validateEscalation({ ...base, extra: 'dropped' })).toEqual(base);
  });

  it('reads an absent uid, cause or step as null (JSON drops undefined on the way from the workflow)', () => {
    const rest: Record<string, unknown> = { ...base };
    for (const field of ['uid', 'cause', 'step']) delete rest[field];
    expect(validateEscalation(rest)).toEqual({ ...rest, uid: null, cause: null, step: null });
    expect(validateEscalation({ ...base, uid: null, cause: null, step: null })).toMatchObject({
      uid: null,
      cause: null,
      step: null,
    });
  });

  it.each([
    ['escalation', null, /^escalation must be an object, got null$/],
    ['escalation', ['a'], /^escalation must be an object/],
    [
      'workflowId',
      { ...base, workflowId: '' },
      /^escalation\.workflowId must be a non-empty string, got ""$/,
    ],
    ['runId', { ...base, runId: 7 }, /^escalation\.runId must be a non-empty string, got 7$/],
    ['ref', { ...base, ref: undefined }, /^escalation\.ref must be \{namespace, name\}, got undefined$/],
    [
      'ref.namespace',
      { ...base, ref: { ...base.ref, namespace: 'Kube_System' } },
      /^escalation\.ref\.namespace /,
    ],
    ['ref.name', { ...base, ref: { ...base.ref, name: 'a/b' } }, /^escalation\.ref\.name .*"a\/b"/],
    ['uid', { ...base, uid: '' }, /^escalation\.uid must be null or a non-empty string, got ""$/],
    [
      'cause',
      { ...base, cause: 'Broken' },
      /^escalation\.cause must be null or one of VMCreationFailed, .*"Broken"$/,
    ],
    ['kind', { ...base, kind: 'oops' }, /^escalation\.kind must be one of cause, wait-expired, .*"oops"$/],
    ['reason', { ...base, reason: '   ' }, /^escalation\.reason must be a non-empty string/],
    ['step', { ...base, step: 3 }, /^escalation\.step must be null or a non-empty string, got 3$/],
    ['evidence', { ...base, evidence: 'one line' }, /^escalation\.evidence must be an array of strings/],
    [
      'evidence[1]',
      { ...base, evidence: ['ok', { line: 2 }] },
      /^escalation\.evidence\[1\] must be a string, got \{"line":2\}$/,
    ],
  ])('names the bad field: %s', (_field, input, message) => {
    expect(refusal(input)).toMatch(message);
  });

  it('cuts a huge bad value in its error', () => {
    expect(refusal({ ...base, kind: 'x'.repeat(5000) }).length).toBeLessThan(300);
  });
});

describe('escalationMessage', () => {
  it('says why, the cause, the step and the kind, then every evidence line in order', () => {
    expect(escalationMessage(base)).toBe(
      [
        base.reason,
        'Cause: SSHKeyInvalid; step: escalate; kind: cause.',
        'Evidence:',
        '- NodeGroup kube-system/ng-a spec.sshKeyIDs: key-9 is not in the account',
        '- VPSieNode status.lastError: failed to create VPS: ssh key not found',
      ].join('\n'),
    );
    expect(ESCALATION_EVENT_REASON).toBe('RunbookEscalated');
  });

  it('says when there is no cause or step yet, and leaves out an empty evidence list', () => {
    const e = { ...base, cause: null, step: null, kind: 'read-failed' as const, evidence: [] };
    expect(escalationMessage(e)).toBe(
      `${base.reason}\nCause: not classified; step: none; kind: read-failed.`,
    );
  });

  it('keeps each piece of evidence on one line, with credentials redacted', () => {
    const e = { ...base, evidence: ['first\nsecond', 'Authorization: Bearer abc.def.ghi token=s3cr3t'] };
    const lines = escalationMessage(e).split('\n');
    expect(lines.slice(3)).toEqual(['- first second', '- Authorization: Bearer [REDACTED] token=[REDACTED]']);
    expect(escalationMessage(e)).not.toMatch(/s3cr3t|abc\.def/);
  });

  it('caps the message at 1024 bytes of UTF-8, cutting whole lines from the end and saying how many', () => {
    // 3-byte and 4-byte characters: 1024 characters would be far more than 1024 bytes
    const evidence = Array.from(
      { length: 40 },
      (_, i) => `${String(i).padStart(2, '0')} 節点 🚀 ${'é'.repeat(20)}`,
    );
    const message = escalationMessage({ ...base, evidence });
    expect(utf8Length(message)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    expect(Buffer.byteLength(message, 'utf8')).toBe(utf8Length(message));
    const lines = message.split('\n');
    const trailer = lines.pop() as string;
    const kept = lines.slice(3).map((l) => l.slice(2));
    // the evidence lines that fit, whole and in order, the first ones first
    expect(kept).toEqual(evidence.slice(0, kept.length));
    expect(kept.length).toBeGreaterThan(5);
    expect(trailer).toBe(`… (${40 - kept.length} more lines in workflow ${base.workflowId})`);
    // as many as fit: one more line would not have
    const withOneMore = [
      ...lines,
      `- ${evidence[kept.length]}`,
      `… (${39 - kept.length} more lines in workflow ${base.workflowId})`,
    ];
    expect(utf8Length(withOneMore.join('\n'))).toBeGreaterThan(MAX_EVENT_MESSAGE_BYTES);
    // no character was split: the message is valid UTF-8 and round-trips
    expect(Buffer.from(message, 'utf8').toString('utf8')).toBe(message);
  });

  it('leaves a message of exactly 1024 bytes whole', () => {
    const head = `${base.reason}\nCause: SSHKeyInvalid; step: escalate; kind: cause.\nEvidence:\n- `;
    const fill = MAX_EVENT_MESSAGE_BYTES - utf8Length(head);
    const line = 'ü'.repeat(Math.floor(fill / 2)) + 'x'.repeat(fill % 2);
    const message = escalationMessage({ ...base, evidence: [line] });
    expect(utf8Length(message)).toBe(MAX_EVENT_MESSAGE_BYTES);
    expect(message.endsWith(line)).toBe(true);
  });

  it('cuts an overlong reason itself, never a character in half, when no whole line fits', () => {
    const reason = '検'.repeat(600); // 1800 bytes
    const message = escalationMessage({ ...base, reason, evidence: ['a', 'b'] });
    expect(utf8Length(message)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    const [first, trailer] = message.split('\n');
    expect(first).toMatch(/^検+…$/);
    expect(trailer).toBe(`… (4 more lines in workflow ${base.workflowId})`);
  });

  it('stays within the cap even with a workflow id of a thousand characters', () => {
    const message = escalationMessage({
      ...base,
      workflowId: 'w'.repeat(1000),
      evidence: Array.from({ length: 30 }, () => 'x'.repeat(60)),
    });
    expect(utf8Length(message)).toBeLessThanOrEqual(MAX_EVENT_MESSAGE_BYTES);
    // the reason keeps its place; the id in the last line is cut instead
    expect(message.startsWith(`${base.reason}\nCause: SSHKeyInvalid`)).toBe(true);
    expect(message.split('\n').pop()).toMatch(/^… \(\d+ more lines in workflow w+…\)$/);
  });
});
