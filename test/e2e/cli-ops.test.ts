/**
 * The CLI's other commands against the real stack, as a person runs them (issue 9 item 3): `cleanup-orphans`
 * (the orphaned-VM sweep on the product's worker, with the simulated VPSie), `validate-nodegroup` (the runbook's
 * prevention advice: a NodeGroup read through the real apiserver as the runbook's least-privilege identity,
 * checked against the simulated VPSie and the apiserver's version), and what every command does with bad
 * arguments, `--help`, an unreachable Temporal and the bin run directly.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OrphanSweepReport, OrphanSweepStatus } from '../../src/runbook/orphans';
import type { RunRow } from '../../src/cli/runs';
import type { NodeGroupCheck } from '../../src/cli/nodegroup-checks';
import { freePort } from '../../src/temporal/free-port';
import { uniq } from '../support/cluster/test-helpers';
import { builtCli, cliOn, explain, runCli, type CliRun } from '../support/cli';
import { controlPlaneFromEnv, kubeconfigYaml } from '../support/control-plane';
import { RunbookE2E } from '../support/runbook-e2e';
import { VPSieSimulator } from '../support/vpsie-simulator';

jest.setTimeout(180_000);

const e = new RunbookE2E('cli-ops');
let dir = '';
/** What validate-nodegroup needs: the runbook's kubeconfig and a VPSie token file. */
let files: { kubeconfig: string; token: string };
beforeAll(async () => {
  await Promise.all([e.start('cli-ops'), builtCli()]);
  dir = await mkdtemp(join(tmpdir(), 'cli-ops-'));
  const cp = controlPlaneFromEnv()!;
  files = { kubeconfig: join(dir, 'kubeconfig'), token: join(dir, 'token') };
  await writeFile(files.kubeconfig, kubeconfigYaml(cp, cp.runbookToken, { user: cp.runbookUser }));
  await writeFile(files.token, `${VPSieSimulator.DEFAULT_TOKEN}\n`);
}, 240_000);
afterAll(async () => {
  await e.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});
afterEach(() => expect(e.t.sim.errors).toEqual([]));

const cli = cliOn(e.taskQueue);

function expectExit(r: CliRun, code: number): CliRun {
  if (r.code !== code) throw new Error(`expected exit ${code}, got ${explain(r)}`);
  return r;
}

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
const hex8 = () => randomBytes(4).toString('hex');

describe('cleanup-orphans', () => {
  it('--dry-run lists the orphans; a sweep says where it waits, its approve command removes exactly that machine, and a second sweep is refused meanwhile', async () => {
    // A VPSie managed cluster of this test's own, named by an unmanaged NodeGroup (the controller leaves it alone),
    // with a worker left behind an hour ago and one made five minutes ago (inside the grace period).
    const ng = uniq('orph');
    const cluster = e.t.vpsie.addK8sCluster({ name: `${ng}-cluster` });
    await e.t.sim.createNodeGroup(
      ng,
      { resourceIdentifier: cluster.identifier },
      { managed: false, desiredNodes: null },
    );
    const groupId = e.t.vpsie.k8sCluster(cluster.identifier)!.groups.find((g) => g.name === ng)!.id;
    const worker = (age: number) =>
      e.t.vpsie.addK8sNode(cluster.identifier, {
        groupId,
        hostname: `${ng}-${hex8()}-k8s-worker`,
        createdOn: minutesAgo(age),
      });
    const old = worker(60);
    const young = worker(5);
    const exists = (identifier: string) =>
      e.t.vpsie.k8sCluster(cluster.identifier)!.nodes.some((n) => n.identifier === identifier);
    const deletes = () => e.productRequests('DELETE').length;

    const dry = expectExit(await cli('cleanup-orphans', '--dry-run'), 0);
    expect(dry.stdout).toMatch(
      /^started orphaned-vm-cleanup\/cli-\d{8}-\d{6}-[0-9a-f]{4} \(run [0-9a-f-]+\) on task queue /,
    );
    expect(dry.stdout).toMatch(/^Stage {7}completed$/m);
    expect(dry.stdout).toContain(
      `  - cluster-node ${old.hostname} (id ${old.vmId}, identifier ${old.identifier}, cluster ${cluster.identifier}`,
    );
    expect(dry.stdout).not.toContain(young.hostname);
    expect(dry.stdout).toMatch(/^Outcome {5}DryRun$/m);
    expect(dry.stderr).toContain('waiting for it to read the cluster and VPSie');
    expect(exists(old.identifier)).toBe(true);
    expect(deletes()).toBe(0);

    const started = expectExit(await cli('--output', 'json', 'cleanup-orphans', '--approver', 'alice'), 0);
    const sweep = JSON.parse(started.stdout) as {
      workflowId: string;
      runId: string;
      status: OrphanSweepStatus;
    };
    expect(sweep.status).toMatchObject({
      stage: 'awaiting-approval',
      approvers: ['alice'],
      pendingApproval: { stepId: `terminate-${old.identifier}`, kind: 'terminate-machine' },
    });
    expect(sweep.status.candidates.map((c) => c.machine.identifier)).toEqual([old.identifier]);
    // Where it waits, for a person: the text status names the step, its exact target and the command.
    const text = expectExit(await cli('status', sweep.workflowId), 0);
    const approve = `vpsie-runbook approve ${sweep.workflowId} --step terminate-${old.identifier} --as <you>`;
    expect(text.stdout).toContain(`  step        terminate-${old.identifier} (terminate-machine)`);
    expect(text.stdout).toContain(
      `"removal":"DELETE /k8s/cluster/byId/${cluster.identifier}/delete/slave {\\"identifier\\": \\"${old.identifier}\\"}"`,
    );
    expect(text.stdout).toContain(`  approve     ${approve}`);

    // The on-call's inbox lists the sweep too, once visibility has it.
    await e.t.waitFor('the sweep in list --pending-approval', async () => {
      const r = expectExit(await cli('list', '--pending-approval', '--output', 'json'), 0);
      const rows = JSON.parse(r.stdout) as RunRow[];
      return rows.some(
        (x) =>
          x.workflowId === sweep.workflowId &&
          x.type === 'orphanedVmCleanup' &&
          x.pendingApproval?.stepId === `terminate-${old.identifier}`,
      );
    });
    const again = expectExit(await cli('cleanup-orphans'), 1);
    expect(again.stderr).toContain(
      `an orphaned-VM sweep is already open on task queue ${e.taskQueue}: ${sweep.workflowId} (stage awaiting-approval`,
    );

    // The command as printed, with a name.
    const args = approve.replace('<you>', 'alice').split(' ').slice(1);
    const approved = expectExit(await cli(...args), 0);
    expect(approved.stdout).toMatch(
      new RegExp(`^approved terminate-${old.identifier} of ${sweep.workflowId} as alice at `),
    );
    const report = (await e.ctx.client.workflow.getHandle(sweep.workflowId).result()) as OrphanSweepReport;
    expect(report.outcome).toBe('Removed');
    expect(report.removed.map((r) => r.machine.identifier)).toEqual([old.identifier]);
    expect(exists(old.identifier)).toBe(false);
    expect(exists(young.identifier)).toBe(true);
    expect(e.productRequests('DELETE').map((r) => r.path)).toEqual([
      `/k8s/cluster/byId/${cluster.identifier}/delete/slave`,
    ]);
    const done = expectExit(await cli('status', sweep.workflowId), 0);
    expect(done.stdout).toMatch(/^Outcome {5}Removed$/m);
    await e.t.custom.deleteNamespacedCustomObject({ ...e.t.crd('nodegroups'), name: ng });
  });
});

describe('validate-nodegroup', () => {
  const env = () => ({
    KUBECONFIG: files.kubeconfig,
    VPSIE_API_URL: e.t.vpsie.baseUrl,
    VPSIE_TOKEN_FILE: files.token,
  });
  const validate = (ref: string, extra: Record<string, string> = {}, ...flags: string[]) =>
    runCli(['validate-nodegroup', ref, ...flags], { env: { ...env(), ...extra } });

  it('ok on every line for a NodeGroup VPSie and the cluster accept (exit 0); each wrong id and version named on its line (exit 1)', async () => {
    const good = uniq('good');
    await e.t.sim.createNodeGroup(
      good,
      { osImageID: '201', sshKeyIDs: ['301'] },
      { managed: false, desiredNodes: null },
    );
    const version = e.t.sim.clusterVersion;
    const cluster = e.t.sim.vpsieCluster;
    const ok = expectExit(await validate(`${e.t.ns}/${good}`), 0);
    expect(ok.stdout.split('\n').filter(Boolean)).toEqual([
      'ok  offering 101: offered by VPSie',
      'ok  datacenter 1: known to VPSie and available',
      'ok  image 201: known to VPSie and available',
      'ok  ssh key 301: in the VPSie account',
      `ok  cluster ${cluster}: VPSie managed cluster ${e.t.vpsie.k8sCluster(cluster)!.name}`,
      expect.stringMatching(
        new RegExp(`^ok  kubernetesVersion ${version.replace(/\./g, '\\.')}: matches the cluster \\(v`),
      ),
    ]);
    expect(ok.stderr).toContain(`NodeGroup ${e.t.ns}/${good}: 6 checks, 0 wrong, 0 not checked`);

    e.t.vpsie.addOffering({ id: 150, available: false });
    const bad = uniq('bad');
    await e.t.sim.createNodeGroup(
      bad,
      {
        offeringIDs: ['101', '999', '150'],
        datacenterID: '7',
        osImageID: '299',
        sshKeyIDs: ['301', '404'],
        resourceIdentifier: 'no-such-cluster',
        kubernetesVersion: 'v1.20.0',
      },
      { managed: false, desiredNodes: null },
    );
    const wrong = expectExit(await validate(`${e.t.ns}/${bad}`), 1);
    expect(wrong.stdout.split('\n').filter(Boolean)).toEqual([
      'ok     offering 101: offered by VPSie',
      'wrong  offering 999: VPSie has no offering 999: VM creation fails',
      'wrong  offering 150: VPSie lists offering 150 as not available: VM creation fails',
      'wrong  datacenter 7: VPSie has no datacenter 7: VM creation fails',
      'wrong  image 299: VPSie has no image 299: VM creation fails',
      'ok     ssh key 301: in the VPSie account',
      "wrong  ssh key 404: the VPSie account has no SSH key 404 (the runbook's cause 5, SSH key issues)",
      'wrong  cluster no-such-cluster: VPSie has no managed Kubernetes cluster no-such-cluster: node creation fails',
      expect.stringMatching(
        /^wrong {2}kubernetesVersion v1\.20\.0: the cluster runs v\d+\.\d+\.\d+\S*: new nodes would not join \(major\.minor differ\); set it to v\d+\.\d+\.x$/,
      ),
    ]);
    const json = expectExit(await validate(`${e.t.ns}/${bad}`, {}, '--output', 'json'), 1);
    const parsed = JSON.parse(json.stdout) as {
      ok: boolean;
      checks: NodeGroupCheck[];
      nodeGroup: { name: string };
    };
    expect(parsed).toMatchObject({ ok: false, nodeGroup: { namespace: e.t.ns, name: bad } });
    expect(parsed.checks.filter((c) => c.status === 'wrong').map((c) => c.field)).toEqual([
      'spec.offeringIDs[1]',
      'spec.offeringIDs[2]',
      'spec.datacenterID',
      'spec.osImageID',
      'spec.sshKeyIDs[1]',
      'spec.resourceIdentifier',
      'spec.kubernetesVersion',
    ]);

    const missing = expectExit(await validate(`${e.t.ns}/no-such-group`), 1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain(`NodeGroup ${e.t.ns}/no-such-group not found`);
  });

  it('what cannot be checked is said on its line (exit 4): VPSie unreachable, VPSie not configured, Kubernetes unreachable', async () => {
    const ng = uniq('unchk');
    await e.t.sim.createNodeGroup(ng, {}, { managed: false, desiredNodes: null });
    const closed = await freePort();
    const down = expectExit(
      await validate(`${e.t.ns}/${ng}`, { VPSIE_API_URL: `http://127.0.0.1:${closed}/v2` }),
      4,
    );
    const lines = down.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^unchecked {2}offering 101: could not check: VPSie\w+: /);
    expect(lines.filter((l) => l.startsWith('unchecked'))).toHaveLength(3); // offering, datacenter, cluster
    expect(lines.at(-1)).toMatch(/^ok {9}kubernetesVersion /);

    const noCreds = expectExit(
      await runCli(['validate-nodegroup', `${e.t.ns}/${ng}`], { env: { KUBECONFIG: files.kubeconfig } }),
      4,
    );
    expect(noCreds.stdout).toContain(
      'unchecked  offering 101: could not check: VPSie credentials are not configured (VPSIE_TOKEN_FILE',
    );

    const badKube = join(dir, 'kubeconfig-down');
    const cp = controlPlaneFromEnv()!;
    await writeFile(
      badKube,
      kubeconfigYaml({ ...cp, server: `https://127.0.0.1:${closed}` }, cp.runbookToken),
    );
    const noKube = expectExit(await validate(`${e.t.ns}/${ng}`, { KUBECONFIG: badKube }), 4);
    expect(noKube.stdout).toBe('');
    expect(noKube.stderr).toContain(`cannot read NodeGroup ${e.t.ns}/${ng}: `);
  });
});

describe('usage', () => {
  const COMMANDS = [
    'trigger',
    'status',
    'list',
    'approve',
    'reject',
    'cleanup-orphans',
    'validate-nodegroup',
  ];

  it('--help on the program and on every command prints its usage on stdout (exit 0); the bin runs directly', async () => {
    const [top, ...each] = await Promise.all([cli('--help'), ...COMMANDS.map((c) => cli(c, '--help'))]);
    expectExit(top, 0);
    for (const c of COMMANDS) expect(top.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(top.stdout).toContain('Exit codes:\n  0  done');
    expect(top.stdout).toContain('  3  Temporal unreachable');
    each.forEach((r, i) => {
      expectExit(r, 0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: vpsie-runbook ${COMMANDS[i]} `));
      expect(r.stderr).toBe('');
    });
    const version = JSON.parse(await readFile(join(__dirname, '..', '..', 'package.json'), 'utf8'))
      .version as string;
    const direct = expectExit(await runCli(['--version'], { direct: true }), 0);
    expect(direct.stdout).toBe(`${version}\n`);
  });

  it('bad arguments and values: exit 2 with a message naming the argument, before anything connects', async () => {
    const closed = `127.0.0.1:${await freePort()}`; // nothing listens: a refusal must come before any connection
    const cases: [string[], string][] = [
      [[], 'Usage: vpsie-runbook'],
      [['frob'], "unknown command 'frob'"],
      [['trigger'], "missing required argument 'ns/name'"],
      [['trigger', 'just-a-name'], 'argument <ns/name> must be <namespace>/<name>, got "just-a-name"'],
      [['trigger', 'ns/Not_A_Name'], 'name must be a VPSieNode name (DNS subdomain), got "Not_A_Name"'],
      [
        ['trigger', 'ns/x', '--approval-ttl', '5s'],
        '--approval-ttl must be between 10s and 7 days, got "5s"',
      ],
      [
        ['trigger', 'ns/x', '--recheck-interval', 'soon'],
        '--recheck-interval must be a duration such as "90s" or "10m", got "soon"',
      ],
      [['trigger', 'ns/x', '--auto-approve', 'reboot'], '--auto-approve'],
      [
        ['trigger', 'ns/x', '--severity', 'loud'],
        '--severity must be one of critical, error, warning, info, got "loud"',
      ],
      [
        ['trigger', 'ns/x', '--checks-per-run', '0'],
        '--checks-per-run must be a whole number from 1 to 1000, got "0"',
      ],
      [['trigger', 'ns/x', '--bogus'], "unknown option '--bogus'"],
      [['status'], "missing required argument 'ns/name|workflow-id'"],
      [
        ['status', ' ns/x'],
        'argument <ns/name|workflow-id> must be a VPSieNode as <namespace>/<name> or a workflow id',
      ],
      [['list', '--cause', 'Gremlins'], '--cause must be one of VMCreationFailed,'],
      [['list', '--outcome', 'Fine'], '--outcome must be one of Recovered,'],
      [['list', '--stage', 'later'], '--stage must be one of'],
      [['list', '--nodegroup', "x' OR 'a'='a"], '--nodegroup must be a NodeGroup name (DNS subdomain)'],
      [['list', '--limit', 'all'], '--limit must be a whole number from 1 to 1000, got "all"'],
      [['approve', 'ns/x'], "required option '--as <name>' not specified"],
      [['approve', 'ns/x', '--as', ' alice'], '--as must be your name'],
      [
        ['reject', 'ns/x', '--as', 'bob', '--reason', 'x'.repeat(1025)],
        '--reason must be at most 1024 bytes, got 1025',
      ],
      [['cleanup-orphans', '--grace', '1m'], '--grace must be between 15m and 30 days, got "1m"'],
      [['cleanup-orphans', '--mode', 'some'], '--mode must be "each" or "all", got "some"'],
      [['cleanup-orphans', '--wait', 'forever'], '--wait must be a duration'],
      [['validate-nodegroup', 'ng-only'], 'argument <ns/name> must be <namespace>/<name>, got "ng-only"'],
      [
        ['--output', 'yaml', 'list'],
        "option '-o, --output <format>' argument 'yaml' is invalid. Allowed choices are text, json.",
      ],
      [
        ['--address', 'nohost', 'list'],
        '--address must be host:port (for example temporal:7233), got "nohost"',
      ],
      [['--connect-timeout', '0s', 'list'], '--connect-timeout must be'],
    ];
    const runs = await Promise.all(
      cases.map(([args]) => runCli(args, { env: { TEMPORAL_ADDRESS: closed } })),
    );
    runs.forEach((r, i) => {
      const [args, message] = cases[i];
      if (r.code !== 2 || !r.stderr.includes(message) || r.stdout !== '')
        throw new Error(
          `vpsie-runbook ${args.join(' ')}: expected exit 2 and "${message}" on stderr, got ${explain(r)}`,
        );
    });
    // A bad environment variable is named too.
    const badEnv = expectExit(
      await runCli(['list'], { env: { TEMPORAL_NAMESPACE: 'no spaces allowed' } }),
      2,
    );
    expect(badEnv.stderr).toContain(
      'TEMPORAL_NAMESPACE must be a Temporal namespace name, got "no spaces allowed"',
    );
  });

  it('Temporal unreachable: exit 3 naming the address, from a flag or from TEMPORAL_ADDRESS; an unknown namespace: exit 1', async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    const [byFlag, byEnv] = await Promise.all([
      runCli(['--address', closed, '--connect-timeout', '1s', 'status', 'ns/x']),
      runCli(['list', '--connect-timeout', '1s'], { env: { TEMPORAL_ADDRESS: closed } }),
    ]);
    for (const r of [byFlag, byEnv]) {
      expectExit(r, 3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`cannot reach Temporal at ${closed} (namespace default)`);
    }
    const ns = expectExit(await cli('--namespace', 'no-such-namespace', 'status', 'ns/x'), 1);
    expect(ns.stderr).toContain('no-such-namespace');
  });
});
