import { InvalidInputError, resolveInput, workflowIdFor } from '../../src/runbook';

describe('resolveInput', () => {
  it('fills in the controller limits as production defaults', () => {
    const { ref, options } = resolveInput({ namespace: 'kube-system', name: 'ng-a-7x2k' });
    expect(ref).toEqual({ namespace: 'kube-system', name: 'ng-a-7x2k' });
    expect(options).toEqual({
      provisioningLimitMs: 600_000,
      joiningLimitMs: 900_000,
      recheckIntervalMs: 60_000,
    });
  });

  it('takes shorter waits from the options', () => {
    const { options } = resolveInput({
      namespace: 'default',
      name: 'n1',
      options: { provisioningLimit: '2s', joiningLimit: 3000, recheckInterval: '100ms' },
    });
    expect(options).toEqual({ provisioningLimitMs: 2000, joiningLimitMs: 3000, recheckIntervalMs: 100 });
  });

  it.each([
    [{ namespace: 'Kube_System', name: 'a' }, /namespace/],
    [{ namespace: 'default', name: '' }, /name must be a VPSieNode name/],
    [{ namespace: 'default' }, /name/],
    [{ name: 'a' }, /namespace/],
    [{ namespace: 'default', name: 'a', options: { recheckInterval: 'often' } }, /options\.recheckInterval/],
    [{ namespace: 'default', name: 'a', options: { retries: 3 } }, /unknown field\(s\) retries/],
    [null, /namespace/],
  ])('rejects %j', (input, message) => {
    expect(() => resolveInput(input)).toThrow(InvalidInputError);
    expect(() => resolveInput(input)).toThrow(message);
  });
});

describe('workflowIdFor', () => {
  it('derives one id per VPSieNode', () => {
    expect(workflowIdFor({ namespace: 'kube-system', name: 'ng-a-7x2k' })).toBe(
      'provisioning-failed/kube-system/ng-a-7x2k',
    );
  });
});
