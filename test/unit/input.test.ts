import {
  InvalidInputError,
  MAX_CHECKS_PER_RUN,
  MAX_CONTROLLER_LIMIT_MS,
  MIN_RECHECK_INTERVAL_MS,
  resolveInput,
  workflowIdFor,
  type RunbookContinuation,
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
      checksPerRun: 200,
    });
    expect(continuation).toBeNull();
  });

  it('takes other waits from the options, up to the bounds', () => {
    const { options } = resolveInput({
      ...ref,
      options: { provisioningLimit: '2s', joiningLimit: '6h', recheckInterval: '10s', checksPerRun: 1 },
    });
    expect(options).toEqual({
      provisioningLimitMs: 2000,
      joiningLimitMs: 6 * 3_600_000,
      recheckIntervalMs: 10_000,
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
