/**
 * Generated bad requests for the alert receiver (issue 10, "Bad input refused"), each with the answer a user must
 * get: the status, the message naming the field or the value, and the VPSieNodes it names, so that a test can
 * prove none of them got a run. Deterministic: the same seed gives the same requests.
 *
 * Every category is built from a well-formed Alertmanager notification (webhook payload version 4, as
 * Alertmanager's `notify/webhook` sends it) with one thing wrong, so the only reason for the refusal is the thing
 * the case is about: a request that would otherwise start runs must start none.
 */
import { Random } from './random';

export const INTAKE_CATEGORIES = [
  'malformed-json',
  'wrong-type',
  'missing-field',
  'bad-label-value',
  'missing-labels',
  'unknown-alert',
  'too-large',
  'token',
  'content-type',
  'method-or-path',
] as const;
export type IntakeCategory = (typeof INTAKE_CATEGORIES)[number];

/** The alerts the receiver acts on by default (src/receiver/alerts.ts DEFAULT_ALERT_NAMES). */
const ACTED_ON = ['VPSieNodeProvisioningFailed', 'VPSieNodeProvisioningTimeout', 'NodeProvisioningFailed'];

export const WEBHOOK = '/webhooks/alertmanager';

export interface IntakeCase {
  id: number;
  category: IntakeCategory;
  /** What is wrong, for a failure message. */
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Send without Content-Length (chunked), so the receiver has to count. */
  chunked?: boolean;
  expect: {
    status: number;
    /** The answer's `message`: exactly this string, or matching this pattern. */
    message: string | RegExp;
    /** For a 400 on the payload's shape: the problems must include one starting with `<field>: `. */
    field?: string;
    /** For an acknowledged notification (200): each alert is ignored, its reason containing this. */
    ignored?: string[];
    headers?: Record<string, string>;
  };
  /** `namespace/name` of every VPSieNode the request names (a run for any of them is a bug). */
  targets: string[];
}

export interface IntakeCaseContext {
  token: string;
  /** The test's Kubernetes namespace: the bad requests' VPSieNodes live there, by name only. */
  namespace: string;
  /** A DNS-label prefix unique to this test run; every VPSieNode name a case uses starts with it. */
  prefix: string;
  maxBodyBytes: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

interface Alert extends Obj {
  status: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

const AM_PAYLOAD_PREFIX = 'not an Alertmanager webhook payload (version 4): ';

export function generateIntakeCases(seed: number, count: number, ctx: IntakeCaseContext): IntakeCase[] {
  const rng = new Random(seed);
  let serial = 0;
  const nextName = () => `${ctx.prefix}-${(serial++).toString(36)}`;
  const ns = ctx.namespace;
  const goodHeaders = (): Record<string, string> => ({
    'content-type': rng.pick(['application/json', 'application/json; charset=utf-8']),
    authorization: `Bearer ${ctx.token}`,
  });

  /** A firing per-VPSieNode alert for a new name; `targets` collects it. */
  const alertFor = (targets: string[], labels?: Record<string, string>): Alert => {
    const name = nextName();
    targets.push(`${ns}/${name}`);
    const l = labels ?? {
      alertname: rng.pick(ACTED_ON.slice(0, 2)),
      namespace: ns,
      vpsienode: name,
      nodegroup: `ng-${rng.hex(4)}`,
      severity: rng.pick(['critical', 'warning', 'page']),
    };
    return {
      status: 'firing',
      labels: l,
      annotations: {
        summary: `VPSieNode ${name} failed to provision`,
        runbook_url: 'https://runbooks.example.com/vpsie/provisioning-failed',
      },
      startsAt: `2025-05-01T10:${String(rng.int(0, 59)).padStart(2, '0')}:00.123456789Z`,
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph?g0.expr=kube_customresource_vpsienode_phase',
      fingerprint: rng.hex(16),
    };
  };

  const notification = (alerts: Alert[]): Obj & { alerts: Alert[] } => ({
    receiver: 'vpsie-runbook',
    status: 'firing',
    alerts,
    groupLabels: { alertname: alerts[0]?.labels.alertname ?? '' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    version: '4',
    groupKey: `{}/{}:{alertname="${alerts[0]?.labels.alertname ?? ''}"}`,
    truncatedAlerts: 0,
  });

  /** A well-formed notification of 1 to `max` alerts (each for a new VPSieNode). */
  const good = (targets: string[], max = 3) =>
    notification(Array.from({ length: rng.int(1, max) }, () => alertFor(targets)));

  const base = (category: IntakeCategory, what: string, targets: string[]) => ({
    id: 0,
    category,
    what,
    method: 'POST',
    path: WEBHOOK,
    headers: goodHeaders(),
    targets,
  });

  const payloadRefused = (
    category: IntakeCategory,
    what: string,
    targets: string[],
    payload: unknown,
    field: string,
  ): IntakeCase => ({
    ...base(category, what, targets),
    body: JSON.stringify(payload),
    expect: { status: 400, message: new RegExp(`^${escape(AM_PAYLOAD_PREFIX)}`), field },
  });

  const make: Record<IntakeCategory, () => IntakeCase> = {
    'malformed-json': () => {
      const targets: string[] = [];
      const text = JSON.stringify(good(targets));
      const variant = rng.int(0, 6);
      const body = [
        () => text.slice(0, rng.int(1, text.length - 1)), // cut short
        () => `${text}${rng.pick(['x', ',', '}', ']', '{}', ' null'])}`, // trailing garbage
        () => `)]}'\n${text}`, // an anti-hijacking prefix
        () => text.replace(/"version"/, "'version'"), // single quotes
        () => text.replace(/"truncatedAlerts":0/, '"truncatedAlerts":NaN'),
        () => rng.pick(['', ' ', 'null,', 'undefined', '{', '[1,2', 'version=4&alerts=[]']),
        () => text.replace(/,"version"/, ',,"version"'), // a doubled comma
      ][variant]();
      if (parses(body)) throw new Error(`malformed-json case ${variant} parses: ${body.slice(0, 80)}`);
      return {
        ...base('malformed-json', `body not JSON (variant ${variant})`, targets),
        body,
        expect: { status: 400, message: /^body is not JSON: / },
      };
    },

    'wrong-type': () => {
      const targets: string[] = [];
      const p = good(targets);
      const i = rng.int(0, p.alerts.length - 1);
      const a = p.alerts[i];
      const notString: Json[] = [42, true, null, [], {}, ['a']];
      const notRecord: Json[] = ['labels', 7, false, null, ['x']];
      const fields: [string, (v: Json) => void, Json[]][] = [
        ['version', (v) => (p.version = v), ['3', 4, '', null, ['4']]],
        ['status', (v) => (p.status = v), ['pending', 'FIRING', 1, null, {}]],
        ['alerts', (v) => (p.alerts = v as never), ['alerts', 3, null, {}, true]],
        ['groupKey', (v) => (p.groupKey = v), notString],
        ['truncatedAlerts', (v) => (p.truncatedAlerts = v), [-1, 1.5, '3', null, [], true]],
        ['receiver', (v) => (p.receiver = v), notString],
        ['groupLabels', (v) => (p.groupLabels = v), notRecord],
        ['commonLabels', (v) => (p.commonLabels = v), notRecord],
        ['commonAnnotations', (v) => (p.commonAnnotations = v), notRecord],
        ['externalURL', (v) => (p.externalURL = v), notString],
        ['groupLabels.alertname', (v) => ((p.groupLabels as Obj).alertname = v), notString],
        [`alerts[${i}]`, (v) => ((p.alerts as Json[])[i] = v), ['alert', 5, null, [], true]],
        [`alerts[${i}].status`, (v) => (a.status = v as string), ['pending', 'Firing', 0, null, []]],
        [`alerts[${i}].labels`, (v) => (a.labels = v as never), notRecord],
        [`alerts[${i}].annotations`, (v) => (a.annotations = v as never), notRecord],
        [
          `alerts[${i}].startsAt`,
          (v) => (a.startsAt = v as string),
          ['yesterday', '2025-13-01T00:00:00Z', '2025-05-01 10:00:00', 1714557600, '', null],
        ],
        [
          `alerts[${i}].endsAt`,
          (v) => (a.endsAt = v as string),
          ['never', '2025-05-01T25:00:00Z', 0, null, false],
        ],
        [`alerts[${i}].generatorURL`, (v) => (a.generatorURL = v as string), notString],
        [
          `alerts[${i}].fingerprint`,
          (v) => (a.fingerprint = v as string),
          ['', 'f'.repeat(129), 42, null, ['x']],
        ],
        ...(['alertname', 'namespace', 'vpsienode', 'nodegroup'] as const).map(
          (k): [string, (v: Json) => void, Json[]] => [
            `alerts[${i}].labels.${k}`,
            (v) => ((a.labels as unknown as Obj)[k] = v),
            notString,
          ],
        ),
        [
          `alerts[${i}].annotations.summary`,
          (v) => ((a.annotations as unknown as Obj).summary = v),
          notString,
        ],
      ];
      const [field, set, values] = rng.pick(fields);
      const value = rng.pick(values);
      set(value);
      return payloadRefused('wrong-type', `${field} = ${JSON.stringify(value)}`, targets, p, field);
    },

    'missing-field': () => {
      const targets: string[] = [];
      const p = good(targets);
      const i = rng.int(0, p.alerts.length - 1);
      const a = p.alerts[i] as unknown as Obj;
      const variant = rng.int(0, 7);
      if (variant === 7) {
        // resolved, but no end: the one rule zod alone does not say
        a.status = 'resolved';
        delete a.endsAt;
        return {
          ...base('missing-field', `alerts[${i}] resolved without endsAt`, targets),
          body: JSON.stringify(p),
          expect: {
            status: 400,
            message: `${AM_PAYLOAD_PREFIX}alerts[${i}].endsAt: a resolved alert needs its end`,
          },
        };
      }
      const [obj, key, field] = (
        [
          [p, 'version', 'version'],
          [p, 'status', 'status'],
          [p, 'alerts', 'alerts'],
          [a, 'status', `alerts[${i}].status`],
          [a, 'labels', `alerts[${i}].labels`],
          [a, 'startsAt', `alerts[${i}].startsAt`],
          [a, 'fingerprint', `alerts[${i}].fingerprint`],
        ] as [Obj, string, string][]
      )[variant];
      delete obj[key];
      return payloadRefused('missing-field', `no ${field}`, targets, p, field);
    },

    'bad-label-value': () => {
      const targets: string[] = [];
      const p = good(targets, 4);
      const i = rng.int(0, p.alerts.length - 1);
      const labels = p.alerts[i].labels;
      labels.alertname = rng.pick(ACTED_ON);
      const name = labels.vpsienode;
      const long = (n: number) => `${ctx.prefix}-${'a'.repeat(n - ctx.prefix.length - 1)}`;
      const label = rng.pick(['namespace', 'vpsienode', 'name', 'nodegroup'] as const);
      let value: string;
      let what: string;
      if (label === 'namespace') {
        value = rng.pick([
          'Kube-System',
          'kube_system',
          'kube.system', // a DNS subdomain, but no DNS label
          '-kube',
          'kube-',
          'x'.repeat(64),
          'ns with space',
          'espa\u00f1a',
          '../etc',
          'kube-system\n',
        ]);
        what = 'a Kubernetes namespace name (DNS label)';
      } else if (label === 'nodegroup') {
        value = rng.pick(['NG-A', 'ng_a', 'n'.repeat(64), '-ng', 'ng a', 'ng/a', 'ng..a']);
        what = 'a NodeGroup name (DNS subdomain, at most 63 characters)';
      } else {
        value = rng.pick([
          name.toUpperCase(),
          name.replace(/-/g, '_'),
          `${name}.`,
          `.${name}`,
          `${name}-`,
          `${name}..x`,
          `${name} x`,
          `${name}/x`,
          `${name}\u00e9`,
          long(254),
          `${name}*`,
          `${name}'; drop`,
        ]);
        what = 'a VPSieNode name (DNS subdomain)';
        if (label === 'name') delete (labels as Partial<typeof labels>).vpsienode; // kube-state-metrics' label
      }
      labels[label] = value;
      return {
        ...base('bad-label-value', `alerts[${i}].labels.${label} = ${JSON.stringify(value)}`, targets),
        body: JSON.stringify(p),
        expect: {
          status: 400,
          message: `nothing done: alerts[${i}].labels.${label} must be ${what}, got ${JSON.stringify(value)}`,
        },
      };
    },

    'missing-labels': () => {
      const targets: string[] = [];
      const n = rng.int(1, 3);
      const alerts: Alert[] = [];
      const reasons: string[] = [];
      for (let k = 0; k < n; k++) {
        const a = alertFor(targets);
        const l = a.labels as Partial<Alert['labels']>;
        const variant = rng.int(0, 3);
        if (variant === 0) {
          delete l.namespace;
          reasons.push(`alert ${l.alertname} has no namespace label`);
        } else if (variant === 1) {
          l.namespace = ''; // Prometheus drops empty labels: the same as none
          reasons.push(`alert ${l.alertname} has no namespace label`);
        } else if (variant === 2) {
          delete l.vpsienode;
          delete l.nodegroup;
          reasons.push(`alert ${l.alertname} names no VPSieNode (label vpsienode or name) and no NodeGroup`);
        } else {
          delete l.alertname;
          reasons.push('no alertname label');
        }
        alerts.push(a);
      }
      return {
        ...base('missing-labels', `alerts without the labels the runbook needs`, targets),
        body: JSON.stringify(notification(alerts)),
        expect: { status: 200, message: `${n} alert${n === 1 ? '' : 's'}: ${n} ignored`, ignored: reasons },
      };
    },

    'unknown-alert': () => {
      const targets: string[] = [];
      const n = rng.int(1, 3);
      const alerts: Alert[] = [];
      const reasons: string[] = [];
      for (let k = 0; k < n; k++) {
        const a = alertFor(targets);
        a.labels.alertname = rng.pick([
          'Watchdog',
          'KubePodCrashLooping',
          'vpsienodeprovisioningfailed', // names match exactly, case included
          'VPSieNodeProvisioningFailed ', // and spaces
          'VPSieNodeProvisioningFailedX',
          'NodeProvisioning',
        ]);
        // an alert the runbook does not handle is not checked further: a bad label does not make it refused
        if (rng.int(0, 3) === 0) a.labels.vpsienode = a.labels.vpsienode.toUpperCase();
        reasons.push(`alert ${a.labels.alertname} is not one the runbook handles`);
        alerts.push(a);
      }
      return {
        ...base('unknown-alert', `alerts the runbook does not handle`, targets),
        body: JSON.stringify(notification(alerts)),
        expect: { status: 200, message: `${n} alert${n === 1 ? '' : 's'}: ${n} ignored`, ignored: reasons },
      };
    },

    'too-large': () => {
      const targets: string[] = [];
      const p = good(targets);
      const variant = rng.int(0, 2);
      if (variant === 2) {
        // many alerts, as a route without max_alerts sends them
        while (JSON.stringify(p).length <= ctx.maxBodyBytes) p.alerts.push(alertFor(targets));
      } else {
        const size = rng.int(ctx.maxBodyBytes + 1, ctx.maxBodyBytes * 3);
        p.alerts[0].annotations.description = 'x'.repeat(size);
      }
      return {
        ...base('too-large', `a body over ${ctx.maxBodyBytes} bytes (variant ${variant})`, targets),
        body: JSON.stringify(p),
        chunked: variant === 1,
        expect: {
          status: 413,
          message: `body larger than ${ctx.maxBodyBytes} bytes (RECEIVER_MAX_BODY_BYTES); lower max_alerts in Alertmanager`,
        },
      };
    },

    token: () => {
      const targets: string[] = [];
      const headers = goodHeaders();
      const t = ctx.token;
      const flip = (s: string, at: number) =>
        `${s.slice(0, at)}${s[at] === '0' ? '1' : '0'}${s.slice(at + 1)}`;
      const variant = rng.int(0, 10);
      const authorization = [
        undefined,
        '',
        `Bearer ${rng.hex(t.length)}`,
        `Bearer ${flip(t, rng.int(0, t.length - 1))}`,
        `Bearer ${t}x`,
        `Bearer ${t.slice(0, rng.int(1, t.length - 1))}`,
        `Basic ${Buffer.from(`alertmanager:${t}`).toString('base64')}`,
        'Bearer',
        `Token ${t}`,
        `Bearer ${t} ${t}`,
        `${t}`,
      ][variant];
      if (authorization === undefined) delete headers.authorization;
      else headers.authorization = authorization;
      return {
        ...base(
          'token',
          `Authorization ${authorization === undefined ? 'absent' : JSON.stringify(authorization.replace(t, '<token>'))}`,
          targets,
        ),
        headers,
        body: JSON.stringify(good(targets)),
        expect: {
          status: 401,
          message: authorization
            ? 'the bearer token is not the receiver token'
            : 'Authorization: Bearer <token> is required',
          headers: { 'www-authenticate': 'Bearer realm="vpsie-runbook"' },
        },
      };
    },

    'content-type': () => {
      const targets: string[] = [];
      const headers = goodHeaders();
      const type = rng.pick([
        undefined,
        'text/plain',
        'text/json',
        'application/x-www-form-urlencoded',
        'application/jsonl',
        'application/json-seq',
        'application/xml',
        'application/problem+json',
        'multipart/form-data; boundary=x',
        'json',
      ]);
      if (type === undefined) delete headers['content-type'];
      else headers['content-type'] = type;
      return {
        ...base('content-type', `Content-Type ${type ?? 'absent'}`, targets),
        headers,
        body: JSON.stringify(good(targets)),
        expect: {
          status: 415,
          message: `Content-Type must be application/json (Alertmanager's webhook), got ${JSON.stringify(type ?? '')}`,
        },
      };
    },

    'method-or-path': () => {
      const targets: string[] = [];
      const body = JSON.stringify(good(targets));
      const variant = rng.int(0, 2);
      if (variant === 0) {
        const method = rng.pick(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
        return {
          ...base('method-or-path', `${method} ${WEBHOOK}`, targets),
          method,
          body: method === 'GET' ? '' : body,
          expect: {
            status: 405,
            message: `${WEBHOOK} takes POST only`,
            headers: { allow: 'POST' },
          },
        };
      }
      if (variant === 1) {
        const path = rng.pick(['/healthz', '/readyz']);
        const method = rng.pick(['POST', 'PUT', 'DELETE']);
        return {
          ...base('method-or-path', `${method} ${path}`, targets),
          method,
          path,
          body,
          expect: { status: 405, message: `${path} takes GET only`, headers: { allow: 'GET, HEAD' } },
        };
      }
      const path = rng.pick([
        '/',
        '/webhook',
        '/webhooks/alertmanager/',
        '/webhooks/Alertmanager',
        '/api/v2/alerts',
        '/webhooks/alertmanager/extra',
        '/webhooks/alertmanager/../admin',
        '/webhooks%2Falertmanager',
      ]);
      const pathname = new URL(path, 'http://receiver').pathname;
      return {
        ...base('method-or-path', `POST ${path}`, targets),
        path,
        body,
        expect: {
          status: 404,
          message: `no such path ${pathname}; Alertmanager posts to ${WEBHOOK}`,
        },
      };
    },
  };

  const cases: IntakeCase[] = [];
  for (let k = 0; k < count; k++) {
    const category = INTAKE_CATEGORIES[k % INTAKE_CATEGORIES.length];
    cases.push({ ...make[category](), id: k });
  }
  return cases;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
