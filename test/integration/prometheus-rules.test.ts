/**
 * The shipped alerting pieces, proven with the real tools: Debian's promtool checks and unit-tests
 * deploy/prometheus/vpsie-runbook-rules.yaml (with vpsie-runbook-rules.test.yaml), and must fail when a rule
 * is broken; the rules read only what deploy/prometheus/kube-state-metrics-vpsienodes.yaml exports; the real
 * kube-apiserver grants kube-state-metrics' ServiceAccount, through kube-state-metrics-rbac.yaml, what it
 * needs to export VPSieNodes; and Debian's Alertmanager runs here and accepts the example configs of
 * deploy/alertmanager.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { VPSIENODE_PHASES } from '../../src/runbook/types';
import {
  applyObject,
  controlPlaneFromEnv,
  kubeRequest,
  loadManifests,
  type KubeRequestOptions,
} from '../support/control-plane';
import { VPSIENODE_REQUIRED_SPEC } from '../support/kube';
import { findPrometheusTools } from '../support/prometheus-tools';

const REPO = path.resolve(__dirname, '..', '..');
const PROM_DIR = path.join(REPO, 'deploy', 'prometheus');
const RULES = path.join(PROM_DIR, 'vpsie-runbook-rules.yaml');
const RULES_TEST = path.join(PROM_DIR, 'vpsie-runbook-rules.test.yaml');
const KSM_CONFIG = path.join(PROM_DIR, 'kube-state-metrics-vpsienodes.yaml');
const KSM_RBAC = path.join(PROM_DIR, 'kube-state-metrics-rbac.yaml');
const ALERTMANAGER_DIR = path.join(REPO, 'deploy', 'alertmanager');
const RUNBOOK_URL =
  'https://github.com/vpsieinc/vpsie-k8s-autoscaler/blob/main/docs/runbooks/provisioning-failed.md';

const tools = findPrometheusTools();

interface Run {
  code: number | null;
  output: string;
}

/** Runs a tool to completion (bounded), with stdout and stderr together as a person would read them. */
function run(bin: string, args: string[], cwd = REPO, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Fails with the tool's own output, so a broken rule reads as promtool explains it. */
async function expectSuccess(bin: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(bin, args, cwd);
  if (r.code !== 0) {
    throw new Error(`${path.basename(bin)} ${args.join(' ')} exited with ${r.code}:\n${r.output}`);
  }
  return r.output;
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): Rule[] {
  const doc = parse(fs.readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

describe('promtool on deploy/prometheus/vpsie-runbook-rules.yaml', () => {
  test('check rules accepts both alerts', async () => {
    const out = await expectSuccess(tools.promtool, ['check', 'rules', RULES]);
    expect(out).toContain('SUCCESS: 2 rules found');
  });

  test('test rules: each alert fires with its exact labels and annotations, and stays quiet where it must', async () => {
    const out = await expectSuccess(tools.promtool, ['test', 'rules', path.basename(RULES_TEST)], PROM_DIR);
    expect(out).toContain('SUCCESS');
  });

  test('the alerts carry what the receiver and on-call read: severity, summary, description, runbook_url', () => {
    const rules = loadRules();
    expect(rules.map((r) => [r.alert, r.labels?.severity])).toEqual([
      ['VPSieNodeProvisioningFailed', 'critical'],
      ['VPSieNodeProvisioningTimeout', 'warning'],
    ]);
    for (const r of rules) {
      expect(r.annotations?.runbook_url).toBe(RUNBOOK_URL);
      expect(Object.keys(r.annotations ?? {}).sort()).toEqual(['description', 'runbook_url', 'summary']);
      // The receiver needs namespace + vpsienode; the aggregation keeps exactly those and the NodeGroup.
      expect(r.expr).toMatch(/^max by \(namespace, vpsienode, nodegroup\) \(/);
    }
  });

  // Each mutation is a plausible mistake; the unit tests must catch it (they are not a rubber stamp).
  const BROKEN: { what: string; alert: string; from: string | RegExp; to: string }[] = [
    {
      what: 'the failure alert waits longer than its for: 1m',
      alert: 'VPSieNodeProvisioningFailed',
      from: /\n(\s+)for: 1m\n/,
      to: '\n$1for: 3m\n',
    },
    {
      what: 'the failure alert matches the wrong phase',
      alert: 'VPSieNodeProvisioningFailed',
      from: '{phase="Failed"} == 1',
      to: '{phase="Terminating"} == 1',
    },
    {
      what: 'Joining gets only the provisioning limit',
      alert: 'VPSieNodeProvisioningTimeout',
      from: 'created > 1500)',
      to: 'created > 600)',
    },
    {
      what: 'a VPSieNode without a phase is forgotten',
      alert: 'VPSieNodeProvisioningTimeout',
      from: /\n\s+or\n\s+\(\n\s+\(time\(\) - kube_customresource_vpsienode_created > 600\)\n\s+unless[^)]*\)\n\s+kube_customresource_vpsienode_status_phase\n\s+\)/,
      to: '',
    },
    {
      what: 'the NodeGroup label is aggregated away',
      alert: 'VPSieNodeProvisioningTimeout',
      from: /(- alert: VPSieNodeProvisioningTimeout\n\s+expr: \|\n\s+)max by \(namespace, vpsienode, nodegroup\)/,
      to: '$1max by (namespace, vpsienode)',
    },
  ];

  test.each(BROKEN)('test rules fails when $what', async ({ alert, from, to }) => {
    const dir = fs.mkdtempSync(path.join(process.env.VPSIE_TEST_WORKDIR ?? os.tmpdir(), 'rules-'));
    try {
      const original = fs.readFileSync(RULES, 'utf8');
      const broken = original.replace(from, to);
      // The mutation changes a rule (not a comment) of the rules as they are.
      expect(JSON.stringify(parse(broken))).not.toBe(JSON.stringify(parse(original)));
      fs.writeFileSync(path.join(dir, path.basename(RULES)), broken);
      fs.copyFileSync(RULES_TEST, path.join(dir, path.basename(RULES_TEST)));
      // Still valid rules: only the unit tests can tell that they are wrong.
      await expectSuccess(tools.promtool, ['check', 'rules', path.basename(RULES)], dir);
      const r = await run(tools.promtool, ['test', 'rules', path.basename(RULES_TEST)], dir);
      expect(r.code).not.toBe(0);
      expect(r.output).toContain('FAILED');
      expect(r.output).toContain(`alertname: ${alert}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/prometheus/kube-state-metrics-vpsienodes.yaml', () => {
  interface KsmConfig {
    kind: string;
    spec: {
      resources: {
        groupVersionKind: { group: string; version: string; kind: string };
        metricNamePrefix?: string;
        resourcePlural?: string;
        labelsFromPath: Record<string, string[]>;
        metrics: {
          name: string;
          each: {
            type: string;
            stateSet?: { labelName: string; path: string[]; list: string[] };
            gauge?: { path: string[] };
          };
        }[];
      }[];
    };
  }
  const config = parse(fs.readFileSync(KSM_CONFIG, 'utf8')) as KsmConfig;
  const resource = config.spec.resources[0];

  test('exports VPSieNodes with the labels the alerts need, and the phase over every phase the autoscaler has', () => {
    expect(config.kind).toBe('CustomResourceStateMetrics');
    expect(config.spec.resources).toHaveLength(1);
    expect(resource.groupVersionKind).toEqual({
      group: 'autoscaler.vpsie.com',
      version: 'v1alpha1',
      kind: 'VPSieNode',
    });
    expect(resource.resourcePlural).toBe('vpsienodes');
    expect(resource.labelsFromPath).toEqual({
      namespace: ['metadata', 'namespace'],
      vpsienode: ['metadata', 'name'],
      nodegroup: ['spec', 'nodeGroupName'],
    });
    const phase = resource.metrics.find((m) => m.each.type === 'StateSet');
    expect(phase?.each.stateSet).toEqual({
      labelName: 'phase',
      path: ['status', 'phase'],
      list: [...VPSIENODE_PHASES],
    });
    const created = resource.metrics.find((m) => m.each.type === 'Gauge');
    expect(created?.each.gauge?.path).toEqual(['metadata', 'creationTimestamp']);
  });

  test('every series the rules and their unit tests read is one this config exports', () => {
    // kube-state-metrics names a series <metricNamePrefix>_<name>, the prefix defaulting to kube_customresource.
    const prefix = resource.metricNamePrefix ?? 'kube_customresource';
    const exported = new Set(resource.metrics.map((m) => `${prefix}_${m.name}`));
    const read = (text: string) => new Set(text.match(/\bkube_[a-z_]+\b/g) ?? []);
    const used = new Set([
      ...read(
        loadRules()
          .map((r) => r.expr)
          .join('\n'),
      ),
      ...read(fs.readFileSync(RULES_TEST, 'utf8')),
    ]);
    expect([...used].sort()).toEqual([...exported].sort());
    // The phases the rules name are phases the StateSet has.
    const phases = loadRules()
      .flatMap((r) => [...r.expr.matchAll(/phase=~?"([^"]+)"/g)].flatMap((m) => m[1].split('|')))
      .sort();
    expect(phases).toEqual(['Failed', 'Joining', 'Pending', 'Provisioned', 'Provisioning']);
  });
});

describe('deploy/prometheus/kube-state-metrics-rbac.yaml on the real kube-apiserver', () => {
  const cp = (() => {
    const found = controlPlaneFromEnv();
    if (!found) throw new Error('KUBE_TEST_SERVER is unset: run the tests through jest');
    return found;
  })();
  const admin = (method: string, urlPath: string, opts?: KubeRequestOptions) =>
    kubeRequest(cp, cp.adminToken, method, urlPath, opts);
  const ns = `ksm-rbac-${randomUUID().slice(0, 6)}`;
  const manifests = loadManifests(KSM_RBAC);
  const binding = manifests.find((o) => o.kind === 'ClusterRoleBinding') as unknown as {
    subjects: { kind: string; name: string; namespace: string }[];
  };
  const subject = binding.subjects[0];
  let saToken = '';
  const asKsm = (urlPath: string) => kubeRequest(cp, saToken, 'GET', urlPath);
  // A watch without a resourceVersion waits for the apiserver's watch cache to reach etcd's latest revision; on a
  // busy machine it can give up first and say so in a 504 "Too large resource version" event, asking to retry
  // (as client-go's reflector does). Retry on exactly that answer, a bounded number of times.
  const watchOnce = async (urlPath: string) => {
    for (let attempt = 1; ; attempt++) {
      const answer = await asKsm(urlPath);
      if (attempt === 10 || !answer.text.includes('"ResourceVersionTooLarge"')) return answer;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  };

  beforeAll(async () => {
    expect(subject.kind).toBe('ServiceAccount');
    for (const obj of manifests) await applyObject(cp, cp.adminToken, obj);
    await applyObject(cp, cp.adminToken, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: subject.name, namespace: subject.namespace },
    });
    await applyObject(cp, cp.adminToken, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const created = await admin('POST', `/apis/autoscaler.vpsie.com/v1alpha1/namespaces/${ns}/vpsienodes`, {
      body: {
        apiVersion: 'autoscaler.vpsie.com/v1alpha1',
        kind: 'VPSieNode',
        metadata: { name: 'ng-a-abcde', namespace: ns },
        spec: VPSIENODE_REQUIRED_SPEC,
      },
    });
    expect(created.status).toBe(201);
    // A real token of the ServiceAccount, as the kube-state-metrics pod would get it.
    const tr = await admin(
      'POST',
      `/api/v1/namespaces/${subject.namespace}/serviceaccounts/${subject.name}/token`,
      {
        body: {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: { expirationSeconds: 600 },
        },
      },
    );
    expect(tr.status).toBe(201);
    saToken = (tr.json as { status: { token: string } }).status.token;
    // The apiserver's RBAC authorizer learns of a new binding through its informers, a moment later: wait until
    // the grant is visible (bounded; if it never is, the first test fails with the status it got).
    const deadline = Date.now() + 30_000;
    let delay = 50;
    while (Date.now() < deadline) {
      if ((await asKsm('/apis/autoscaler.vpsie.com/v1alpha1/vpsienodes')).status !== 403) break;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 1_000);
    }
  });

  afterAll(async () => {
    await admin('DELETE', `/api/v1/namespaces/${ns}`);
    await admin('DELETE', `/api/v1/namespaces/${subject.namespace}/serviceaccounts/${subject.name}`);
    for (const obj of manifests) {
      const plural = obj.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings';
      await admin('DELETE', `/apis/rbac.authorization.k8s.io/v1/${plural}/${obj.metadata.name}`);
    }
  });

  test('kube-state-metrics may list and watch VPSieNodes in every namespace, and the CRDs', async () => {
    const list = await asKsm('/apis/autoscaler.vpsie.com/v1alpha1/vpsienodes');
    expect(list.status).toBe(200);
    const names = (list.json as { items: { metadata: { namespace: string; name: string } }[] }).items.map(
      (i) => `${i.metadata.namespace}/${i.metadata.name}`,
    );
    expect(names).toContain(`${ns}/ng-a-abcde`);
    const watch = await watchOnce('/apis/autoscaler.vpsie.com/v1alpha1/vpsienodes?watch=1&timeoutSeconds=1');
    expect(watch.status).toBe(200);
    expect(watch.text).toContain('ng-a-abcde');
    expect((await asKsm('/apis/apiextensions.k8s.io/v1/customresourcedefinitions')).status).toBe(200);
    expect(
      (await asKsm('/apis/apiextensions.k8s.io/v1/customresourcedefinitions?watch=1&timeoutSeconds=1'))
        .status,
    ).toBe(200);
  });

  test('and nothing more: no reads of single objects, NodeGroups, or writes', async () => {
    expect(
      (await asKsm(`/apis/autoscaler.vpsie.com/v1alpha1/namespaces/${ns}/vpsienodes/ng-a-abcde`)).status,
    ).toBe(403);
    expect((await asKsm('/apis/autoscaler.vpsie.com/v1alpha1/nodegroups')).status).toBe(403);
    const del = await kubeRequest(
      cp,
      saToken,
      'DELETE',
      `/apis/autoscaler.vpsie.com/v1alpha1/namespaces/${ns}/vpsienodes/ng-a-abcde`,
    );
    expect(del.status).toBe(403);
  });
});

describe('Alertmanager from Debian', () => {
  test('alertmanager and amtool run here', async () => {
    expect(await expectSuccess(tools.alertmanager, ['--version'])).toMatch(
      /^alertmanager, version \d+\.\d+\.\d+/m,
    );
    expect(await expectSuccess(tools.amtool, ['--version'])).toMatch(/^amtool, version \d+\.\d+\.\d+/m);
  });

  test('amtool check-config accepts every example config in deploy/alertmanager', async () => {
    const configs = fs
      .readdirSync(ALERTMANAGER_DIR)
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => path.join(ALERTMANAGER_DIR, f))
      // Alertmanager configs (a route, or YAML amtool must explain), not Kubernetes manifests beside them.
      .filter((f) =>
        parseAllDocuments(fs.readFileSync(f, 'utf8')).some((d) => {
          const doc: unknown = d.errors.length > 0 ? { route: 'unreadable' } : d.toJS();
          return typeof doc === 'object' && doc !== null && 'route' in doc;
        }),
      );
    expect(configs.length).toBeGreaterThan(0);
    for (const file of configs) {
      const out = await expectSuccess(tools.amtool, ['check-config', file]);
      expect(out).toContain('SUCCESS');
    }
  });
});
