/**
 * The receiver's storm defences, without I/O: the record of answered firings (its bounds by entries and age, and
 * which firings count as the same) and the bound on Temporal work in flight (its line, and when it refuses).
 */
import {
  DEFAULT_HANDLED_MAX_AGE_MS,
  DEFAULT_HANDLED_MAX_ENTRIES,
  firingKey,
  HandledFirings,
} from '../../src/receiver/handled';
import { Limiter, LimiterFullError } from '../../src/receiver/limiter';

describe('the record of answered firings', () => {
  const wf = 'provisioning-failed/kube-system/ng-a-1';

  it('names one firing: the same fingerprint and the same instant, however startsAt is written', () => {
    const key = firingKey(wf, 'abc', '2025-05-01T10:00:00Z');
    expect(firingKey(wf, 'abc', '2025-05-01T12:00:00+02:00')).toBe(key);
    expect(firingKey(wf, 'abc', '2025-05-01T10:00:00.000000000Z')).toBe(key);
    // a new firing (a new startsAt), another alert, another VPSieNode: other keys
    expect(firingKey(wf, 'abc', '2025-05-01T10:05:00Z')).not.toBe(key);
    expect(firingKey(wf, 'abd', '2025-05-01T10:00:00Z')).not.toBe(key);
    expect(firingKey(`${wf}0`, 'abc', '2025-05-01T10:00:00Z')).not.toBe(key);
  });

  it('answers a recorded firing until its answer is older than the age bound', () => {
    let now = 1_000_000;
    const r = new HandledFirings<string>({ maxAgeMs: 60_000, now: () => now });
    r.set('a', 'run-1');
    now += 60_000;
    expect(r.get('a')).toEqual({ value: 'run-1', at: 1_000_000 });
    now += 1;
    expect(r.get('a')).toBeUndefined();
    expect(r.size).toBe(0);
  });

  it('keeps at most maxEntries, dropping the oldest answers first', () => {
    let now = 0;
    const r = new HandledFirings<number>({ maxEntries: 3, now: () => now });
    for (const [i, k] of ['a', 'b', 'c'].entries()) {
      now = i;
      r.set(k, i);
    }
    now = 10;
    r.set('a', 10); // answered again: now the newest
    r.set('d', 11);
    expect(r.size).toBe(3);
    expect(['a', 'b', 'c', 'd'].map((k) => r.get(k)?.value)).toEqual([10, undefined, 2, 11]);
  });

  it('drops expired answers as new ones come, so an idle record does not stay full', () => {
    let now = 0;
    const r = new HandledFirings<number>({ maxAgeMs: 100, now: () => now });
    for (let i = 0; i < 50; i++) r.set(`k${i}`, i);
    now = 500;
    r.set('new', 1);
    expect(r.size).toBe(1);
  });

  it('keeps nothing with maxEntries 0, and refuses bounds below 0', () => {
    const r = new HandledFirings<number>({ maxEntries: 0 });
    r.set('a', 1);
    expect(r.get('a')).toBeUndefined();
    expect(() => new HandledFirings({ maxAgeMs: -1 })).toThrow(/≥ 0/);
  });

  it('holds a whole storm by default: 10,000 firings for 10 minutes', () => {
    expect([DEFAULT_HANDLED_MAX_ENTRIES, DEFAULT_HANDLED_MAX_AGE_MS]).toEqual([10_000, 600_000]);
  });
});

describe('the bound on Temporal work in flight', () => {
  /** A piece of work that finishes when the test says so. */
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  };

  it('runs at most maxInFlight at once, the others in the order they came', async () => {
    const l = new Limiter({ maxInFlight: 2, maxWaiting: 10, maxWaitMs: 60_000 });
    const gates = [gate(), gate(), gate(), gate()];
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      l.run(async () => {
        started.push(i);
        await g.opened;
        return i;
      }),
    );
    await Promise.resolve();
    expect(started).toEqual([0, 1]);
    expect(l.load).toEqual({ inFlight: 2, waiting: 2 });
    gates[1].open();
    await runs[1];
    expect(started).toEqual([0, 1, 2]);
    gates[0].open();
    gates[2].open();
    gates[3].open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(l.load).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('passes the place on when a piece of work fails', async () => {
    const l = new Limiter({ maxInFlight: 1 });
    await expect(l.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await l.run(async () => 'next')).toBe('next');
    expect(l.load).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('refuses at once when the line is full', async () => {
    const l = new Limiter({ maxInFlight: 1, maxWaiting: 1 });
    const g = gate();
    const first = l.run(() => g.opened);
    const second = l.run(async () => 'second');
    await expect(l.run(async () => 'third')).rejects.toThrow(
      new LimiterFullError('overloaded: 1 of 1 Temporal decisions in flight and 1 waiting'),
    );
    g.open();
    await first;
    expect(await second).toBe('second');
  });

  it('refuses one that waited longer than maxWaitMs, and forgets it', async () => {
    jest.useFakeTimers();
    try {
      const l = new Limiter({ maxInFlight: 1, maxWaiting: 5, maxWaitMs: 5_000 });
      const g = gate();
      const first = l.run(() => g.opened);
      const waiting = l.run(async () => 'never');
      const caught = waiting.catch((err: Error) => err);
      jest.advanceTimersByTime(5_000);
      expect(await caught).toEqual(
        new LimiterFullError('overloaded: no place among 1 Temporal decisions in flight within 5000 ms'),
      );
      expect(l.load).toEqual({ inFlight: 1, waiting: 0 });
      g.open();
      await first;
      expect(l.load).toEqual({ inFlight: 0, waiting: 0 });
    } finally {
      jest.useRealTimers();
    }
  });
});
