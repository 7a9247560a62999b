import { InvalidInputError } from '../../src/runbook/input';
import {
  firstGone,
  holderGone,
  idledOut,
  initialLeaseState,
  LEASE_DEFAULTS,
  leaseStatus,
  leaseWorkflowId,
  nextWakeAt,
  receiveFailure,
  receiveRelease,
  receiveRequest,
  resolveLeasePolicy,
  settle,
  startLeaseState,
  validateLeaseRequest,
  type LeasePolicy,
  type LeaseRequest,
  type LeaseState,
} from '../../src/runbook/lease';

const T0 = Date.parse('2026-11-25T10:00:00.000Z');
const MIN = 60_000;
const HOUR = 60 * MIN;
const ng = { namespace: 'kube-system', name: 'ng-a' };
const at = (ms: number) => new Date(ms).toISOString();

/** Freezes deeply, so that a reducer that mutates its input fails the test. */
function frozen<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    Object.values(v).forEach(frozen);
    Object.freeze(v);
  }
  return v;
}

function fresh(policy: Partial<LeasePolicy> = {}): LeaseState {
  return frozen(initialLeaseState(ng, { ...LEASE_DEFAULTS, ...policy }, T0));
}

function req(id: string, extra: Partial<LeaseRequest> = {}): LeaseRequest {
  return {
    requestId: id,
    holder: {
      workflowId: `provisioning-failed/kube-system/${id}`,
      runId: `run-${id}`,
      stepId: 'delete-vpsienode',
    },
    ttlMs: HOUR,
    waitMs: HOUR,
    ...extra,
  };
}

const failure = (name: string, ms: number) => ({ vpsieNode: { namespace: 'kube-system', name }, at: at(ms) });

/** Applies each step in turn, freezing every intermediate state. */
function run(state: LeaseState, ...steps: ((s: LeaseState) => LeaseState)[]): LeaseState {
  return steps.reduce((s, step) => frozen(step(s)), state);
}

const ids = (s: LeaseState) => ({
  holders: s.holders.map((h) => h.leaseId),
  queue: s.queue.map((q) => q.requestId),
});
const notices = (s: LeaseState) =>
  s.outbox.map((o) => [o.notice.kind, 'requestId' in o.notice ? o.notice.requestId : null, o.to.workflowId]);

describe('leaseWorkflowId', () => {
  it('is one id per NodeGroup', () => {
    expect(leaseWorkflowId(ng)).toBe('nodegroup-lease/kube-system/ng-a');
  });
});

describe('resolveLeasePolicy', () => {
  it('defaults: budget 1, storm above 3 failing VPSieNodes in 15 minutes, idle after 10 minutes', () => {
    expect(resolveLeasePolicy(undefined)).toEqual({
      budget: 1,
      stormThreshold: 3,
      stormWindowMs: 15 * MIN,
      idleAfterMs: 10 * MIN,
      eventsPerRun: 2000,
    });
  });

  it('takes durations as text or milliseconds', () => {
    expect(
      resolveLeasePolicy({ budget: 2, stormThreshold: 5, stormWindow: '30m', idleAfter: 5000 }),
    ).toMatchObject({
      budget: 2,
      stormThreshold: 5,
      stormWindowMs: 30 * MIN,
      idleAfterMs: 5000,
    });
  });

  it.each([
    [{ budget: 0 }, /policy\.budget must be a whole number between 1 and 100, got 0/],
    [{ budget: 1.5 }, /policy\.budget .* got 1\.5/],
    [{ stormThreshold: '3' }, /policy\.stormThreshold must be a whole number .* got "3"/],
    [{ stormWindow: '2d' }, /policy\.stormWindow must be between 1s and 24h, got "2d"/],
    [{ idleAfter: 'soon' }, /policy\.idleAfter must be a duration/],
    [{ eventsPerRun: 5 }, /policy\.eventsPerRun must be a whole number between 20 and 10000, got 5/],
    [{ budgit: 2 }, /policy: unknown field\(s\) budgit/],
    ['one', /policy must be an object, got "one"/],
  ])('refuses %j naming the field', (input, message) => {
    expect(() => resolveLeasePolicy(input)).toThrow(InvalidInputError);
    expect(() => resolveLeasePolicy(input)).toThrow(message);
  });
});

describe('validateLeaseRequest', () => {
  it('keeps a good request as it is', () => {
    expect(validateLeaseRequest(req('a', { budget: 2 }))).toEqual(req('a', { budget: 2 }));
  });

  it.each([
    [
      { ...req('a'), ttlMs: 500 },
      /ttlMs must be milliseconds between 1000 \(1s\) and 86400000 \(24h\), got 500/,
    ],
    [{ ...req('a'), waitMs: 8 * 86_400_000 }, /waitMs must be .* got 691200000/],
    [{ ...req('a'), budget: 101 }, /budget must be a whole number between 1 and 100, got 101/],
    [{ ...req('a'), requestId: ' a' }, /requestId must be a non-empty string .* got " a"/],
    [{ ...req('a'), holder: { workflowId: 'w', runId: 'r' } }, /holder\.stepId must be a non-empty string/],
    [{ ...req('a'), holder: { ...req('a').holder, extra: 1 } }, /holder: unknown field\(s\) extra/],
    [{ ...req('a'), lease: 'all' }, /request: unknown field\(s\) lease/],
  ])('refuses %j naming the field', (input, message) => {
    expect(() => validateLeaseRequest(input)).toThrow(message);
  });
});

describe('requests and releases', () => {
  it('grants one at a time with budget 1, first come first served, and tells each holder by signal', () => {
    let s = run(
      fresh(),
      (x) => receiveRequest(x, req('a'), T0),
      (x) => receiveRequest(x, req('b'), T0 + 1),
      (x) => receiveRequest(x, req('c'), T0 + 2),
    );
    expect(ids(s)).toEqual({ holders: ['a'], queue: ['b', 'c'] });
    expect(notices(s)).toEqual([['granted', 'a', 'provisioning-failed/kube-system/a']]);
    expect(s.holders[0]).toMatchObject({ since: at(T0), expiresAt: at(T0 + HOUR), budget: 1 });
    expect(s.idleSince).toBeNull();

    s = run({ ...s, outbox: [] }, (x) => receiveRelease(x, { requestId: 'a' }, T0 + MIN));
    expect(ids(s)).toEqual({ holders: ['b'], queue: ['c'] });
    expect(notices(s)).toEqual([['granted', 'b', 'provisioning-failed/kube-system/b']]);
    expect(s.ended).toEqual([
      expect.objectContaining({ requestId: 'a', since: at(T0), endedAt: at(T0 + MIN), how: 'released' }),
    ]);
    expect(s.counters).toMatchObject({ requests: 3, grants: 2, releases: 1 });
  });

  it('lets as many hold as the request accepts, and the head of the queue waits for its own budget', () => {
    const s = run(
      fresh(),
      (x) => receiveRequest(x, req('a', { budget: 2 }), T0),
      (x) => receiveRequest(x, req('b', { budget: 2 }), T0),
      (x) => receiveRequest(x, req('c'), T0),
      (x) => receiveRequest(x, req('d', { budget: 3 }), T0),
    );
    // c accepts nobody else holding; d, behind it, waits too rather than overtaking.
    expect(ids(s)).toEqual({ holders: ['a', 'b'], queue: ['c', 'd'] });
    // Once c holds, d (which would accept 3) waits: c accepts nobody beside it.
    const after = run(
      s,
      (x) => receiveRelease(x, { requestId: 'a' }, T0 + 1),
      (x) => receiveRelease(x, { requestId: 'b' }, T0 + 2),
    );
    expect(ids(after)).toEqual({ holders: ['c'], queue: ['d'] });
  });

  it('uses the NodeGroup budget for requests that carry none', () => {
    const s = run(
      fresh({ budget: 2 }),
      (x) => receiveRequest(x, req('a'), T0),
      (x) => receiveRequest(x, req('b'), T0),
      (x) => receiveRequest(x, req('c'), T0),
    );
    expect(ids(s)).toEqual({ holders: ['a', 'b'], queue: ['c'] });
  });

  it('drops a request delivered twice, whether held, waiting or already ended', () => {
    let s = run(
      fresh(),
      (x) => receiveRequest(x, req('a'), T0),
      (x) => receiveRequest(x, req('b'), T0),
    );
    expect(receiveRequest(s, req('a'), T0 + 1)).toBe(s);
    expect(receiveRequest(s, req('b'), T0 + 1)).toBe(s);
    s = run(s, (x) => receiveRelease(x, { requestId: 'a' }, T0 + 2));
    const again = receiveRequest(s, req('a'), T0 + 3);
    expect(again).toBe(s);
    expect(s.counters.requests).toBe(2);
  });

  it('a release of a waiting request withdraws it; one that matches nothing changes nothing', () => {
    const s = run(
      fresh(),
      (x) => receiveRequest(x, req('a'), T0),
      (x) => receiveRequest(x, req('b'), T0),
    );
    const w = run(s, (x) => receiveRelease(x, { requestId: 'b' }, T0 + 5));
    expect(ids(w)).toEqual({ holders: ['a'], queue: [] });
    expect(w.ended.at(-1)).toMatchObject({ requestId: 'b', since: null, how: 'withdrawn' });
    expect(receiveRelease(s, { requestId: 'zzz' }, T0 + 5)).toBe(s);
  });

  it('records a bad payload, names the field, and changes nothing else', () => {
    const s = run(fresh(), (x) => receiveRequest(x, req('a'), T0));
    const bad = run(
      s,
      (x) => receiveRequest(x, { ...req('b'), ttlMs: 'forever' }, T0 + 1),
      (x) => receiveRelease(x, { leaseId: 'a' }, T0 + 2),
      (x) => receiveFailure(x, { vpsieNode: { namespace: 'kube-system' }, at: at(T0) }, T0 + 3),
    );
    expect(bad.refusedSignals).toEqual([
      {
        signal: 'request',
        at: at(T0 + 1),
        error: expect.stringMatching(/^ttlMs must be milliseconds .* got "forever"$/),
      },
      {
        signal: 'release',
        at: at(T0 + 2),
        error: expect.stringMatching(/requestId must be .* got nothing; release: unknown field\(s\) leaseId/),
      },
      {
        signal: 'failure',
        at: at(T0 + 3),
        error: 'vpsieNode.name must be a VPSieNode name (DNS subdomain), got nothing',
      },
    ]);
    expect({ ...bad, refusedSignals: [] }).toEqual({ ...s, refusedSignals: [] });
  });

  it('keeps only the latest refused signals', () => {
    let s = fresh();
    for (let i = 0; i < 30; i++) s = receiveRelease(s, i, T0 + i);
    expect(s.refusedSignals).toHaveLength(20);
    expect(s.refusedSignals[0].at).toBe(at(T0 + 10));
  });
});

describe('TTL and waits', () => {
  const held = run(
    fresh(),
    (x) => receiveRequest(x, req('a', { ttlMs: 5 * MIN }), T0),
    (x) => receiveRequest(x, req('b', { waitMs: 2 * HOUR }), T0 + 1),
    (x) => ({ ...x, outbox: [] }),
  );

  it('takes a lease back at its TTL, tells its holder, and grants the next', () => {
    expect(settle(held, T0 + 5 * MIN - 1)).toEqual(held);
    const s = settle(held, T0 + 5 * MIN);
    expect(ids(s)).toEqual({ holders: ['b'], queue: [] });
    expect(notices(s)).toEqual([
      ['expired', 'a', 'provisioning-failed/kube-system/a'],
      ['granted', 'b', 'provisioning-failed/kube-system/b'],
    ]);
    expect(s.ended.at(-1)).toMatchObject({ requestId: 'a', how: 'expired', endedAt: at(T0 + 5 * MIN) });
    expect(s.counters.expirations).toBe(1);
    // A late release by the crashed holder does not touch b's lease.
    expect(receiveRelease(s, { requestId: 'a' }, T0 + 6 * MIN)).toBe(s);
  });

  it('drops a request once its requester stopped waiting', () => {
    const s = run(held, (x) => receiveRequest(x, req('c', { waitMs: MIN }), T0 + 2));
    expect(ids(settle(s, T0 + 2 + MIN))).toEqual({ holders: ['a'], queue: ['b'] });
    expect(settle(s, T0 + 2 + MIN).ended.at(-1)).toMatchObject({ requestId: 'c', how: 'wait-expired' });
  });

  it('a grant that cannot be delivered goes to the next', () => {
    const s = holderGone(held, 'a', T0 + 10);
    expect(ids(s)).toEqual({ holders: ['b'], queue: [] });
    expect(s.ended.at(-1)).toMatchObject({ requestId: 'a', how: 'holder-gone' });
    expect(holderGone(held, 'b', T0 + 10)).toBe(held);
  });

  it('wakes at the earliest expiry or wait', () => {
    expect(nextWakeAt(held)).toBe(T0 + 5 * MIN);
  });
});

describe('storm', () => {
  /** a holds; b and c wait; 3 failing VPSieNodes reported. */
  const before = run(
    fresh(),
    (x) => receiveFailure(x, failure('ng-a-1', T0), T0),
    (x) => receiveRequest(x, req('a'), T0),
    (x) => receiveFailure(x, failure('ng-a-2', T0 + MIN), T0 + MIN),
    (x) => receiveRequest(x, req('b'), T0 + MIN),
    (x) => receiveFailure(x, failure('ng-a-3', T0 + 2 * MIN), T0 + 2 * MIN),
    (x) => receiveRequest(x, req('c'), T0 + 2 * MIN),
    (x) => ({ ...x, outbox: [] }),
  );

  it('is not a storm at the threshold, and the same VPSieNode reported again counts once', () => {
    const s = run(before, (x) => receiveFailure(x, failure('ng-a-2', T0 + 3 * MIN), T0 + 3 * MIN));
    expect(s.storm.active).toBe(false);
    expect(s.failures.map((f) => [f.vpsieNode.name, f.reports, f.at])).toEqual([
      ['ng-a-1', 1, at(T0)],
      ['ng-a-3', 1, at(T0 + 2 * MIN)],
      ['ng-a-2', 2, at(T0 + 3 * MIN)],
    ]);
    expect(ids(s)).toEqual({ holders: ['a'], queue: ['b', 'c'] });
  });

  it('above the threshold refuses every waiting and later request, exactly one of them `first`; holders keep theirs', () => {
    const s = run(
      before,
      (x) => receiveFailure(x, failure('ng-a-4', T0 + 3 * MIN), T0 + 3 * MIN),
      (x) => receiveRequest(x, req('d'), T0 + 4 * MIN),
    );
    expect(s.storm).toEqual({
      active: true,
      since: at(T0 + 3 * MIN),
      first: { requestId: 'b', workflowId: 'provisioning-failed/kube-system/b' },
      told: [],
      unreachable: [],
      lastEndedAt: null,
    });
    expect(ids(s)).toEqual({ holders: ['a'], queue: [] });
    const refusals = s.outbox.map((o) => o.notice);
    expect(refusals.map((n) => [n.kind, 'requestId' in n && n.requestId])).toEqual([
      ['refused', 'b'],
      ['refused', 'c'],
      ['refused', 'd'],
    ]);
    expect(refusals[0]).toEqual({
      kind: 'refused',
      requestId: 'b',
      nodeGroup: ng,
      why: 'storm',
      storm: {
        count: 4,
        threshold: 3,
        window: '15m',
        windowMs: 15 * MIN,
        since: at(T0 + 3 * MIN),
        first: true,
        vpsieNodes: ['kube-system/ng-a-1', 'kube-system/ng-a-2', 'kube-system/ng-a-3', 'kube-system/ng-a-4'],
      },
    });
    expect(refusals.filter((n) => n.kind === 'refused' && n.storm.first)).toHaveLength(1);
    expect(s.ended.map((e) => [e.requestId, e.how])).toEqual([
      ['b', 'refused-storm'],
      ['c', 'refused-storm'],
      ['d', 'refused-storm'],
    ]);
    expect(leaseStatus(s).storm).toMatchObject({ active: true, count: 4, escalated: true, window: '15m' });
    // The holder gives its lease back; nobody is granted it during the storm.
    const released = run({ ...s, outbox: [] }, (x) => receiveRelease(x, { requestId: 'a' }, T0 + 5 * MIN));
    expect(ids(released)).toEqual({ holders: [], queue: [] });
    expect(released.outbox).toEqual([]);
  });

  it('the first request after the storm began is `first` when nobody was waiting', () => {
    const s = run(
      fresh(),
      ...[1, 2, 3, 4].map((i) => (x: LeaseState) => receiveFailure(x, failure(`ng-a-${i}`, T0), T0)),
      (x) => receiveRequest(x, req('late'), T0 + 1),
      (x) => receiveRequest(x, req('later'), T0 + 2),
    );
    expect(s.outbox.map((o) => o.notice.kind === 'refused' && o.notice.storm.first)).toEqual([true, false]);
  });

  it('ends when failures age out of the window; grants resume; a new storm has a new `first`', () => {
    const storm = run(
      before,
      (x) => receiveFailure(x, failure('ng-a-4', T0 + 3 * MIN), T0 + 3 * MIN),
      (x) => receiveRelease(x, { requestId: 'a' }, T0 + 4 * MIN),
      (x) => ({ ...x, outbox: [] }),
    );
    // ng-a-1 (reported at T0) leaves the window at T0 + 15m: 3 left, not above the threshold.
    expect(nextWakeAt(storm)).toBe(T0 + 15 * MIN);
    expect(settle(storm, T0 + 15 * MIN - 1).storm.active).toBe(true);
    const calm = run(storm, (x) => settle(x, T0 + 15 * MIN));
    expect(calm.storm).toEqual({
      active: false,
      since: null,
      first: null,
      told: [],
      unreachable: [],
      lastEndedAt: at(T0 + 15 * MIN),
    });
    expect(calm.failures).toHaveLength(3);
    const granted = run(calm, (x) => receiveRequest(x, req('e'), T0 + 15 * MIN + 1));
    expect(notices(granted)).toEqual([['granted', 'e', 'provisioning-failed/kube-system/e']]);
    const again = run(
      { ...granted, outbox: [] },
      (x) => receiveFailure(x, failure('ng-a-5', T0 + 15 * MIN + 2), T0 + 15 * MIN + 2),
      (x) => receiveRequest(x, req('f'), T0 + 15 * MIN + 2),
    );
    expect(again.storm).toMatchObject({
      active: true,
      since: at(T0 + 15 * MIN + 2),
      first: { requestId: 'f' },
    });
  });

  describe('told to the runs that reported', () => {
    const wf = (n: string) => `provisioning-failed/kube-system/${n}`;
    /** A run's report as the runbook sends it: with its workflow and run ids, and a report id to answer. */
    const report = (n: string, ms: number) => ({
      ...failure(n, ms),
      workflowId: wf(n),
      runId: `run-${n}`,
      reportId: `report-${n}`,
    });
    const reported = run(
      fresh(),
      ...[1, 2, 3].map((i) => (x: LeaseState) => receiveFailure(x, report(`n${i}`, T0 + i), T0 + i)),
    );
    const stormNotices = (s: LeaseState) =>
      s.outbox.flatMap((o) =>
        o.notice.kind === 'storm' ? [[o.to.workflowId, o.to.runId, o.notice.storm.first]] : [],
      );

    it('answers each report: no storm yet', () => {
      expect(
        reported.outbox.map((o) => [o.to, o.notice.kind, 'storm' in o.notice && o.notice.storm]),
      ).toEqual([1, 2, 3].map((i) => [{ workflowId: wf(`n${i}`), runId: `run-n${i}` }, 'counted', null]));
      expect(reported.storm.active).toBe(false);
    });

    it('the report that begins the storm makes its run `first`; every reporter is told once, exactly one `first`', () => {
      const s = run({ ...reported, outbox: [] }, (x) => receiveFailure(x, report('n4', T0 + 10), T0 + 10));
      expect(s.storm.first).toEqual({ requestId: null, workflowId: wf('n4') });
      expect(stormNotices(s)).toEqual([
        [wf('n1'), 'run-n1', false],
        [wf('n2'), 'run-n2', false],
        [wf('n3'), 'run-n3', false],
        [wf('n4'), 'run-n4', true],
      ]);
      const counted = s.outbox.at(-1)!;
      expect(counted.to).toEqual({ workflowId: wf('n4'), runId: 'run-n4' });
      expect(counted.notice).toMatchObject({
        kind: 'counted',
        requestId: 'report-n4',
        storm: { count: 4, first: true },
      });

      // a report during the storm: told (not first) and answered; a repeated report tells nobody again
      const later = run(
        { ...s, outbox: [] },
        (x) => receiveFailure(x, report('n5', T0 + 20), T0 + 20),
        (x) => receiveFailure(x, report('n1', T0 + 30), T0 + 30),
      );
      expect(stormNotices(later)).toEqual([[wf('n5'), 'run-n5', false]]);
      expect(
        later.outbox.flatMap((o) =>
          o.notice.kind === 'counted' ? [[o.notice.requestId, o.notice.storm?.first]] : [],
        ),
      ).toEqual([
        ['report-n5', false],
        ['report-n1', false],
      ]);
      // a request refused in the storm agrees on who is first
      const refused = run({ ...later, outbox: [] }, (x) => receiveRequest(x, req('n4'), T0 + 40));
      expect(refused.outbox.map((o) => o.notice.kind === 'refused' && o.notice.storm.first)).toEqual([true]);
    });

    it('a first that cannot be told (its run ended) passes to another run, told again; never back to it', () => {
      const s = run(
        { ...reported, outbox: [] },
        // reported without an answer address: the storm's first falls to the oldest reporter
        (x) => receiveFailure(x, failure('n4', T0 + 10), T0 + 10),
      );
      expect(s.storm.first).toEqual({ requestId: null, workflowId: wf('n1') });
      const gone = run({ ...s, outbox: [] }, (x) => firstGone(x, wf('n1'), T0 + 11));
      expect(gone.storm.first).toEqual({ requestId: null, workflowId: wf('n2') });
      expect(gone.storm.unreachable).toEqual([wf('n1')]);
      expect(stormNotices(gone)).toEqual([[wf('n2'), 'run-n2', true]]);
      // someone else's run ending changes nothing
      expect(firstGone(gone, wf('n3'), T0 + 12)).toBe(gone);
      const allGone = run(
        { ...gone, outbox: [] },
        (x) => firstGone(x, wf('n2'), T0 + 12),
        (x) => firstGone(x, wf('n3'), T0 + 13),
      );
      expect(allGone.storm.first).toBeNull();
      // the next requester is first
      const asked = run({ ...allGone, outbox: [] }, (x) => receiveRequest(x, req('z'), T0 + 14));
      expect(asked.storm.first).toEqual({ requestId: 'z', workflowId: wf('z') });
    });

    it('refuses an answer address without the workflow it goes to', () => {
      const s = run(fresh(), (x) =>
        receiveFailure(x, { ...failure('n1', T0), runId: 'r', reportId: 'p' }, T0),
      );
      expect(s.failures).toEqual([]);
      expect(s.refusedSignals.map((r) => r.error)).toEqual([
        'workflowId is required with runId or reportId (the answer goes to that run)',
      ]);
    });
  });

  it('counts a report from the future as now, and ignores one older than the window', () => {
    const s = run(
      fresh(),
      (x) => receiveFailure(x, failure('ng-a-1', T0 + HOUR), T0),
      (x) => receiveFailure(x, failure('ng-a-2', T0 - 20 * MIN), T0),
    );
    expect(s.failures.map((f) => [f.vpsieNode.name, f.at])).toEqual([['ng-a-1', at(T0)]]);
    expect(s.counters.failureReports).toBe(2);
  });

  it('counts a same-named replacement (another uid) as another failing VPSieNode', () => {
    const s = run(
      fresh(),
      (x) =>
        receiveFailure(x, { vpsieNode: { namespace: 'kube-system', name: 'n', uid: 'u1' }, at: at(T0) }, T0),
      (x) =>
        receiveFailure(x, { vpsieNode: { namespace: 'kube-system', name: 'n', uid: 'u2' }, at: at(T0) }, T0),
    );
    expect(s.failures).toHaveLength(2);
  });
});

describe('idling out', () => {
  it('is idle only with nothing held, queued or counted, for the idle time', () => {
    const s0 = fresh({ idleAfterMs: 5 * MIN });
    expect(nextWakeAt(s0)).toBe(T0 + 5 * MIN);
    expect(idledOut(s0, T0 + 5 * MIN - 1)).toBe(false);
    expect(idledOut(s0, T0 + 5 * MIN)).toBe(true);

    const held = run(s0, (x) => receiveRequest(x, req('a'), T0 + MIN));
    expect(held.idleSince).toBeNull();
    const released = run({ ...held, outbox: [] }, (x) => receiveRelease(x, { requestId: 'a' }, T0 + 2 * MIN));
    expect(released.idleSince).toBe(at(T0 + 2 * MIN));
    expect(leaseStatus(released).idleUntil).toBe(at(T0 + 7 * MIN));

    // A failure in the window keeps the lease open until it ages out: the storm count must not be forgotten.
    const counted = run(released, (x) => receiveFailure(x, failure('ng-a-1', T0 + 3 * MIN), T0 + 3 * MIN));
    expect(counted.idleSince).toBeNull();
    expect(nextWakeAt(counted)).toBe(T0 + 18 * MIN);
    const aged = settle(counted, T0 + 18 * MIN);
    expect(aged.failures).toEqual([]);
    expect(aged.idleSince).toBe(at(T0 + 18 * MIN));
  });

  it('is not idle while notices are still to be sent', () => {
    const s = {
      ...fresh({ idleAfterMs: 1000 }),
      outbox: [{ to: { workflowId: 'w', runId: 'r' }, notice: {} }],
    };
    expect(idledOut(s as LeaseState, T0 + HOUR)).toBe(false);
  });
});

describe('startLeaseState', () => {
  it('starts fresh from the input', () => {
    const s = startLeaseState({ nodeGroup: ng, policy: { budget: 2 } }, T0);
    expect(s).toMatchObject({ nodeGroup: ng, run: 1, startedAt: at(T0), policy: { budget: 2 }, holders: [] });
  });

  it('carries holders, queue, failures, storm and counters into the next run, and counts the run', () => {
    const carried = run(
      fresh({ stormThreshold: 1 }),
      (x) => receiveRequest(x, req('a'), T0),
      (x) => receiveRequest(x, req('b'), T0),
      (x) => receiveFailure(x, failure('ng-a-1', T0), T0),
      (x) => ({ ...x, outbox: [] }),
    );
    const next = startLeaseState(JSON.parse(JSON.stringify({ nodeGroup: ng, carried })), T0 + MIN);
    expect(next).toEqual({ ...carried, run: 2 });
    expect(leaseStatus(next)).toMatchObject({ run: 2, startedAt: at(T0) });
  });

  it.each([
    [
      { nodeGroup: { namespace: 'kube-system', name: 'Ng_A' } },
      /nodeGroup\.name must be a NodeGroup name \(DNS subdomain\), got "Ng_A"/,
    ],
    [
      { nodeGroup: ng, carried: { ...initialLeaseState({ ...ng, name: 'ng-b' }, LEASE_DEFAULTS, T0) } },
      /carried\.nodeGroup kube-system\/ng-b is not kube-system\/ng-a/,
    ],
    [
      { nodeGroup: ng, carried: { ...initialLeaseState(ng, LEASE_DEFAULTS, T0), holders: 'a' } },
      /carried\.holders must be a list, got "a"/,
    ],
    [
      {
        nodeGroup: ng,
        carried: { ...initialLeaseState(ng, LEASE_DEFAULTS, T0), policy: { ...LEASE_DEFAULTS, budget: 0 } },
      },
      /carried\.policy\.budget must be a whole number/,
    ],
    [{ nodeGroup: ng, owner: 'me' }, /input: unknown field\(s\) owner/],
  ])('refuses bad input %#, naming the field', (input, message) => {
    expect(() => startLeaseState(input, T0)).toThrow(message);
  });
});
