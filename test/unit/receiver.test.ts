/**
 * The receiver's pure parts: the Alertmanager v4 payload's schema, what each alert means, which VPSieNodes a
 * NodeGroup alert reaches, the signal payload the runs keep, and the RECEIVER_* configuration.
 */
import { loadConfig } from '../../src/config';
import {
  DEFAULT_ALERT_NAMES,
  interpretAlert,
  sameFiring,
  selectFanOut,
  severityOf,
  type AlertIntent,
} from '../../src/receiver/alerts';
import { DEFAULT_MAX_BODY_BYTES } from '../../src/receiver/defaults';
import { parseWebhookPayload, type WebhookAlert } from '../../src/receiver/payload';
import { readResolvedAlert, type VPSieNodeSnapshot } from '../../src/runbook';

/** A notification as Alertmanager 0.27 sends it (notify/webhook), one per-VPSieNode alert. */
const notification = {
  receiver: 'vpsie-runbook',
  status: 'firing',
  alerts: [
    {
      status: 'firing',
      labels: {
        alertname: 'VPSieNodeProvisioningFailed',
        namespace: 'kube-system',
        vpsienode: 'ng-a-0a1b2c3d',
        nodegroup: 'ng-a',
        severity: 'critical',
      },
      annotations: {
        summary: 'VPSieNode kube-system/ng-a-0a1b2c3d failed to provision',
        runbook_url: 'https://example.com/runbooks/provisioning-failed',
      },
      startsAt: '2025-05-01T10:00:00.123456789Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph?g0.expr=vpsienode',
      fingerprint: '5f1d3c1e2a4b6c8d',
    },
  ],
  groupLabels: { alertname: 'VPSieNodeProvisioningFailed', vpsienode: 'ng-a-0a1b2c3d' },
  commonLabels: { alertname: 'VPSieNodeProvisioningFailed' },
  commonAnnotations: {},
  externalURL: 'http://alertmanager:9093',
  version: '4',
  groupKey: '{}:{alertname="VPSieNodeProvisioningFailed"}',
  truncatedAlerts: 0,
};

const names = new Set(DEFAULT_ALERT_NAMES);
const alert = (labels: Record<string, string>, extra: Partial<WebhookAlert> = {}): WebhookAlert => ({
  status: 'firing',
  labels,
  annotations: {},
  startsAt: '2025-05-01T10:00:00Z',
  fingerprint: 'abcdef0123456789',
  ...extra,
});

describe('the webhook payload', () => {
  it('takes what Alertmanager sends', () => {
    const r = parseWebhookPayload(notification);
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.payload.alerts[0].labels.vpsienode).toBe('ng-a-0a1b2c3d');
  });

  it.each([
    [{ ...notification, version: '3' }, 'version: Invalid input: expected "4"'],
    [{ ...notification, alerts: 'none' }, 'alerts: Invalid input: expected array'],
    [
      { ...notification, alerts: [{ ...notification.alerts[0], startsAt: undefined }] },
      'alerts[0].startsAt: Invalid input',
    ],
    [
      { ...notification, alerts: [{ ...notification.alerts[0], startsAt: 'yesterday' }] },
      'alerts[0].startsAt: Invalid ISO datetime',
    ],
    [
      { ...notification, alerts: [{ ...notification.alerts[0], labels: { alertname: 7 } }] },
      'alerts[0].labels.alertname: Invalid input: expected string',
    ],
    [
      { ...notification, alerts: [{ ...notification.alerts[0], labels: { 'app.kubernetes.io/x': 1 } }] },
      'alerts[0].labels["app.kubernetes.io/x"]',
    ],
    [
      { ...notification, alerts: [{ ...notification.alerts[0], status: 'resolved', endsAt: undefined }] },
      'alerts[0].endsAt: a resolved alert needs its end',
    ],
    [{ ...notification, alerts: [{ ...notification.alerts[0], fingerprint: '' }] }, 'alerts[0].fingerprint'],
    [null, '(body): Invalid input: expected object'],
  ])('names the field at fault (%#)', (body, problem) => {
    const r = parseWebhookPayload(body);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.join('; ')).toContain(problem);
  });
});

describe('what an alert means', () => {
  const vn = (x: AlertIntent) => {
    if (x.kind !== 'vpsienode') throw new Error(`expected vpsienode, got ${JSON.stringify(x)}`);
    return x;
  };

  it('names one VPSieNode by namespace and vpsienode, with the origin the run keeps', () => {
    const [a] = (parseWebhookPayload(notification) as { payload: { alerts: WebhookAlert[] } }).payload.alerts;
    const x = vn(interpretAlert(a, 0, names));
    expect(x.ref).toEqual({ namespace: 'kube-system', name: 'ng-a-0a1b2c3d' });
    expect(x.firing).toBe(true);
    expect(x.severity).toBe('critical');
    expect(x.origin).toEqual({
      source: 'alertmanager',
      alertName: 'VPSieNodeProvisioningFailed',
      nodeGroup: 'ng-a',
      labels: a.labels,
      annotations: a.annotations,
      fingerprint: '5f1d3c1e2a4b6c8d',
      startsAt: '2025-05-01T10:00:00.123456789Z',
    });
  });

  it('takes `name` (kube-state-metrics) when there is no vpsienode label, and prefers vpsienode', () => {
    const base = { alertname: 'VPSieNodeProvisioningTimeout', namespace: 'ns' };
    expect(vn(interpretAlert(alert({ ...base, name: 'n1' }), 0, names)).ref.name).toBe('n1');
    expect(vn(interpretAlert(alert({ ...base, name: 'n1', vpsienode: 'n2' }), 0, names)).ref.name).toBe('n2');
  });

  it('fans out an alert that names only a NodeGroup', () => {
    const x = interpretAlert(
      alert({
        alertname: 'NodeProvisioningFailed',
        namespace: 'ns',
        nodegroup: 'ng-a',
        severity: 'critical',
      }),
      0,
      names,
    );
    expect(x).toMatchObject({
      kind: 'nodegroup',
      nodeGroup: { namespace: 'ns', name: 'ng-a' },
      firing: true,
    });
  });

  it('ignores other alerts and alerts without the labels, saying why', () => {
    expect(
      interpretAlert(alert({ alertname: 'Watchdog', namespace: 'ns', vpsienode: 'n' }), 0, names),
    ).toEqual({
      kind: 'ignored',
      reason: expect.stringMatching(
        /^alert Watchdog is not one the runbook handles \(VPSieNodeProvisioningFailed, /,
      ),
    });
    expect(interpretAlert(alert({ namespace: 'ns', vpsienode: 'n' }), 0, names)).toEqual({
      kind: 'ignored',
      reason: 'no alertname label',
    });
    expect(
      interpretAlert(alert({ alertname: 'VPSieNodeProvisioningFailed', vpsienode: 'n' }), 0, names),
    ).toEqual({
      kind: 'ignored',
      reason: 'alert VPSieNodeProvisioningFailed has no namespace label',
    });
    expect(interpretAlert(alert({ alertname: 'NodeProvisioningFailed', namespace: 'ns' }), 0, names)).toEqual(
      {
        kind: 'ignored',
        reason:
          'alert NodeProvisioningFailed names no VPSieNode (label vpsienode or name) and no NodeGroup (label nodegroup)',
      },
    );
  });

  it('refuses label values that are not Kubernetes names, naming the label', () => {
    const bad = (labels: Record<string, string>) => {
      const x = interpretAlert(alert({ alertname: 'VPSieNodeProvisioningFailed', ...labels }), 3, names);
      if (x.kind !== 'invalid') throw new Error(`expected invalid, got ${x.kind}`);
      return x.problem;
    };
    expect(bad({ namespace: 'Kube_System', vpsienode: 'n' })).toBe(
      'alerts[3].labels.namespace must be a Kubernetes namespace name (DNS label), got "Kube_System"',
    );
    expect(bad({ namespace: 'ns', vpsienode: 'n/../x' })).toBe(
      'alerts[3].labels.vpsienode must be a VPSieNode name (DNS subdomain), got "n/../x"',
    );
    expect(bad({ namespace: 'ns', name: 'N' })).toMatch(/^alerts\[3\]\.labels\.name must be/);
    expect(bad({ namespace: 'ns', nodegroup: 'g'.repeat(64) })).toMatch(
      /^alerts\[3\]\.labels\.nodegroup must be/,
    );
    expect(bad({ namespace: 'n'.repeat(64), vpsienode: 'n' })).toMatch(/labels\.namespace/);
    // not ours: nothing is checked
    expect(interpretAlert(alert({ alertname: 'Other', namespace: 'Bad_NS' }), 0, names).kind).toBe('ignored');
  });

  it('passes on only the four severities the runbook knows', () => {
    expect(severityOf({ severity: 'critical' })).toBe('critical');
    expect(severityOf({ severity: 'info' })).toBe('info');
    expect(severityOf({ severity: 'page' })).toBeNull();
    expect(severityOf({ severity: 'Critical' })).toBeNull();
    expect(severityOf({})).toBeNull();
  });

  it('tells a repeat of a firing from a new firing by fingerprint and startsAt', () => {
    const id = { fingerprint: 'f1', startsAt: '2025-05-01T10:00:00.5Z' };
    expect(sameFiring({ fingerprint: 'f1', startsAt: '2025-05-01T10:00:00.5Z' }, id)).toBe(true);
    expect(sameFiring({ fingerprint: 'f1', startsAt: '2025-05-01T10:00:00.500Z' }, id)).toBe(true);
    expect(sameFiring({ fingerprint: 'f1', startsAt: '2025-05-01T11:00:00Z' }, id)).toBe(false);
    expect(sameFiring({ fingerprint: 'f2', startsAt: '2025-05-01T10:00:00.5Z' }, id)).toBe(false);
    expect(sameFiring(undefined, id)).toBe(false);
    expect(sameFiring({ source: 'cli' }, id)).toBe(false);
  });
});

describe('the VPSieNodes a NodeGroup alert reaches', () => {
  const now = Date.parse('2025-05-01T10:30:00Z');
  const node = (name: string, fields: Partial<VPSieNodeSnapshot>): VPSieNodeSnapshot =>
    ({
      namespace: 'ns',
      name,
      uid: `uid-${name}`,
      phase: 'Provisioning',
      provisioningStartedAt: '2025-05-01T10:25:00Z',
      provisionedAt: null,
      deletionTimestamp: null,
      conditions: [],
      lastError: null,
      ...fields,
    }) as VPSieNodeSnapshot;

  it('is every Failed one and every one past the controller limit, and lists the others with why not', () => {
    const fan = selectFanOut(
      [
        node('e-ready', { phase: 'Ready' }),
        node('a-failed', { phase: 'Failed' }),
        node('d-young', {}),
        node('b-late', { provisioningStartedAt: '2025-05-01T10:10:00Z' }),
        node('c-going', { phase: 'Terminating' }),
        node('f-joining', { phase: 'Joining', provisionedAt: '2025-05-01T10:20:00Z' }),
      ],
      now,
      { provisioningLimitMs: 10 * 60_000, joiningLimitMs: 15 * 60_000 },
    );
    expect(fan.targets.map((t) => [t.ref.name, t.why])).toEqual([
      ['a-failed', 'phase Failed'],
      ['b-late', "Provisioning for 20 min, past the controller's limit"],
    ]);
    expect(fan.skipped.map((t) => [t.ref.name, t.why])).toEqual([
      ['c-going', 'phase Terminating'],
      ['d-young', "Provisioning for 5 min, within the controller's limit"],
      ['e-ready', 'phase Ready'],
      ['f-joining', "Joining for 10 min, within the controller's limit"],
    ]);
  });
});

describe('the alertResolved signal', () => {
  it('is kept when it carries the alert and its end, and dropped otherwise', () => {
    const ok = {
      alertName: 'A',
      fingerprint: 'f',
      startsAt: '2025-05-01T10:00:00Z',
      endsAt: '2025-05-01T11:00:00Z',
    };
    expect(readResolvedAlert({ ...ok, extra: 1 })).toEqual(ok);
    expect(readResolvedAlert({ ...ok, endsAt: 5 })).toBeNull();
    expect(readResolvedAlert(null)).toBeNull();
    expect(readResolvedAlert('resolved')).toBeNull();
  });
});

describe('RECEIVER_* configuration', () => {
  it('defaults to 0.0.0.0:8080, no token, 1 MiB, the runbook alerts', () => {
    expect(loadConfig({}).receiver).toEqual({
      host: '0.0.0.0',
      port: 8080,
      token: null,
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      alertNames: [...DEFAULT_ALERT_NAMES],
    });
  });

  it('reads every variable, and 0 or off means no receiver', () => {
    expect(
      loadConfig({
        RECEIVER_PORT: '9000',
        RECEIVER_HOST: '127.0.0.1',
        RECEIVER_TOKEN_FILE: '/run/secrets/token',
        RECEIVER_MAX_BODY_BYTES: '65536',
        RECEIVER_ALERTNAMES: 'A, B',
      }).receiver,
    ).toEqual({
      host: '127.0.0.1',
      port: 9000,
      token: { variable: 'RECEIVER_TOKEN_FILE', file: '/run/secrets/token' },
      maxBodyBytes: 65536,
      alertNames: ['A', 'B'],
    });
    expect(loadConfig({ RECEIVER_TOKEN: 's3cret' }).receiver?.token).toEqual({
      variable: 'RECEIVER_TOKEN',
      value: 's3cret',
    });
    expect(loadConfig({ RECEIVER_PORT: 'off' }).receiver).toBeNull();
    expect(loadConfig({ RECEIVER_PORT: '0' }).receiver).toBeNull();
  });

  it('names every bad value, and never quotes the token', () => {
    let message = '';
    try {
      loadConfig({
        RECEIVER_PORT: '80000',
        RECEIVER_HOST: 'not a host',
        RECEIVER_TOKEN: 'two words',
        RECEIVER_TOKEN_FILE: '/x',
        RECEIVER_MAX_BODY_BYTES: '10',
        RECEIVER_ALERTNAMES: 'A,,B',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(
      'RECEIVER_PORT must be a TCP port (1-65535), or 0 or off for no receiver, got "80000"',
    );
    expect(message).toContain(
      'RECEIVER_HOST must be a host name or an IP address to listen on, got "not a host"',
    );
    expect(message).toContain('set only one of RECEIVER_TOKEN_FILE and RECEIVER_TOKEN');
    expect(message).toContain('RECEIVER_TOKEN must not contain spaces');
    expect(message).toContain(
      'RECEIVER_MAX_BODY_BYTES must be a number of bytes from 1024 to 67108864, got "10"',
    );
    expect(message).toContain('RECEIVER_ALERTNAMES must be alert names separated by commas, got "A,,B" ("")');
    expect(message).not.toContain('two words');
  });

  it('refuses a port another server of the process takes', () => {
    expect(() => loadConfig({ RECEIVER_PORT: '9464' })).toThrow(
      'RECEIVER_PORT and METRICS_PORT must differ, both are 9464',
    );
    expect(() => loadConfig({ RECEIVER_PORT: '8233' })).toThrow(
      'RECEIVER_PORT and TEMPORAL_DEV_UI_PORT must differ, both are 8233',
    );
    expect(loadConfig({ RECEIVER_PORT: '8233', TEMPORAL_ADDRESS: 'temporal:7233' }).receiver?.port).toBe(
      8233,
    );
  });
});
