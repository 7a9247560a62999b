import {
  DEFAULT_LEASE_WAIT_MS,
  DESTRUCTIVE_STEP_KINDS,
  InvalidInputError,
  MAX_APPROVERS,
  MAX_CHECKS_PER_RUN,
  MAX_CONTROLLER_LIMIT_MS,
  MIN_RECHECK_INTERVAL_MS,
  PLAN_DEFAULTS,
  resolveApprovalOptions,
  resolveInput,
  workflowIdFor,
  type RunbookContinuation,
  type RunbookOptions,
} from '../../src/runbook';

const ref = { namespace: 'kube-system', name: 'ng-a-7x2k' };

describe('resolveInput', () => {
  it('fills in the controller limits as production defaults', () => {
    const { ref: resolved, options, continuation } = resolveInput(ref);
    expect(resolved).toEqual(ref);
    expect(options).toEqual({
      provisioningLimitMs: 600_000,
      joiningLimitMs: 900_000,
      recheckIntervalMs: 60_000,
      // waiting for a person, the target is looked at every 5 min
      approvalRecheckIntervalMs: 300_000,
      checksPerRun: 200,
      // acts on what it plans; anyone who may signal the run decides, within an hour; nothing is auto-approved
      dryRun: false,
      approval: { allowList: [], ttlMs: 3_600_000, autoApprove: [] },
      // the Node may register until 15 min after provisioning started; deletion 15 min; a replacement 5 min
      // (twice, around a forced reconciliation); the replacement Ready within the controller's 10 + 15 min
      waits: {
        registrationWaitMs: 900_000,
        goneWaitMs: 900_000,
        replacementWaitMs: 300_000,
        readyWaitMs: 1_500_000,
        // another node of the group may be being replaced: up to an hour for its lease
        leaseWaitMs: 3_600_000,
      },
      // the lease workflow's own defaults (one act per NodeGroup, a storm above 3 failures in 15 min)
      nodeGroupLease: null,
      // derived from the VPSieNode's phase when the run escalates
      severity: null,
    });
    expect(options.waits).toEqual({ ...PLAN_DEFAULTS, leaseWaitMs: DEFAULT_LEASE_WAIT_MS });
    expect(continuation).toBeNull();
  });

  it('takes other waits from the options, up to the bounds', () => {
    const { options } = resolveInput({
      ...ref,
      options: {
        provisioningLimit: '2s',
        joiningLimit: '6h',
        recheckInterval: '10s',
        approvalRecheckInterval: '1h',
        checksPerRun: 1,
      },
    });
    expect(options).toMatchObject({
      provisioningLimitMs: 2000,
      joiningLimitMs: 6 * 3_600_000,
      recheckIntervalMs: 10_000,
      approvalRecheckIntervalMs: 3_600_000,
      checksPerRun: 1,
    });
    expect(MIN_RECHECK_INTERVAL_MS).toBe(10_000);
    expect(MAX_CONTROLLER_LIMIT_MS).toBe(6 * 3_600_000);
    expect(MAX_CHECKS_PER_RUN).toBe(1000);
  });

  it.each([
    [{ namespace: 'Kube_System', name: 'a' }, /namespace/],
    [{ namespace: 'default', name: '' }, /name must be a VPSieNode name/],
    [{ namespace: 'default' }, /name/],
    [{ name: 'a' }, /namespace/],
    [{ namespace: 'default', name: 'a', options: { recheckInterval: 'often' } }, /options\.recheckInterval/],
    [{ namespace: 'default', name: 'a', options: { retries: 3 } }, /unknown field\(s\) retries/],
    [{ namespace: 'default', name: 'a', option: {} }, /unknown field\(s\) option/],
    [null, /namespace/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveInput(input)).toThrow(InvalidInputError);
    expect(() => resolveInput(input)).toThrow(message);
  });

  it.each([
    [{ recheckInterval: '9s' }, 'options.recheckInterval must be between 10s and 1h, got "9s"'],
    [{ recheckInterval: 300 }, 'options.recheckInterval must be between 10s and 1h, got 300'],
    [{ recheckInterval: '61m' }, 'options.recheckInterval must be between 10s and 1h, got "61m"'],
    [
      { approvalRecheckInterval: '5s' },
      'options.approvalRecheckInterval must be between 10s and 1h, got "5s"',
    ],
    [
      { approvalRecheckInterval: '2h' },
      'options.approvalRecheckInterval must be between 10s and 1h, got "2h"',
    ],
    [
      { provisioningLimit: '6h1s' },
      'options.provisioningLimit must be more than 0 and at most 6h, got "6h1s"',
    ],
    [{ joiningLimit: '1d' }, 'options.joiningLimit must be more than 0 and at most 6h, got "1d"'],
    [{ joiningLimit: 0.4 }, 'options.joiningLimit must be more than 0 and at most 6h, got 0.4'],
    [{ provisioningLimit: 0 }, 'options.provisioningLimit must be a positive duration, got 0'],
    [{ checksPerRun: 0 }, 'options.checksPerRun must be a whole number between 1 and 1000, got 0'],
    [{ checksPerRun: 1001 }, 'options.checksPerRun must be a whole number between 1 and 1000, got 1001'],
    [{ checksPerRun: '5' }, 'options.checksPerRun must be a whole number between 1 and 1000, got "5"'],
    [{ checksPerRun: 2.5 }, 'options.checksPerRun must be a whole number between 1 and 1000, got 2.5'],
  ])('refuses %j out of bounds, naming the field', (options, message) => {
    expect(() => resolveInput({ ...ref, options })).toThrow(new InvalidInputError(message));
  });

  it('holds runs started before the bounds existed to none of them', () => {
    const { options } = resolveInput({ ...ref, options: { recheckInterval: '300ms' } }, { bounded: false });
    expect(options.recheckIntervalMs).toBe(300);
  });
});

describe('resolveInput: dry run, remediation waits and approval', () => {
  const resolve = (options: Record<string, unknown>) =>
    resolveInput({ ...ref, options: options as RunbookOptions }).options;

  it('takes the NodeGroup lease policy as given, and refuses a bad one naming the field', () => {
    expect(
      resolve({ nodeGroupLease: { budget: 2, stormThreshold: 5, stormWindow: '30m' } }).nodeGroupLease,
    ).toEqual({ budget: 2, stormThreshold: 5, stormWindow: '30m' });
    expect(() => resolve({ nodeGroupLease: { budget: 0 } })).toThrow(/options\.nodeGroupLease\.budget/);
    expect(() => resolve({ nodeGroupLease: { budgett: 2 } })).toThrow(/options\.nodeGroupLease/);
    expect(() => resolve({ nodeGroupLease: 'wide' })).toThrow(
      /options\.nodeGroupLease must be an object, got "wide"/,
    );
  });

  it("takes the alert's severity as given, one of PagerDuty's", () => {
    for (const s of ['critical', 'error', 'warning', 'info'] as const)
      expect(resolve({ severity: s }).severity).toBe(s);
  });

  it('takes dryRun as given', () => {
    expect(resolve({ dryRun: true }).dryRun).toBe(true);
    expect(resolve({ dryRun: false }).dryRun).toBe(false);
  });

  it('takes each remediation wait from the options, from 10s to 6h', () => {
    expect(
      resolve({
        registrationWait: '10s',
        goneWait: '6h',
        replacementWait: 90_000,
        readyWait: '1h30m',
        leaseWait: '20m',
      }).waits,
    ).toEqual({
      registrationWaitMs: 10_000,
      goneWaitMs: 6 * 3_600_000,
      replacementWaitMs: 90_000,
      readyWaitMs: 90 * 60_000,
      leaseWaitMs: 20 * 60_000,
    });
    // one wait given, the others keep their defaults
    expect(resolve({ goneWait: '1m' }).waits).toEqual({
      ...PLAN_DEFAULTS,
      leaseWaitMs: DEFAULT_LEASE_WAIT_MS,
      goneWaitMs: 60_000,
    });
  });

  it('takes the approval options: names deduplicated, a TTL from 10s to 7 days, destructive step kinds', () => {
    expect(
      resolve({
        approvers: ['alice', 'bob', 'alice'],
        approvalTtl: '7d',
        autoApprove: ['delete-vpsienode', 'terminate-machine'],
      }).approval,
    ).toEqual({
      allowList: ['alice', 'bob'],
      ttlMs: 7 * 86_400_000,
      autoApprove: ['delete-vpsienode', 'terminate-machine'],
    });
    expect(resolve({ approvalTtl: '10s', approvers: [] }).approval).toEqual({
      allowList: [],
      ttlMs: 10_000,
      autoApprove: [],
    });
  });

  it.each([
    [{ dryRun: 'yes' }, 'options.dryRun must be true or false, got "yes"'],
    [{ severity: 'page' }, 'options.severity must be one of critical, error, warning, info, got "page"'],
    [
      { severity: 'Critical' },
      'options.severity must be one of critical, error, warning, info, got "Critical"',
    ],
    [{ dryRun: 1 }, 'options.dryRun must be true or false, got 1'],
    [{ dryRun: null }, 'options.dryRun must be true or false, got null'],
    [{ registrationWait: '9s' }, 'options.registrationWait must be between 10s and 6h, got "9s"'],
    [{ goneWait: '6h1s' }, 'options.goneWait must be between 10s and 6h, got "6h1s"'],
    [
      { replacementWait: 'soon' },
      'options.replacementWait must be a duration such as "90s" or "10m", got "soon"',
    ],
    [{ readyWait: 0 }, 'options.readyWait must be a positive duration, got 0'],
    [{ readyWait: '1s' }, 'options.readyWait must be between 10s and 6h, got "1s"'],
    [{ approvalTtl: '9s' }, 'options.approvalTtl must be between 10s and 7 days, got "9s"'],
    [{ approvalTtl: '8d' }, 'options.approvalTtl must be between 10s and 7 days, got "8d"'],
    [
      { approvalTtl: 'an hour' },
      'options.approvalTtl must be a duration such as "90s" or "10m", got "an hour"',
    ],
    [{ approvers: 'alice' }, 'options.approvers must be a list of names, got "alice"'],
    [{ approvers: [42] }, 'options.approvers[0] must be a non-empty string, got 42'],
    [{ approvers: ['alice', ''] }, 'options.approvers[1] must be a non-empty string, got ""'],
    [{ approvers: [' alice'] }, 'options.approvers[0] must not start or end with white space, got " alice"'],
    [
      { approvers: Array.from({ length: MAX_APPROVERS + 1 }, (_, i) => `user-${i}`) },
      'options.approvers must list at most 100 names, got 101',
    ],
    [
      { autoApprove: 'delete-vpsienode' },
      'options.autoApprove must be a list of step kinds, got "delete-vpsienode"',
    ],
    [
      { autoApprove: ['delete-everything'] },
      'options.autoApprove: unknown step kind(s) "delete-everything"; known: patch-nodegroup-version, delete-vpsienode, terminate-machine',
    ],
    // only destructive steps wait for approval: a wait or the escalation is not a kind to auto-approve
    [
      { autoApprove: ['wait-replacement', 'escalate'] },
      'options.autoApprove: unknown step kind(s) "wait-replacement", "escalate"; known: patch-nodegroup-version, delete-vpsienode, terminate-machine',
    ],
    [
      { approvers: [''], approvalTtl: '1s' },
      'options.approvers[0] must be a non-empty string, got ""; options.approvalTtl must be between 10s and 7 days, got "1s"',
    ],
    [{ autoapprove: ['delete-vpsienode'] }, 'options: unknown field(s) autoapprove'],
  ])('refuses %j, naming the field', (options, message) => {
    expect(() => resolve(options)).toThrow(new InvalidInputError(message));
  });

  it('validates the approval options with resolveApprovalOptions, as the plan knows the destructive kinds', () => {
    const given = { approvers: ['alice'], approvalTtl: '2h', autoApprove: ['patch-nodegroup-version'] };
    expect(resolve(given).approval).toEqual(resolveApprovalOptions(given, DESTRUCTIVE_STEP_KINDS, 'options'));
    expect(DESTRUCTIVE_STEP_KINDS).toEqual([
      'patch-nodegroup-version',
      'delete-vpsienode',
      'terminate-machine',
    ]);
    // what arrives over the wire is unchecked JSON
    const bad = { approvers: 'everyone' } as unknown as RunbookOptions;
    expect(() => resolveApprovalOptions(bad, DESTRUCTIVE_STEP_KINDS, 'options')).toThrow(
      new InvalidInputError('options.approvers must be a list of names, got "everyone"'),
    );
    expect(() => resolve(bad as Record<string, unknown>)).toThrow(
      new InvalidInputError('options.approvers must be a list of names, got "everyone"'),
    );
  });

  it('holds runs started before the bounds existed to no bound on the waits, but still to their types', () => {
    const { options } = resolveInput(
      { ...ref, options: { registrationWait: '1s', readyWait: '1d' } },
      { bounded: false },
    );
    expect(options.waits).toMatchObject({ registrationWaitMs: 1000, readyWaitMs: 86_400_000 });
    expect(() => resolveInput({ ...ref, options: { dryRun: 'no' } } as never, { bounded: false })).toThrow(
      'options.dryRun must be true or false, got "no"',
    );
  });
});

describe('resolveInput: the continuation a run hands to the next', () => {
  const continuation: RunbookContinuation = {
    startedAt: '2026-11-24T10:00:00.000Z',
    run: 2,
    checks: 3,
    stageSince: '2026-11-24T10:00:01.000Z',
    progress: {
      kind: 'in-progress',
      reason: "Provisioning for 2 min, within the controller's limit",
      deadline: '2026-11-24T10:10:00.000Z',
    },
    vpsieNode: { ...ref } as RunbookContinuation['vpsieNode'],
    nextCheckAt: '2026-11-24T10:03:00.000Z',
  };

  it('is taken as given when it is well formed', () => {
    expect(resolveInput({ ...ref, continuation }).continuation).toEqual(continuation);
  });

  it.each([
    [{ startedAt: 'yesterday' }, /continuation\.startedAt must be a timestamp/],
    [{ run: 1 }, /continuation\.run must be a whole number ≥ 2/],
    [{ checks: -1 }, /continuation\.checks must be a whole number ≥ 1/],
    [{ nextCheckAt: null }, /continuation\.nextCheckAt must be a timestamp/],
    [
      { progress: { kind: 'healthy', reason: 'phase Ready' } },
      /continuation\.progress must be an in-progress/,
    ],
    [
      { vpsieNode: { namespace: 'kube-system', name: 'another' } },
      /continuation\.vpsieNode must be a snapshot of kube-system\/ng-a-7x2k/,
    ],
    [{ extra: 1 }, /continuation: unknown field\(s\) extra/],
  ])('is refused when %j, naming the field', (change, message) => {
    expect(() => resolveInput({ ...ref, continuation: { ...continuation, ...change } })).toThrow(message);
  });

  it('is refused when it is not an object', () => {
    expect(() => resolveInput({ ...ref, continuation: 'run 2' })).toThrow('continuation must be an object');
  });
});

describe('workflowIdFor', () => {
  it('derives one id per VPSieNode', () => {
    expect(workflowIdFor(ref)).toBe('provisioning-failed/kube-system/ng-a-7x2k');
  });
});
