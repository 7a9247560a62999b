import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../../src/config';
import { alertToOutcome, runOutcomes } from '../../src/metrics';
import { approvalsPendingQuery } from '../../src/metrics/approvals';
import { alertStartOf, recordRunEnded } from '../../src/metrics/worker-sinks';

function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('METRICS_PORT and METRICS_HOST', () => {
  it('serves /metrics by default on every interface, port 9464', () => {
    expect(loadConfig({}).metrics).toEqual({ host: '0.0.0.0', port: 9464 });
    expect(loadConfig({ METRICS_PORT: '9100', METRICS_HOST: '127.0.0.1' }).metrics).toEqual({
      host: '127.0.0.1',
      port: 9100,
    });
    expect(loadConfig({ METRICS_HOST: '::' }).metrics?.host).toBe('::');
  });

  it('serves none with 0 or off', () => {
    expect(loadConfig({ METRICS_PORT: '0' }).metrics).toBeNull();
    expect(loadConfig({ METRICS_PORT: 'off' }).metrics).toBeNull();
    expect(loadConfig({ METRICS_PORT: 'OFF' }).metrics).toBeNull();
  });

  it('names a bad port or host', () => {
    for (const bad of ['http', '70000', '-1', '9464x'])
      expect(problemsOf({ METRICS_PORT: bad })).toEqual([
        `METRICS_PORT must be a TCP port (1-65535), or 0 or off to serve no metrics, got "${bad}"`,
      ]);
    expect(problemsOf({ METRICS_HOST: 'not a host' })).toEqual([
      'METRICS_HOST must be a host name or an IP address to listen on, got "not a host"',
    ]);
  });

  it("refuses the embedded dev server's ports, which only matter when it runs", () => {
    expect(problemsOf({ METRICS_PORT: '7233' })).toEqual([
      'METRICS_PORT and TEMPORAL_DEV_PORT must differ (the embedded dev server), both are 7233',
    ]);
    expect(problemsOf({ METRICS_PORT: '8000', TEMPORAL_DEV_UI_PORT: '8000' })).toEqual([
      'METRICS_PORT and TEMPORAL_DEV_UI_PORT must differ (the embedded dev server), both are 8000',
    ]);
    expect(loadConfig({ METRICS_PORT: '7233', TEMPORAL_ADDRESS: 'temporal:7233' }).metrics?.port).toBe(7233);
  });

  it('lists both for --help and the README', () => {
    expect(CONFIG_VARIABLES.filter((v) => v.name.startsWith('METRICS_'))).toEqual([
      expect.objectContaining({ name: 'METRICS_PORT', default: '9464' }),
      expect.objectContaining({ name: 'METRICS_HOST', default: '0.0.0.0' }),
    ]);
  });
});

describe('the approvals count', () => {
  it("asks visibility for the running runs of one type on the worker's task queue that wait for a person", () => {
    expect(approvalsPendingQuery('provisioningFailedRunbook', 'vpsie-runbook')).toBe(
      "WorkflowType = 'provisioningFailedRunbook' AND TaskQueue = 'vpsie-runbook' AND ExecutionStatus = 'Running' AND ApprovalPending = true",
    );
    // a task queue name may hold a quote; it stays inside its literal
    expect(approvalsPendingQuery('orphanedVmCleanup', "it's\\q")).toContain("TaskQueue = 'it\\'s\\\\q' AND");
  });
});

describe("a run's end", () => {
  type Value = { labels: Record<string, string | number | undefined>; value: number; metricName?: string };
  const sample = async (name: 'outcome' | 'histogram', labels: Record<string, string>) => {
    const metric = name === 'outcome' ? runOutcomes : alertToOutcome;
    const values = (await metric.get()).values as Value[];
    return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  };

  it("takes the alert's start from the memo the receiver wrote, else nothing", () => {
    expect(alertStartOf({ origin: { source: 'alertmanager', startsAt: '2026-01-02T03:04:05.678Z' } })).toBe(
      Date.parse('2026-01-02T03:04:05.678Z'),
    );
    expect(alertStartOf({ origin: { source: 'cli' } })).toBeNull();
    expect(alertStartOf({ origin: { startsAt: '0001-01-01T00:00:00Z' } })).toBeNull();
    expect(alertStartOf({ origin: { startsAt: 'yesterday' } })).toBeNull();
    expect(alertStartOf({ origin: { startsAt: 17 } })).toBeNull();
    expect(alertStartOf(undefined)).toBeNull();
  });

  it('counts its outcome once per run, and observes the time from the alert or else from the run start', async () => {
    const ended = {
      outcome: 'Escalated',
      cause: null,
      startedAt: '2026-01-01T00:10:00.000Z',
      finishedAt: '2026-01-01T00:20:00.000Z',
    };
    recordRunEnded({ runId: 'run-1', memo: { origin: { source: 'api' } } }, ended);
    // the same run again (a workflow task retried after the code ran): not counted twice
    recordRunEnded({ runId: 'run-1', memo: { origin: { source: 'api' } } }, ended);
    recordRunEnded(
      { runId: 'run-2', memo: { origin: { source: 'alertmanager', startsAt: '2026-01-01T00:00:00Z' } } },
      { ...ended, cause: 'Unknown' },
    );
    // an alert stamped in the future by a clock ahead of ours: no time, not a negative time
    recordRunEnded(
      { runId: 'run-3', memo: { origin: { source: 'alertmanager', startsAt: '2026-01-01T01:00:00Z' } } },
      { ...ended, outcome: 'Recovered', cause: 'Recovered' },
    );
    expect((await sample('outcome', {})).map((v) => [v.labels, v.value])).toEqual([
      [{ outcome: 'Escalated', cause: 'none' }, 1],
      [{ outcome: 'Escalated', cause: 'Unknown' }, 1],
      [{ outcome: 'Recovered', cause: 'Recovered' }, 1],
    ]);
    const sum = async (labels: Record<string, string>) =>
      (await sample('histogram', labels)).find((v) => v.metricName?.endsWith('_sum'))?.value;
    const count = async (labels: Record<string, string>) =>
      (await sample('histogram', labels)).find((v) => v.metricName?.endsWith('_count'))?.value;
    expect(await sum({ outcome: 'Escalated', since: 'run' })).toBe(600);
    expect(await count({ outcome: 'Escalated', since: 'run' })).toBe(1);
    expect(await sum({ outcome: 'Escalated', since: 'alert' })).toBe(1200);
    expect(await sum({ outcome: 'Recovered', since: 'alert' })).toBe(0);
  });
});
