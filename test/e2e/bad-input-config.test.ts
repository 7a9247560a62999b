/**
 * Issue 10, "Bad input refused": bad configuration and bad arguments given to the real entry points, run as
 * processes the way people run them: the worker (`npm start`: dist/main.js), the receiver (`npm run receiver`:
 * dist/receiver/main.js) and the CLI (dist/cli/main.js), from the build test/support/cli.ts makes once per Jest
 * run (swc, the layout of `npm run build`).
 *
 * Each case must exit 2 with a message naming the variable or the argument (and the value, unless it is a
 * secret, which must not be printed), and start nothing: every process is pointed at a "sentinel", a TCP
 * listener standing in for Temporal, the Kubernetes API and VPSie, which must see no connection at all; the
 * worker must not have started its embedded dev server, the receiver must not listen. Controls show that the
 * same environment without the bad value does start (and connects to the sentinel), so each refusal is the
 * bad value's.
 *
 * test/unit/config.test.ts covers loadConfig's every rule; test/e2e/cli-ops.test.ts the CLI's usual usage
 * errors. This file is the process-level table: what a person who mistypes a variable or a flag sees.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { freePort } from '../../src/temporal/free-port';
import { pool } from '../support/bad-input/http';
import { builtCli } from '../support/cli';

jest.setTimeout(180_000);

type Entry = 'worker' | 'receiver' | 'cli';
const ENTRY_FILE: Record<Entry, string> = {
  worker: 'main.js',
  receiver: join('receiver', 'main.js'),
  cli: join('cli', 'main.js'),
};
/** A secret the process must not print back, whatever it says about it. */
const SECRET = 'S3cr3t-do-not-print';

let dist = '';
let dir = '';
let sentinel: net.Server;
let sentinelPort = 0;
/** The receiver's port in the base environment: free, and never taken, since no bad case gets to listen. */
let receiverPort = 0;
const connections: string[] = [];
const files = { token: '', empty: '', notPem: '', kubeconfig: '' };

beforeAll(async () => {
  dist = dirname(dirname(await builtCli()));
  dir = await mkdtemp(join(tmpdir(), 'bad-config-'));
  sentinel = net.createServer((socket) => {
    connections.push(`${socket.remoteAddress}:${socket.remotePort}`);
    socket.destroy();
  });
  await new Promise<void>((resolve) => sentinel.listen(0, '127.0.0.1', resolve));
  sentinelPort = (sentinel.address() as net.AddressInfo).port;
  receiverPort = await freePort();
  files.token = join(dir, 'token');
  files.empty = join(dir, 'empty');
  files.notPem = join(dir, 'not-a-pem');
  files.kubeconfig = join(dir, 'kubeconfig');
  await writeFile(files.token, 'a-token\n');
  await writeFile(files.empty, '\n');
  await writeFile(files.notPem, 'this is no certificate\n');
  await writeFile(
    files.kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'sentinel',
          cluster: { server: `https://127.0.0.1:${sentinelPort}`, 'insecure-skip-tls-verify': true },
        },
      ],
      users: [{ name: 'u', user: { token: 'kube-token' } }],
      contexts: [{ name: 'sentinel', context: { cluster: 'sentinel', user: 'u' } }],
      'current-context': 'sentinel',
    }),
  );
}, 180_000);

afterAll(async () => {
  await new Promise((resolve) => sentinel?.close(resolve));
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Everything a process needs to start, pointed at the sentinel: the bad cases change one thing of it. */
function baseEnv(entry: Entry): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: `127.0.0.1:${sentinelPort}`,
    KUBECONFIG: files.kubeconfig,
    VPSIE_API_URL: `http://127.0.0.1:${sentinelPort}/v2`,
    VPSIE_TOKEN_FILE: files.token,
    METRICS_PORT: 'off',
    RECEIVER_PORT: entry === 'receiver' ? String(receiverPort) : 'off',
  };
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What the process left in its working directory (the worker's embedded dev server would leave its db). */
  left: string[];
}

async function run(entry: Entry, env: Record<string, string>, args: string[] = []): Promise<Ran> {
  const cwd = await mkdtemp(join(dir, 'cwd-'));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(dist, ENTRY_FILE[entry]), ...args],
      { env, cwd, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        void readdir(cwd, { recursive: true })
          .catch(() => [] as string[])
          .then((left) => resolve({ code, stdout, stderr, left }));
      },
    );
  });
}

/** One bad value (or a few that go together), and the words the message must hold for it. */
interface Bad {
  env: Record<string, string | null>;
  says: string[];
  /** Words that must not appear (a secret). */
  never?: string[];
}

/**
 * One process: where, the bad values it gets, or bad arguments. The configuration is checked whole and every
 * problem named at once, so independent bad values share a process (each must be named); the files a variable
 * names are read only once the rest is valid, so they go in processes of their own; arguments are refused before
 * the configuration is read, one at a time.
 */
interface Run {
  entry: Entry;
  bad: Bad[];
  args?: string[];
}

const nope = (name: string) => `/nonexistent/${name}`;

const b = (env: Record<string, string | null>, ...says: string[]): Bad => ({ env, says });
const secret = (x: Bad): Bad => ({ ...x, never: [SECRET] });
const unset = null;

/** Built lazily: the files' paths are known once beforeAll ran. */
function runs(): Run[] {
  const worker = (...bad: Bad[]): Run => ({ entry: 'worker', bad });
  const receiver = (...bad: Bad[]): Run => ({ entry: 'receiver', bad });
  const cli = (args: string[], ...says: string[]): Run => ({ entry: 'cli', args, bad: [b({}, ...says)] });
  const withReceiver = { RECEIVER_PORT: '8080' };
  return [
    // --- the worker (npm start): every variable it reads
    worker(
      b(
        { TEMPORAL_ADDRESS: 'nohost' },
        'TEMPORAL_ADDRESS must be host:port (for example temporal:7233), got "nohost"',
      ),
      b(
        { TEMPORAL_NAMESPACE: 'has space' },
        'TEMPORAL_NAMESPACE must be a Temporal namespace name, got "has space"',
      ),
      b(
        { TEMPORAL_TASK_QUEUE: 'a queue' },
        'TEMPORAL_TASK_QUEUE must be a task queue name without spaces, got "a queue"',
      ),
      b({ TEMPORAL_DEV_PORT: '70000' }, 'TEMPORAL_DEV_PORT must be a TCP port (1-65535), got "70000"'),
      b({ TEMPORAL_DEV_UI_PORT: 'ui' }, 'TEMPORAL_DEV_UI_PORT must be a TCP port (1-65535), got "ui"'),
      b({ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL must be one of debug, info, warn, error, got "verbose"'),
      b(
        { VPSIE_API_URL: 'ftp://api.vpsie.com/v2' },
        'VPSIE_API_URL must be an http(s) URL, got "ftp://api.vpsie.com/v2"',
      ),
      b(
        { CONTROLLER_NAMESPACE: 'Kube_System' },
        'CONTROLLER_NAMESPACE must be a namespace name, got "Kube_System"',
      ),
      b(
        { CONTROLLER_LABEL_SELECTOR: 'app in (' },
        'CONTROLLER_LABEL_SELECTOR must be a label selector such as app=vpsie-autoscaler, got "app in ("',
      ),
      b(
        { CONTROLLER_CONTAINER: 'Controller!' },
        'CONTROLLER_CONTAINER must be a container name, got "Controller!"',
      ),
      b({ ORPHAN_SWEEP_INTERVAL: '1m' }, 'ORPHAN_SWEEP_INTERVAL must be between 5m and 30 days, got "1m"'),
      b(
        { METRICS_PORT: '99999' },
        'METRICS_PORT must be a TCP port (1-65535), or 0 or off to serve no metrics, got "99999"',
      ),
      b(
        { METRICS_HOST: 'bad host!' },
        'METRICS_HOST must be a host name or an IP address to listen on, got "bad host!"',
      ),
      b(
        { ESCALATION_ROUTES: 'nonsense' },
        'ESCALATION_ROUTES: "nonsense" must be <audience>=<channel>,<channel>',
      ),
      b({ APPROVAL_CHANNELS: 'carrier-pigeon' }, 'APPROVAL_CHANNELS: unknown channel "carrier-pigeon"'),
      b(
        { PAGERDUTY_EVENTS_URL: 'ftp://events.example.com' },
        'PAGERDUTY_EVENTS_URL must use https (http only to a loopback host), got "ftp://events.example.com"',
      ),
      b(
        { RECEIVER_PORT: 'http' },
        'RECEIVER_PORT must be a TCP port (1-65535), or 0 or off for no receiver, got "http"',
      ),
      b(
        { RECEIVER_HOST: 'local host' },
        'RECEIVER_HOST must be a host name or an IP address to listen on, got "local host"',
      ),
      b(
        { RECEIVER_MAX_BODY_BYTES: '10' },
        'RECEIVER_MAX_BODY_BYTES must be a number of bytes from 1024 to 67108864, got "10"',
      ),
      b(
        { RECEIVER_ALERTNAMES: 'A B,C' },
        'RECEIVER_ALERTNAMES must be alert names separated by commas, got "A B,C" ("A B")',
      ),
      b({ TEMPORAL_TLS: 'yes' }, 'TEMPORAL_TLS must be true or false, got "yes"'),
      b(
        { TEMPORAL_TLS_SERVER_NAME: 'bad name' },
        'TEMPORAL_TLS_SERVER_NAME must be a host name, got "bad name"',
      ),
    ),
    worker(
      b({ TEMPORAL_ADDRESS: 'temporal:99999' }, 'TEMPORAL_ADDRESS must be host:port', '"temporal:99999"'),
      b(
        { TEMPORAL_DEV_PORT: '9000', TEMPORAL_DEV_UI_PORT: '9000' },
        'TEMPORAL_DEV_PORT and TEMPORAL_DEV_UI_PORT must differ, both are 9000',
      ),
      b(
        { VPSIE_API_URL: 'http://api.vpsie.com/v2' },
        'VPSIE_API_URL must use https (http only to a loopback host), got "http://api.vpsie.com/v2"',
      ),
      secret(b({ VPSIE_TOKEN: SECRET }, 'set only one of VPSIE_TOKEN_FILE and VPSIE_TOKEN')),
      b({ ORPHAN_SWEEP_INTERVAL: '31d' }, 'ORPHAN_SWEEP_INTERVAL must be between 5m and 30 days, got "31d"'),
      b(
        { ESCALATION_ROUTES: 'vpsie-support=slack;platform-team=' },
        'ESCALATION_ROUTES: vpsie-support: channel "slack" is not configured (set SLACK_WEBHOOK_URL_FILE or SLACK_WEBHOOK_URL)',
      ),
      b(
        { RECEIVER_PORT: '9464', METRICS_PORT: '9464' },
        'RECEIVER_PORT and METRICS_PORT must differ, both are 9464',
      ),
      b({ RECEIVER_MAX_BODY_BYTES: '1MB' }, 'RECEIVER_MAX_BODY_BYTES', 'got "1MB"'),
      b(
        { WORKER_MAX_CACHED_WORKFLOWS: '0' },
        'WORKER_MAX_CACHED_WORKFLOWS must be a whole number from 1 to 10000, got "0"',
      ),
      b(
        { METRICS_HOST: '300.1.2.3' },
        'METRICS_HOST must be a host name or an IP address to listen on, got "300.1.2.3"',
      ),
      secret(b({ RECEIVER_TOKEN: `two ${SECRET}` }, 'RECEIVER_TOKEN must not contain spaces')),
      b(
        { TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.notPem },
        'TEMPORAL_TLS is false, but TLS settings are set (TEMPORAL_TLS_SERVER_CA_CERT_PATH)',
      ),
    ),
    worker(
      b(
        { TEMPORAL_ADDRESS: 'http://temporal:7233' },
        'TEMPORAL_ADDRESS must be host:port',
        '"http://temporal:7233"',
      ),
      secret(
        b(
          { VPSIE_TOKEN_FILE: unset, VPSIE_CLIENT_ID: SECRET },
          'VPSIE_CLIENT_SECRET(_FILE) is missing: client credentials need both',
        ),
      ),
      b(
        { ORPHAN_SWEEP_INTERVAL: 'often' },
        'ORPHAN_SWEEP_INTERVAL must be a duration such as "90s" or "10m", got "often"',
      ),
      b(
        { ESCALATION_ROUTES: 'ops=;vpsie-support=;platform-team=' },
        'ESCALATION_ROUTES: unknown audience "ops" (audiences: vpsie-support, platform-team)',
      ),
      secret(
        b(
          { ESCALATION_WEBHOOK_URL: `not a url ${SECRET}` },
          'ESCALATION_WEBHOOK_URL must be an absolute URL',
        ),
      ),
      secret(
        b(
          { PAGERDUTY_ROUTING_KEY: SECRET },
          `PAGERDUTY_ROUTING_KEY must be the 32-character integration key (letters and digits), got ${SECRET.length} characters`,
        ),
      ),
      b({ APPROVAL_CHANNELS: 'slack' }, 'APPROVAL_CHANNELS: channel "slack" is not configured'),
      b(
        { ...withReceiver, RECEIVER_MAX_BODY_BYTES: '999999999999' },
        'RECEIVER_MAX_BODY_BYTES',
        'got "999999999999"',
      ),
      b(
        { TEMPORAL_TLS_CLIENT_CERT_PATH: files.notPem },
        'TEMPORAL_TLS_CLIENT_KEY_PATH is missing: mTLS needs the client certificate and its key',
      ),
      secret(b({ TEMPORAL_API_KEY: `two ${SECRET}` }, 'TEMPORAL_API_KEY must not contain spaces')),
    ),
    worker(
      b(
        { VPSIE_CLIENT_ID: 'id', VPSIE_CLIENT_SECRET: 'secret' },
        'set either a VPSie token (VPSIE_TOKEN(_FILE)) or client credentials (VPSIE_CLIENT_*), not both',
      ),
      b({ ORPHAN_SWEEP_INTERVAL: '-5m' }, 'ORPHAN_SWEEP_INTERVAL', '"-5m"'),
      b(
        { ESCALATION_ROUTES: 'vpsie-support=;vpsie-support=;platform-team=' },
        'ESCALATION_ROUTES: audience "vpsie-support" is named twice',
      ),
      secret(
        b(
          { SLACK_WEBHOOK_URL: `http://hooks.slack.com/services/T0/B0/${SECRET}` },
          'SLACK_WEBHOOK_URL must use https (http only to a loopback host)',
        ),
      ),
      secret(
        b(
          { TEMPORAL_API_KEY: SECRET, TEMPORAL_TLS: 'false', TEMPORAL_ADDRESS: 'temporal.example.com:7233' },
          'TEMPORAL_API_KEY needs TLS (the key would cross the network in clear text): remove TEMPORAL_TLS=false',
        ),
      ),
    ),
    worker(
      b({ ORPHAN_SWEEP_INTERVAL: '5 fortnights' }, 'ORPHAN_SWEEP_INTERVAL: unknown unit "fortnights"'),
      b({ ESCALATION_ROUTES: 'vpsie-support=' }, 'ESCALATION_ROUTES: audience "platform-team" is missing'),
      secret(
        b(
          { SLACK_WEBHOOK_URL_FILE: files.token, SLACK_WEBHOOK_URL: `https://hooks.slack.com/${SECRET}` },
          'set only one of SLACK_WEBHOOK_URL_FILE and SLACK_WEBHOOK_URL',
        ),
      ),
      b(
        { TEMPORAL_ADDRESS: unset, METRICS_PORT: '7233' },
        'METRICS_PORT and TEMPORAL_DEV_PORT must differ (the embedded dev server), both are 7233',
      ),
      b(
        { TEMPORAL_ADDRESS: unset, TEMPORAL_TLS: 'true' },
        'TEMPORAL_TLS, TEMPORAL_TLS_* and TEMPORAL_API_KEY(_FILE) need TEMPORAL_ADDRESS',
      ),
    ),
    worker(
      b(
        { ESCALATION_ROUTES: 'vpsie-support=carrier-pigeon;platform-team=' },
        'ESCALATION_ROUTES: vpsie-support: unknown channel "carrier-pigeon" (channels: pagerduty, slack, webhook)',
      ),
      secret(
        b(
          { TEMPORAL_API_KEY: SECRET, TEMPORAL_API_KEY_FILE: files.token },
          'set only one of TEMPORAL_API_KEY_FILE and TEMPORAL_API_KEY',
        ),
      ),
      b(
        { TEMPORAL_TLS_CLIENT_KEY_PATH: files.notPem },
        'TEMPORAL_TLS_CLIENT_CERT_PATH is missing: mTLS needs the client certificate and its key',
      ),
    ),
    // one bad value alone is enough
    worker(
      b(
        { LOG_LEVEL: 'loud' },
        'invalid configuration:',
        'LOG_LEVEL must be one of debug, info, warn, error, got "loud"',
      ),
    ),
    // the files, read once the rest is valid: all named at once
    worker(
      b(
        { VPSIE_TOKEN_FILE: nope('vpsie-token') },
        `VPSIE_TOKEN_FILE: cannot read ${nope('vpsie-token')} (ENOENT)`,
      ),
      b(
        { SLACK_WEBHOOK_URL_FILE: nope('slack') },
        `SLACK_WEBHOOK_URL_FILE: cannot read ${nope('slack')} (ENOENT)`,
      ),
      b(
        { PAGERDUTY_ROUTING_KEY_FILE: nope('pd') },
        `PAGERDUTY_ROUTING_KEY_FILE: cannot read ${nope('pd')} (ENOENT)`,
      ),
      b({ ESCALATION_WEBHOOK_URL_FILE: files.empty }, `ESCALATION_WEBHOOK_URL_FILE: ${files.empty} is empty`),
      b(
        { ...withReceiver, RECEIVER_TOKEN_FILE: nope('receiver-token') },
        `RECEIVER_TOKEN_FILE: cannot read ${nope('receiver-token')} (ENOENT)`,
      ),
      b(
        { TEMPORAL_TLS_SERVER_CA_CERT_PATH: nope('ca.pem') },
        `TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${nope('ca.pem')} (ENOENT)`,
      ),
      b(
        { TEMPORAL_API_KEY_FILE: nope('api-key') },
        `TEMPORAL_API_KEY_FILE: cannot read ${nope('api-key')} (ENOENT)`,
      ),
    ),
    worker(
      b({ VPSIE_TOKEN_FILE: files.empty }, `VPSIE_TOKEN_FILE: ${files.empty} is empty`),
      b(
        { TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.notPem },
        `TEMPORAL_TLS_SERVER_CA_CERT_PATH must name a PEM file with a certificate, got ${files.notPem}`,
      ),
      b({ TEMPORAL_API_KEY_FILE: files.empty }, `TEMPORAL_API_KEY_FILE: ${files.empty} is empty`),
    ),
    worker(
      b({ VPSIE_TOKEN_FILE: dir }, `VPSIE_TOKEN_FILE: cannot read ${dir} (EISDIR)`),
      b(
        { TEMPORAL_TLS_CLIENT_CERT_PATH: files.notPem, TEMPORAL_TLS_CLIENT_KEY_PATH: nope('client.key') },
        `TEMPORAL_TLS_CLIENT_CERT_PATH must name a PEM file with a certificate, got ${files.notPem}`,
        `TEMPORAL_TLS_CLIENT_KEY_PATH: cannot read ${nope('client.key')} (ENOENT)`,
      ),
    ),
    worker(
      b(
        {
          VPSIE_TOKEN_FILE: unset,
          VPSIE_CLIENT_ID_FILE: nope('id'),
          VPSIE_CLIENT_SECRET_FILE: nope('secret'),
        },
        `VPSIE_CLIENT_ID_FILE: cannot read ${nope('id')} (ENOENT)`,
        `VPSIE_CLIENT_SECRET_FILE: cannot read ${nope('secret')} (ENOENT)`,
      ),
    ),
    { entry: 'worker', args: ['--port', '80'], bad: [b({}, 'unknown argument(s): --port 80')] },

    // --- the receiver (npm run receiver): its own variables and the connection's
    receiver(
      b(
        { RECEIVER_PORT: '65536' },
        'RECEIVER_PORT must be a TCP port (1-65535), or 0 or off for no receiver, got "65536"',
      ),
      b(
        { RECEIVER_MAX_BODY_BYTES: '0' },
        'RECEIVER_MAX_BODY_BYTES must be a number of bytes from 1024 to 67108864, got "0"',
      ),
      b(
        { RECEIVER_ALERTNAMES: ',,' },
        'RECEIVER_ALERTNAMES must be alert names separated by commas, got ",,"',
      ),
      b({ RECEIVER_HOST: '256.1.1.1:80' }, 'RECEIVER_HOST must be a host name or an IP address to listen on'),
      b({ TEMPORAL_ADDRESS: 'nohost' }, 'TEMPORAL_ADDRESS must be host:port'),
      b({ TEMPORAL_TLS_CLIENT_CERT_PATH: nope('c.pem') }, 'TEMPORAL_TLS_CLIENT_KEY_PATH is missing'),
      b({ METRICS_PORT: 'metrics' }, 'METRICS_PORT must be a TCP port', '"metrics"'),
      secret(
        b(
          { RECEIVER_TOKEN_FILE: files.token, RECEIVER_TOKEN: SECRET },
          'set only one of RECEIVER_TOKEN_FILE and RECEIVER_TOKEN',
        ),
      ),
    ),
    receiver(b({ RECEIVER_PORT: 'off' }, 'RECEIVER_PORT is 0 or off: the receiver needs a port')),
    receiver(
      b({ RECEIVER_TOKEN_FILE: nope('token') }, `RECEIVER_TOKEN_FILE: cannot read ${nope('token')} (ENOENT)`),
      b(
        { TEMPORAL_TLS_SERVER_CA_CERT_PATH: files.notPem },
        'TEMPORAL_TLS_SERVER_CA_CERT_PATH must name a PEM file',
      ),
    ),
    receiver(b({ RECEIVER_TOKEN_FILE: files.empty }, `RECEIVER_TOKEN_FILE: ${files.empty} is empty`)),
    { entry: 'receiver', args: ['--token', 'x'], bad: [b({}, 'unknown argument(s): --token x')] },

    // --- the CLI: the environment (the worker's), global flags, arguments (beyond cli-ops.test.ts)
    {
      entry: 'cli',
      args: ['list'],
      bad: [
        b({ TEMPORAL_ADDRESS: 'nohost' }, 'TEMPORAL_ADDRESS must be host:port'),
        b({ TEMPORAL_TLS: 'maybe' }, 'TEMPORAL_TLS must be true or false, got "maybe"'),
        b({ TEMPORAL_TASK_QUEUE: 'a b' }, 'TEMPORAL_TASK_QUEUE must be a task queue name without spaces'),
      ],
    },
    {
      entry: 'cli',
      args: ['list'],
      bad: [
        b(
          { TEMPORAL_TLS_SERVER_CA_CERT_PATH: nope('ca.pem') },
          `TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${nope('ca.pem')}`,
        ),
        b({ TEMPORAL_API_KEY_FILE: files.empty }, `TEMPORAL_API_KEY_FILE: ${files.empty} is empty`),
      ],
    },
    cli(['--namespace', 'bad ns', 'list'], '--namespace must be a Temporal namespace name, got "bad ns"'),
    cli(['--task-queue', 'a b', 'list'], '--task-queue must be a task queue name without spaces, got "a b"'),
    cli(['--connect-timeout', '10m', 'list'], '--connect-timeout must be between 1s and 300s, got "10m"'),
    cli(['-o', 'xml', 'status', 'ns/x'], "argument 'xml' is invalid. Allowed choices are text, json."),
    cli(
      ['--address', 'temporal:0', 'list'],
      '--address must be host:port (for example temporal:7233), got "temporal:0"',
    ),
    cli(['list', 'extra'], "too many arguments for 'list'"),
    cli(
      ['trigger', 'ns/x', '--approval-ttl', '8d'],
      '--approval-ttl must be between 10s and 7 days, got "8d"',
    ),
    cli(['trigger', 'ns/x', '--ready-wait', '-5m'], '--ready-wait', '"-5m"'),
    cli(['trigger', 'ns/x', '--approver', ''], '--approver #1 must be a non-empty string, got ""'),
    cli(
      ['trigger', 'ns/x', '--approver', 'bob', '--approver', ' carol'],
      '--approver #2 must not start or end with white space',
    ),
    cli(
      ['trigger', 'ns/x', '--checks-per-run', '1.5'],
      '--checks-per-run must be a whole number from 1 to 1000, got "1.5"',
    ),
    cli(
      ['trigger', 'ns/x', '--severity', 'CRITICAL'],
      '--severity must be one of critical, error, warning, info, got "CRITICAL"',
    ),
    cli(['trigger', 'ns/x', '--dry-run=yes'], '--dry-run'),
    cli(['trigger', 'kube-system/'], 'name must be a VPSieNode name (DNS subdomain), got ""'),
    cli(
      ['trigger', 'Kube-System/x'],
      'namespace must be a Kubernetes namespace name (DNS label), got "Kube-System"',
    ),
    cli(
      ['status', 'ns/x\u0007'],
      'argument <ns/name|workflow-id> must be a VPSieNode as <namespace>/<name> or a workflow id',
    ),
    cli(
      ['approve', 'ns/x', '--as', 'alice', '--step', ''],
      '--step must be a plan step id such as delete-vpsienode, got ""',
    ),
    cli(['reject', 'ns/x', '--as', 'x'.repeat(254)], '--as must be your name (1 to 253 characters'),
    cli(
      ['cleanup-orphans', '--approval-ttl', '1s'],
      '--approval-ttl must be between 10s and 7 days, got "1s"',
    ),
  ];
}

/** The process's environment: the base, with each bad value's changes (a key set twice must agree). */
function envOf(r: Run): Record<string, string> {
  const env: Record<string, string> = { ...baseEnv(r.entry) };
  const set = new Map<string, string | null>();
  for (const x of r.bad)
    for (const [name, value] of Object.entries(x.env)) {
      if (set.has(name) && set.get(name) !== value)
        throw new Error(
          `the table sets ${name} twice in one process: ${String(set.get(name))} and ${String(value)}`,
        );
      set.set(name, value);
      if (value === null) delete env[name];
      else env[name] = value;
    }
  return env;
}

const CONCURRENCY = 4;

test('bad environment values and arguments: exit 2 naming each variable or argument, and nothing started', async () => {
  const all = runs();
  expect(all.flatMap((r) => r.bad).length).toBeGreaterThan(100);
  const t0 = Date.now();
  const ran = await pool(all, CONCURRENCY, (r) => run(r.entry, envOf(r), r.args));
  const elapsed = Date.now() - t0;
  const wrong = all.flatMap((r, i) => {
    const got = ran[i];
    const what = `${r.entry} ${(r.args ?? []).join(' ')} ${JSON.stringify(Object.assign({}, ...r.bad.map((x) => x.env)))}`;
    const problems: string[] = [];
    if (got.code !== 2) problems.push(`exit ${got.code}, expected 2`);
    for (const x of r.bad) {
      for (const s of x.says) if (!got.stderr.includes(s)) problems.push(`stderr lacks ${JSON.stringify(s)}`);
      for (const s of x.never ?? [])
        if (`${got.stdout}${got.stderr}`.includes(s))
          problems.push(`printed the secret ${JSON.stringify(s)}`);
    }
    if (/worker polling|listening on|starting the embedded|alert receiver:/.test(got.stdout))
      problems.push('started');
    if (got.left.length) problems.push(`left ${got.left.join(', ')} in its directory`);
    return problems.length
      ? [`${what}: ${problems.join('; ')}\n  stdout: ${got.stdout}\n  stderr: ${got.stderr}`]
      : [];
  });
  expect(wrong).toEqual([]);
  // No process got as far as connecting to Temporal, Kubernetes or VPSie.
  expect(connections).toEqual([]);
  expect(elapsed).toBeLessThan(150_000);
});

test('controls: the same environments without the bad values start, and reach the sentinel', async () => {
  const before = connections.length;
  // The CLI connects (and gives up after its connect timeout: exit 3, naming the address).
  const cli = await run('cli', baseEnv('cli'), ['--connect-timeout', '1s', 'list']);
  expect(cli.code).toBe(3);
  expect(cli.stderr).toContain(`cannot reach Temporal at 127.0.0.1:${sentinelPort}`);
  expect(connections.length).toBeGreaterThan(before);

  // The receiver starts listening (its Temporal connection is lazy), and stops on SIGTERM.
  const port = await freePort();
  const receiver = await startAndStop(
    'receiver',
    { ...baseEnv('receiver'), RECEIVER_PORT: String(port) },
    (out) => /listening on/.test(out.stdout),
    'SIGTERM',
  );
  expect(receiver.stdout).toMatch(new RegExp(`listening on 0\\.0\\.0\\.0:${port}`));

  // The worker goes on to connect to Temporal: the sentinel sees it (then it is killed: it would retry).
  const seen = connections.length;
  const worker = await startAndStop('worker', baseEnv('worker'), () => connections.length > seen, 'SIGKILL');
  expect(worker.stdout).not.toContain('starting the embedded');
});

/** Starts an entry point, waits until `ready` holds, then stops it with `signal`; what it printed so far. */
async function startAndStop(
  entry: Entry,
  env: Record<string, string>,
  ready: (out: { stdout: string; stderr: string }) => boolean,
  signal: NodeJS.Signals,
): Promise<{ stdout: string; stderr: string }> {
  const cwd = join(dir, `control-${entry}`);
  await mkdir(cwd, { recursive: true });
  const child = spawn(process.execPath, [join(dist, ENTRY_FILE[entry])], { env, cwd });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 90_000;
  try {
    for (;;) {
      if (ready(out)) break;
      if (child.exitCode !== null)
        throw new Error(`${entry} exited ${child.exitCode} before it started:\n${out.stdout}\n${out.stderr}`);
      if (Date.now() > deadline) throw new Error(`${entry} did not start:\n${out.stdout}\n${out.stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
  return out;
}
