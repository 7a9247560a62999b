/** The caps that keep gathered evidence small enough for workflow history. */
import {
  capEvents,
  capLogs,
  EVIDENCE_MAX_CONTROLLER_PODS,
  EVIDENCE_MAX_EVENT_MESSAGE,
  EVIDENCE_MAX_EVENTS,
  EVIDENCE_MAX_LOG_LINES,
} from '../../src/activities/evidence';
import type { EventSummary } from '../../src/runbook';

const event = (i: number, message = `event ${i}`): EventSummary => ({
  type: 'Warning',
  reason: 'PhaseFailed',
  message,
  count: 1,
  firstSeen: null,
  lastSeen: null,
  source: null,
  involvedObject: { kind: 'VPSieNode', name: 'vn-1', uid: 'u' },
});

test('keeps the most recent events, and cuts a long message', () => {
  const events = Array.from({ length: EVIDENCE_MAX_EVENTS + 5 }, (_v, i) => event(i));
  events.push(event(99, 'x'.repeat(EVIDENCE_MAX_EVENT_MESSAGE + 10)));
  const kept = capEvents(events);
  expect(kept).toHaveLength(EVIDENCE_MAX_EVENTS);
  expect(kept[0].message).toBe(`event 6`);
  expect(kept[kept.length - 1].message).toBe(`${'x'.repeat(EVIDENCE_MAX_EVENT_MESSAGE)}…`);
});

test("keeps the last lines naming the VPSieNode before other nodes' lines, in the log's order", () => {
  const naming = Array.from({ length: EVIDENCE_MAX_LOG_LINES + 3 }, (_v, i) => `vn-1 failed ${i}`);
  const lines = [...naming.slice(0, 10), 'vn-2 provisioning', ...naming.slice(10), 'vn-3 failed'];
  const [pod] = capLogs([{ pod: 'p', container: 'c', lines, error: null }], null, 'vn-1').pods;
  expect(pod.lines).toEqual(naming.slice(-EVIDENCE_MAX_LOG_LINES));

  const few = ['vn-2 failed a', 'vn-1 failed', 'vn-2 failed b'];
  expect(
    capLogs([{ pod: 'p', container: 'c', lines: few, error: null }], null, 'vn-1').pods[0].lines,
  ).toEqual(few);
  const many = Array.from({ length: EVIDENCE_MAX_LOG_LINES + 5 }, (_v, i) => `vn-2 failed ${i}`);
  const mixed = capLogs(
    [{ pod: 'p', container: 'c', lines: ['vn-1 failed', ...many], error: null }],
    null,
    'vn-1',
  );
  expect(mixed.pods[0].lines).toEqual(['vn-1 failed', ...many.slice(-(EVIDENCE_MAX_LOG_LINES - 1))]);
});

test('keeps at most a few controller pods and the note', () => {
  const pods = Array.from({ length: EVIDENCE_MAX_CONTROLLER_PODS + 2 }, (_v, i) => ({
    pod: `p${i}`,
    container: 'c',
    lines: [],
    error: null,
  }));
  const logs = capLogs(pods, 'a note', 'vn-1');
  expect(logs.pods.map((p) => p.pod)).toEqual(pods.slice(0, EVIDENCE_MAX_CONTROLLER_PODS).map((p) => p.pod));
  expect(logs.note).toBe('a note');
});
