import { formatDuration, parseDuration } from '../../src/runbook';

describe('parseDuration', () => {
  it.each([
    [1500, 1500],
    ['250ms', 250],
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h30m', 5_400_000],
    ['2 minutes', 120_000],
    ['1.5h', 5_400_000],
    ['3000', 3000],
  ])('reads %p as %d ms', (input, ms) => {
    expect(parseDuration(input, 'x')).toBe(ms);
  });

  it.each([[0], [-5], [Number.NaN], [''], ['soon'], ['10 parsecs'], ['5m trailing'], [null], [{}]])(
    'rejects %p with a message that names the field',
    (input) => {
      expect(() => parseDuration(input, 'options.recheckInterval')).toThrow(/options\.recheckInterval/);
    },
  );
});

describe('formatDuration', () => {
  it('writes short readable durations', () => {
    expect(formatDuration(250)).toBe('250ms');
    expect(formatDuration(90_000)).toBe('1m 30s');
    expect(formatDuration(3_600_000)).toBe('1h');
    expect(formatDuration(0)).toBe('0ms');
  });
});
